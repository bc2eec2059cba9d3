"""The upstream pool against real MCP servers: the in-repo test server over stdio, streamable
HTTP and legacy SSE, in both protocol eras the SDK speaks, and the npm reference server over
stdio. Results are compared with what the MCP SDK's own client gets from the same server."""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from uuid import uuid4

import anyio
import anyio.lowlevel
import mcp_types as types
import msgspec
import pytest

from hub.errors import ConfigError, ConflictError, NotFoundError
from hub.policy.model import McpServerSpec, Transport
from server.mcp import McpUpstreamError, UpstreamConfig, UpstreamHealth, UpstreamPool
from server.mcp.upstream import UpstreamStateChange
from tests.integration.mcp.support import (
    EVERYTHING_CALLS,
    ChangeRecorder,
    ServerProcess,
    call,
    direct_client,
    direct_raw,
    direct_tools,
    eventually,
    http_config,
    stdio_config,
    without_clock_times,
)
from tests.servers.upstream_server import PAGE_SIZE, PNG_BASE64, STATIC_BLOB_URI, WAV_BASE64

# One event loop for the module, so one pool (``shared_pool``) can serve many tests.
pytestmark = pytest.mark.asyncio(loop_scope="module")

BUILT_IN_TOOLS = [
    "echo",
    "add",
    "image",
    "audio",
    "resource_link",
    "embedded_resource",
    "fail",
    "slow",
    "barrier",
    "progress",
    "crash",
    "whoami",
    "getenv",
    "stats",
    "add_tool",
]

LOSSLESS_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("echo", {"text": "hello"}),
    ("add", {"a": 2, "b": 3}),
    ("image", {}),
    ("audio", {}),
    ("resource_link", {}),
    ("embedded_resource", {}),
    ("fail", {"message": "it broke"}),
]


def structured(result: dict[str, Any]) -> Any:
    return result["structuredContent"]


def read(uri: str) -> types.ReadResourceRequest:
    return types.ReadResourceRequest(params=types.ReadResourceRequestParams(uri=uri))


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- every transport and era, on the shared pool -------------------------------------------


async def test_everything_equals_what_the_sdk_client_gets(
    shared_pool: UpstreamPool, connected: UpstreamConfig
) -> None:
    pool, name = shared_pool, connected.name
    async with direct_client(connected) as client:
        expected_tools = await direct_tools(client)
        tools = await pool.list_tools(name)
        for tool, arguments in LOSSLESS_CALLS:
            expected = await direct_raw(client, call(tool, arguments))
            actual = await pool.call_tool(name, tool, arguments)

            assert expected == actual, tool
            typed = types.CallToolResult.model_validate(actual)
            assert types.CallToolResult.model_validate(expected) == typed, tool
        resources = await direct_raw(client, types.ListResourcesRequest())
        templates = await direct_raw(client, types.ListResourceTemplatesRequest())
        prompts = await direct_raw(client, types.ListPromptsRequest())
        item = await direct_raw(client, read("test://items/7"))
        blob = await direct_raw(client, read(STATIC_BLOB_URI))
        prompt = await direct_raw(
            client,
            types.GetPromptRequest(
                params=types.GetPromptRequestParams(name="greet", arguments={"name": "Ada"})
            ),
        )

    assert expected_tools == tools
    assert len(tools) > PAGE_SIZE  # the test server paginates: every page was walked
    assert BUILT_IN_TOOLS == [tool["name"] for tool in tools][: len(BUILT_IN_TOOLS)]
    assert {"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]} == (
        tools[1]["outputSchema"]
    )
    assert {"readOnlyHint": True, "title": "Echo"} == tools[0]["annotations"]
    assert resources["resources"] == await pool.list_resources(name)
    assert templates["resourceTemplates"] == await pool.list_resource_templates(name)
    assert prompts["prompts"] == await pool.list_prompts(name)
    assert item == await pool.read_resource(name, "test://items/7")
    assert blob == await pool.read_resource(name, STATIC_BLOB_URI)
    assert prompt == await pool.get_prompt(name, "greet", {"name": "Ada"})
    assert "test://items/{item_id}" == templates["resourceTemplates"][0]["uriTemplate"]
    assert PNG_BASE64 == blob["contents"][0]["blob"]
    assert "Please greet Ada." == prompt["messages"][0]["content"]["text"]


async def test_every_content_block_type_arrives_intact(
    shared_pool: UpstreamPool, connected: UpstreamConfig
) -> None:
    pool, name = shared_pool, connected.name

    image = await pool.call_tool(name, "image", {})
    audio = await pool.call_tool(name, "audio", {})
    link = await pool.call_tool(name, "resource_link", {})
    embedded = await pool.call_tool(name, "embedded_resource", {})
    added = await pool.call_tool(name, "add", {"a": 2, "b": 3})
    failed = await pool.call_tool(name, "fail", {"message": "it broke"})

    assert [
        {"type": "text", "text": "a red pixel"},
        {
            "type": "image",
            "data": PNG_BASE64,
            "mimeType": "image/png",
            "annotations": {"audience": ["user"], "priority": 0.5},
        },
    ] == image["content"]
    assert [{"type": "audio", "data": WAV_BASE64, "mimeType": "audio/wav"}] == audio["content"]
    assert [
        {
            "type": "resource_link",
            "uri": "test://static/hello",
            "name": "hello",
            "description": "The static greeting.",
            "mimeType": "text/plain",
            "_meta": {"example.com/origin": "upstream"},
        }
    ] == link["content"]
    assert [
        {
            "type": "resource",
            "resource": {
                "uri": "test://static/hello",
                "mimeType": "text/plain",
                "text": "hello, world",
            },
        },
        {
            "type": "resource",
            "resource": {"uri": STATIC_BLOB_URI, "mimeType": "image/png", "blob": PNG_BASE64},
            "annotations": {"priority": 1.0},
        },
    ] == embedded["content"]
    assert "abc" == embedded["_meta"]["example.com/trace"]
    assert {"sum": 5} == structured(added)
    assert [{"type": "text", "text": json.dumps({"sum": 5})}] == added["content"]
    assert added.get("isError", False) is False
    assert failed["isError"] is True
    assert [{"type": "text", "text": "it broke"}] == failed["content"]


async def test_progress_reaches_the_callback_in_order(
    shared_pool: UpstreamPool, connected: UpstreamConfig
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        await anyio.lowlevel.checkpoint()  # a callback that awaits (as forwarding does)
        seen.append((progress, total, message))

    result = await shared_pool.call_tool(
        connected.name, "progress", {"steps": 4}, progress=on_progress
    )

    # All of them, in order, before the result: a firewall relays them before the answer.
    assert [(float(step), 4.0, f"step {step}") for step in range(1, 5)] == seen
    assert {"steps": 4, "had_token": True} == structured(result)


async def test_concurrent_calls_share_one_session(
    shared_pool: UpstreamPool, connected: UpstreamConfig
) -> None:
    pool, name = shared_pool, connected.name
    before = structured(await pool.call_tool(name, "stats", {}))
    key = f"together-{uuid4().hex}"
    results: list[dict[str, Any]] = []

    async def one() -> None:
        arguments = {"key": key, "parties": 20, "timeout": 20}
        results.append(await pool.call_tool(name, "barrier", arguments))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
    after = structured(await pool.call_tool(name, "stats", {}))

    # The server's barrier releases a call only once all 20 are in flight at the same time.
    assert [False] * 20 == [result.get("isError", False) for result in results]
    assert [{"arrived": 20, "parties": 20}] * 20 == [structured(result) for result in results]
    # One process, one session: no second initialize or discover, the same session id.
    assert before["pid"] == after["pid"]
    assert before["handshakes"] == after["handshakes"]
    assert before["session_id"] == after["session_id"]
    assert 0 == pool.health(name).restarts
    if connected.transport == "stdio":
        assert pool.health(name).pid == after["pid"]


async def test_headers_and_env_reach_the_server(
    shared_pool: UpstreamPool, connected: UpstreamConfig
) -> None:
    who = structured(await shared_pool.call_tool(connected.name, "whoami", {}))

    if connected.transport == "stdio":
        assert {"identity": "stdio", "header": None} == who
    else:
        assert {"identity": None, "header": "from-config"} == who


async def test_list_changed_reaches_the_callback(
    shared_pool: UpstreamPool, shared_changes: ChangeRecorder, connected: UpstreamConfig
) -> None:
    pool, name = shared_pool, connected.name
    await pool.wait_ready(name)  # at 2026-07-28 ready includes the change subscription
    new_tool = f"added_{uuid4().hex[:8]}"
    mark = len(shared_changes.seen)

    await pool.call_tool(name, "add_tool", {"name": new_tool})
    await shared_changes.wait_for(name, "tools", after=mark)

    assert new_tool in [tool["name"] for tool in await pool.list_tools(name)]
    result = await pool.call_tool(name, new_tool, {})
    assert [{"type": "text", "text": f"hello from {new_tool}"}] == result["content"]


async def test_an_upstream_protocol_error_is_an_upstream_error(
    shared_pool: UpstreamPool, connected: UpstreamConfig
) -> None:
    with pytest.raises(McpUpstreamError) as caught:
        await shared_pool.read_resource(connected.name, "test://nowhere")

    assert types.INVALID_PARAMS == caught.value.code
    assert connected.name == caught.value.server
    assert f"MCP server '{connected.name}'" in str(caught.value)
    assert "no resource test://nowhere" in str(caught.value)


# -- stdio processes -----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["auto", "legacy"])
async def test_a_crashed_stdio_server_is_restarted(pool: UpstreamPool, protocol: str) -> None:
    await pool.add(stdio_config("crashy", protocol=protocol))
    first_pid = structured(await pool.call_tool("crashy", "stats", {}))["pid"]

    with pytest.raises(McpUpstreamError) as caught:
        await pool.call_tool("crashy", "crash", {})

    assert "crashy" == caught.value.server
    assert "tools/call 'crash' on MCP server 'crashy' failed: it exited with code 3" == str(
        caught.value
    )
    result = await pool.call_tool("crashy", "echo", {"text": "back again"})
    assert [{"type": "text", "text": "back again"}] == result["content"]
    health = pool.health("crashy")
    assert "ready" == health.state
    assert health.restarts >= 1
    assert "exited with code 3" == health.last_error
    second_pid = structured(await pool.call_tool("crashy", "stats", {}))["pid"]
    assert first_pid != second_pid
    assert second_pid == health.pid
    assert process_gone(first_pid)


async def test_a_crash_and_the_restart_are_reported_to_state_watchers(
    pool: UpstreamPool,
) -> None:
    reported: list[UpstreamStateChange] = []
    unwatch = pool.watch_states(reported.append)
    await pool.add(stdio_config("watched"))
    await pool.call_tool("watched", "echo", {"text": "up"})
    with pytest.raises(McpUpstreamError):
        await pool.call_tool("watched", "crash", {})
    await pool.call_tool("watched", "echo", {"text": "back"})  # waits for the restart
    unwatch()
    await pool.remove("watched")  # nobody watches any more: not reported

    assert [(c.state, c.previous_state, c.error, c.restarts) for c in reported] == [
        ("ready", "connecting", None, 0),
        ("connecting", "ready", "exited with code 3", 0),
        ("ready", "connecting", "exited with code 3", 1),
    ]
    assert {c.server for c in reported} == {"watched"}


async def test_a_server_failing_the_same_way_is_reported_once_then_stopped() -> None:
    config = UpstreamConfig(name="ghost", transport="stdio", command="/nonexistent/mcp-server")
    reported: list[UpstreamStateChange] = []
    async with UpstreamPool(backoff_initial=0.05, backoff_max=0.05) as pool:
        pool.watch_states(reported.append)
        await pool.add(config)

        async def retried() -> bool | None:
            return pool.health("ghost").restarts >= 3 or None  # three retries, failing alike

        await eventually(retried)
        await pool.remove("ghost")

    assert [(c.state, c.previous_state) for c in reported] == [
        ("failed", "connecting"),
        ("stopped", "failed"),
    ]
    failed, stopped = reported
    assert failed.error is not None
    assert failed.error.startswith("could not be started")
    assert failed.retry_in == 0.05
    assert stopped.error == "was removed from the pool"


async def test_stdio_servers_get_their_env_and_nothing_else(
    pool: UpstreamPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRELOOP_TEST_LEAK", "a secret of the host")
    monkeypatch.setenv("TEST_SERVER_IDENTITY", "the host's identity")
    await pool.add(stdio_config("envy", env={"TEST_SERVER_IDENTITY": "from-config"}))

    who = structured(await pool.call_tool("envy", "whoami", {}))
    leak = structured(await pool.call_tool("envy", "getenv", {"name": "PRELOOP_TEST_LEAK"}))
    path = structured(await pool.call_tool("envy", "getenv", {"name": "PATH"}))

    assert {"identity": "from-config", "header": None} == who
    assert {"name": "PRELOOP_TEST_LEAK", "value": None} == leak
    assert {"name": "PATH", "value": os.environ["PATH"]} == path


async def test_a_server_that_exits_at_start_reports_why() -> None:
    script = "import sys; print('missing API key', file=sys.stderr); sys.exit(2)"
    config = UpstreamConfig(
        name="dying", transport="stdio", command=sys.executable, args=("-c", script)
    )
    async with UpstreamPool(backoff_initial=60, backoff_max=60) as pool:
        await pool.add(config)

        with pytest.raises(McpUpstreamError) as caught:
            await pool.list_tools("dying")

        assert "MCP server 'dying' is unavailable: it exited with code 2" in str(caught.value)
        assert "last stderr: missing API key" in str(caught.value)
        health = pool.health("dying")
        assert "failed" == health.state
        assert "exited with code 2; last stderr: missing API key" == health.last_error


async def test_a_server_that_cannot_start_fails_fast() -> None:
    config = UpstreamConfig(name="ghost", transport="stdio", command="/nonexistent/mcp-server")
    async with UpstreamPool(backoff_initial=60, backoff_max=60) as pool:
        await pool.add(config)

        with pytest.raises(McpUpstreamError) as caught:
            await pool.call_tool("ghost", "echo", {"text": "anyone?"})

        assert "ghost" == caught.value.server
        assert "MCP server 'ghost' is unavailable: it could not be started" in str(caught.value)
        health = pool.health("ghost")
        assert "failed" == health.state
        assert health.last_error is not None
        assert "No such file or directory" in health.last_error


async def test_a_call_that_takes_too_long_times_out(
    shared_pool: UpstreamPool, shared_stdio: UpstreamConfig
) -> None:
    name = shared_stdio.name

    with pytest.raises(McpUpstreamError) as caught:
        await shared_pool.call_tool(name, "slow", {"seconds": 60}, timeout=0.2)

    assert f"tools/call 'slow' on MCP server '{name}' failed: no answer within 0.2s" == str(
        caught.value
    )
    result = await shared_pool.call_tool(name, "echo", {"text": "still here"})
    assert [{"type": "text", "text": "still here"}] == result["content"]
    assert 0 == shared_pool.health(name).restarts


async def test_a_cancelled_call_leaves_the_session_usable(
    shared_pool: UpstreamPool, shared_stdio: UpstreamConfig
) -> None:
    name = shared_stdio.name
    in_flight = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        in_flight.set()

    async def slow_call() -> None:
        await shared_pool.call_tool(name, "slow", {"seconds": 60}, progress=on_progress)

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(slow_call)
            with anyio.fail_after(20):
                await in_flight.wait()
            scope.cancel()  # as when the agent that made the call goes away

    assert scope.cancelled_caught
    result = await shared_pool.call_tool(name, "echo", {"text": "next"})
    assert [{"type": "text", "text": "next"}] == result["content"]
    assert ("ready", 0) == (shared_pool.health(name).state, shared_pool.health(name).restarts)


async def test_removing_a_server_fails_its_calls_in_flight(pool: UpstreamPool) -> None:
    await pool.add(stdio_config("leaving"))
    pid = (await pool.wait_ready("leaving")).pid
    assert pid is not None
    in_flight = anyio.Event()
    errors: list[McpUpstreamError] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        in_flight.set()  # the server has started the call

    async def slow_call() -> None:
        try:
            await pool.call_tool("leaving", "slow", {"seconds": 60}, progress=on_progress)
        except McpUpstreamError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(slow_call)
        with anyio.fail_after(20):
            await in_flight.wait()
        await pool.remove("leaving")

    assert ["tools/call 'slow' on MCP server 'leaving' failed: it was removed from the pool"] == [
        str(error) for error in errors
    ]
    assert [] == pool.names()
    assert process_gone(pid)


async def test_membership_and_health(pool: UpstreamPool) -> None:
    config = stdio_config("member", env={"TEST_SERVER_IDENTITY": "one"})
    await pool.add(config)

    with pytest.raises(ConflictError):
        await pool.add(config)
    with pytest.raises(NotFoundError):
        pool.health("nobody")
    with pytest.raises(NotFoundError):
        await pool.call_tool("nobody", "echo", {"text": "?"})
    health = await pool.wait_ready("member")
    assert ["member"] == pool.names()
    assert isinstance(health, UpstreamHealth)
    assert ("member", "ready", None, 0, "2026-07-28", "stdio") == (
        health.name,
        health.state,
        health.last_error,
        health.restarts,
        health.protocol_version,
        health.transport,
    )
    assert health.connected_at is not None
    assert health.pid is not None

    await pool.replace(config)  # unchanged: nothing happens
    assert health.pid == pool.health("member").pid

    v1_echo = (await pool.list_tools("member"))[0]
    v2_env = {"TEST_SERVER_IDENTITY": "two", "TEST_SERVER_TOOLSET": "v2"}
    await pool.replace(msgspec.structs.replace(config, env=v2_env))
    who = structured(await pool.call_tool("member", "whoami", {}))
    v2_echo = (await pool.list_tools("member"))[0]
    assert "two" == who["identity"]
    assert process_gone(health.pid)
    assert ("echo", "echo") == (v1_echo["name"], v2_echo["name"])
    assert v1_echo["description"] != v2_echo["description"]  # what tool pinning will notice
    assert v1_echo["inputSchema"] == v2_echo["inputSchema"]

    await pool.remove("member")
    assert [] == pool.names()
    with pytest.raises(NotFoundError):
        await pool.remove("member")


async def test_close_terminates_every_process() -> None:
    pool = UpstreamPool()
    await pool.add(stdio_config("a"))
    await pool.add(stdio_config("b", protocol="legacy"))
    pids = [(await pool.wait_ready(name)).pid for name in ("a", "b")]

    await pool.close()

    assert [True, True] == [pid is not None and process_gone(pid) for pid in pids]
    assert [] == pool.names()
    with pytest.raises(RuntimeError):
        await pool.add(stdio_config("c"))


async def test_config_from_a_policy_server_spec() -> None:
    spec = McpServerSpec(
        name="github",
        transport=Transport.STDIO,
        command="npx",
        args=("-y", "server-github"),
        env={"GITHUB_TOKEN": "resolved"},
    )

    config = UpstreamConfig.from_spec(spec, cwd="/srv")

    assert (
        UpstreamConfig(
            name="github",
            transport="stdio",
            command="npx",
            args=("-y", "server-github"),
            env={"GITHUB_TOKEN": "resolved"},
            cwd="/srv",
        )
        == config
    )
    with pytest.raises(ConfigError, match="MCP server 'x': unknown transport 'carrier-pigeon'"):
        UpstreamConfig(name="x", transport="carrier-pigeon", command="x")
    with pytest.raises(ConfigError, match="MCP server 'x': a sse server needs a url"):
        UpstreamConfig(name="x", transport="sse")
    with pytest.raises(ConfigError, match="MCP server 'x': a stdio server needs a command"):
        UpstreamConfig(name="x", transport="stdio")


# -- HTTP servers that go away -------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "protocol"),
    [("streamable-http", "auto"), ("streamable-http", "legacy"), ("sse", "auto")],
)
async def test_a_restarted_http_server_is_reconnected(
    pool: UpstreamPool, transport: str, protocol: str
) -> None:
    kind = "sse" if transport == "sse" else "http"
    server = await anyio.to_thread.run_sync(ServerProcess, kind)
    try:
        await pool.add(http_config("web", server.url, transport=transport, protocol=protocol))
        first_pid = structured(await pool.call_tool("web", "stats", {}))["pid"]

        with pytest.raises(McpUpstreamError) as caught:
            await pool.call_tool("web", "crash", {})
        assert "web" == caught.value.server
        assert "tools/call 'crash' on MCP server 'web' failed" in str(caught.value)

        await anyio.to_thread.run_sync(server.stop)  # it exited; reap it
        server = await anyio.to_thread.run_sync(ServerProcess, kind, server.port)
        health = await pool.wait_ready("web", timeout=20)
        result = await pool.call_tool("web", "echo", {"text": "reconnected"})

        assert [{"type": "text", "text": "reconnected"}] == result["content"]
        assert first_pid != structured(await pool.call_tool("web", "stats", {}))["pid"]
        assert health.restarts >= 1
        assert health.last_error is not None
    finally:
        server.stop()


async def test_an_expired_http_session_is_renewed_transparently(pool: UpstreamPool) -> None:
    server = await anyio.to_thread.run_sync(ServerProcess, "http")
    try:
        await pool.add(http_config("sessions", server.url, protocol="legacy"))
        first = structured(await pool.call_tool("sessions", "stats", {}))
        server.stop()  # behind the pool's back; the new server knows no session
        server = await anyio.to_thread.run_sync(ServerProcess, "http", server.port)

        second = structured(await pool.call_tool("sessions", "stats", {}))

        assert first["session_id"] is not None
        assert second["session_id"] is not None
        assert first["session_id"] != second["session_id"]
        assert first["pid"] != second["pid"]
    finally:
        server.stop()


# -- the npm reference server --------------------------------------------------------------


async def test_the_npm_reference_server_through_the_pool(
    pool: UpstreamPool, everything_server: Any
) -> None:
    config = UpstreamConfig(
        name="everything", transport="stdio", command=str(everything_server), args=("stdio",)
    )
    await pool.add(config)
    tools = await pool.list_tools("everything")
    async with direct_client(config) as client:
        assert await direct_tools(client) == tools
        for tool, arguments in EVERYTHING_CALLS:
            expected = await direct_raw(client, call(tool, arguments))
            actual = await pool.call_tool("everything", tool, arguments)
            assert without_clock_times(expected) == without_clock_times(actual), tool

    names = [tool["name"] for tool in tools]
    assert {name for name, _ in EVERYTHING_CALLS} <= set(names)
    # It speaks only the handshake era: the SDK's discovery probe fell back to initialize.
    assert "2025-11-25" == pool.health("everything").protocol_version
    image = await pool.call_tool("everything", "get-tiny-image", {})
    assert ["text", "image", "text"] == [block["type"] for block in image["content"]]
    assert "image/png" == image["content"][1]["mimeType"]
    weather = await pool.call_tool("everything", "get-structured-content", {"location": "New York"})
    assert {"temperature", "conditions", "humidity"} == set(weather["structuredContent"])
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    await pool.call_tool(
        "everything",
        "trigger-long-running-operation",
        {"duration": 0.3, "steps": 3},
        progress=on_progress,
    )
    assert [1.0, 2.0, 3.0] == [progress for progress, _, _ in seen]
    assert {3.0} == {total for _, total, _ in seen}
