"""The pool's ``forward`` (the hot path: ``tools/call`` as raw JSON-RPC on the live session,
the result passed on as bytes) against real servers: the in-repo test server over every
transport and era, and a stdio server whose answers are canned bytes (raw_upstream.py).
Its failures read as ``call_tool``'s do; cancellation reaches the upstream and leaves no
waiter behind; its ids never meet the SDK's."""

from __future__ import annotations

import socket
import sys
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

from server.mcp import McpUpstreamError, UpstreamConfig, UpstreamPool
from server.mcp import _raw as raw
from tests.integration.mcp.raw_upstream import CANNED, MARKED
from tests.integration.mcp.support import REPO, ServerProcess, http_config, stdio_config

pytestmark = pytest.mark.asyncio(loop_scope="module")

LOSSLESS_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("echo", {"text": "hello"}),
    ("add", {"a": 2, "b": 3}),
    ("image", {}),
    ("audio", {}),
    ("resource_link", {}),
    ("embedded_resource", {}),
    ("fail", {"message": "it broke"}),
    ("whoami", {}),
    ("progress", {"steps": 2}),
]


def canned_config(name: str = "canned") -> UpstreamConfig:
    return UpstreamConfig(
        name=name,
        transport="stdio",
        command=sys.executable,
        args=("-m", "tests.integration.mcp.raw_upstream"),
        cwd=str(REPO),
        protocol="legacy",
    )


def raw_calls(pool: UpstreamPool, name: str) -> raw.RawCalls:
    """The raw requests in flight on ``name``'s live session."""
    live = pool._get(name)._live  # the waiters themselves
    assert live is not None
    channel = live.link.channel
    assert channel is not None
    return channel.calls


@pytest.fixture
def raw_sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the raw requests opened during the test."""
    opened: list[str] = []
    original = raw.RawCalls.open

    def spy(self: raw.RawCalls) -> raw.RawCall:
        call = original(self)
        opened.append(call.id)
        return call

    monkeypatch.setattr(raw.RawCalls, "open", spy)
    return opened


def structured(result: dict[str, Any]) -> Any:
    return result["structuredContent"]


# -- results ---------------------------------------------------------------------------------


async def test_a_forwarded_result_is_the_bytes_the_upstream_sent(
    pool: UpstreamPool, raw_sent: list[str]
) -> None:
    await pool.add(canned_config())

    result = await pool.forward("canned", "canned", {})

    assert CANNED.encode() == result.json
    assert result.is_error is False
    assert 1 == len(raw_sent)


async def test_forward_gives_what_call_tool_gives_on_every_transport(
    shared_pool: UpstreamPool, connected: UpstreamConfig, raw_sent: list[str]
) -> None:
    name = connected.name
    for tool, arguments in LOSSLESS_CALLS:
        forwarded = await shared_pool.forward(name, tool, arguments)
        called = await shared_pool.call_tool(name, tool, arguments)

        assert called == forwarded.as_dict(), tool
        assert called.get("isError", False) is forwarded.is_error
        # The SDK's server wrote it compactly, in its own key order: the same bytes again.
        assert msgspec.json.encode(called) == forwarded.json, tool
    # Legacy SSE has no raw channel: the SDK's way, as before.
    expected = 0 if connected.transport == "sse" else len(LOSSLESS_CALLS)
    assert expected == len(raw_sent)


async def test_config_headers_and_the_session_reach_the_server(
    shared_pool: UpstreamPool, connected: UpstreamConfig
) -> None:
    name = connected.name
    forwarded = structured((await shared_pool.forward(name, "whoami", {})).as_dict())
    stats = structured((await shared_pool.forward(name, "stats", {})).as_dict())
    reference = structured(await shared_pool.call_tool(name, "stats", {}))

    if connected.transport != "stdio":
        assert "from-config" == forwarded["header"]
    assert reference["session_id"] == stats["session_id"]  # the session's own Mcp-Session-Id
    assert reference["protocol_version"] == stats["protocol_version"]
    assert reference["handshakes"] == stats["handshakes"]


async def test_progress_reaches_the_callback_in_order_before_the_result(
    shared_pool: UpstreamPool, connected: UpstreamConfig
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append((progress, total, message))

    result = await shared_pool.forward(
        connected.name, "progress", {"steps": 4}, progress=on_progress
    )

    assert [(float(step), 4.0, f"step {step}") for step in range(1, 5)] == seen
    assert {"steps": 4, "had_token": True} == structured(result.as_dict())


# -- concurrency and ids ---------------------------------------------------------------------


async def test_concurrent_forwards_answered_out_of_order_get_their_own_answers(
    pool: UpstreamPool,
) -> None:
    await pool.add(canned_config())
    answers: dict[int, str] = {}
    sdk_answers: list[dict[str, Any]] = []

    async def one(n: int) -> None:
        result = await pool.forward("canned", "gather", {"n": n, "parties": 30})
        answers[n] = result.as_dict()["content"][0]["text"]

    async def sdk() -> None:
        # The SDK's answer carries text that looks like one of our ids: it stays the SDK's.
        sdk_answers.append(await pool.call_tool("canned", "marked", {}))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for n in range(30):
                tg.start_soon(one, n)
                if n % 10 == 0:
                    tg.start_soon(sdk)

    assert {n: str(n) for n in range(30)} == answers  # the server answered in reverse order
    assert [msgspec.json.decode(MARKED)] * 3 == sdk_answers
    assert 0 == len(raw_calls(pool, "canned"))


async def test_many_concurrent_forwards_and_sdk_calls_share_one_session(
    shared_pool: UpstreamPool, connected: UpstreamConfig
) -> None:
    name = connected.name
    before = structured(await shared_pool.call_tool(name, "stats", {}))
    got: dict[str, str] = {}

    async def forwarded(text: str) -> None:
        result = await shared_pool.forward(name, "echo", {"text": text})
        got[text] = result.as_dict()["content"][0]["text"]

    async def called(text: str) -> None:
        result = await shared_pool.call_tool(name, "echo", {"text": text})
        got[text] = result["content"][0]["text"]

    async with anyio.create_task_group() as tg:
        for n in range(40):
            tg.start_soon(forwarded, f"raw {n}")
            tg.start_soon(called, f"sdk {n}")
    after = structured(await shared_pool.call_tool(name, "stats", {}))

    assert {text: text for text in got} == got
    assert 80 == len(got)
    assert (before["pid"], before["session_id"]) == (after["pid"], after["session_id"])
    assert 0 == shared_pool.health(name).restarts
    if connected.transport != "sse":
        assert 0 == len(raw_calls(shared_pool, name))


# -- failures --------------------------------------------------------------------------------


async def test_a_json_rpc_error_is_relayed_as_call_tool_relays_it(pool: UpstreamPool) -> None:
    await pool.add(canned_config())

    with pytest.raises(McpUpstreamError) as forwarded:
        await pool.forward("canned", "error", {})
    with pytest.raises(McpUpstreamError) as called:
        await pool.call_tool("canned", "error", {})

    assert "tools/call 'error' on MCP server 'canned' failed: bad arguments" == str(forwarded.value)
    assert (str(called.value), -32602, {"field": "x"}, "canned") == (
        str(forwarded.value),
        forwarded.value.code,
        forwarded.value.data,
        forwarded.value.server,
    )


async def test_a_forward_that_takes_too_long_times_out_and_is_cancelled_upstream() -> None:
    async with UpstreamPool(call_timeout=0.5, connect_timeout=20) as pool:
        await pool.add(canned_config())

        with pytest.raises(McpUpstreamError) as caught:
            await pool.forward("canned", "hang", {})

        assert "tools/call 'hang' on MCP server 'canned' failed: no answer within 0.5s" == str(
            caught.value
        )
        assert -32001 == caught.value.code
        seen = structured((await pool.forward("canned", "cancelled", {})).as_dict())["seen"]
        assert 1 == len(seen)
        assert seen[0]["requestId"].startswith(raw.ID_PREFIX)
        assert "timed out after 0.5s" == seen[0]["reason"]
        assert 0 == len(raw_calls(pool, "canned"))
        assert 0 == pool.health("canned").restarts


async def test_a_cancelled_forward_tells_the_upstream_and_leaves_no_waiter(
    pool: UpstreamPool,
) -> None:
    await pool.add(canned_config())
    in_flight = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        in_flight.set()

    async def hanging() -> None:
        await pool.forward("canned", "hang", {}, progress=on_progress)

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(hanging)
            with anyio.fail_after(20):
                await in_flight.wait()
            scope.cancel()  # as when the agent that made the call goes away

    assert scope.cancelled_caught
    assert 0 == len(raw_calls(pool, "canned"))
    seen = structured((await pool.forward("canned", "cancelled", {})).as_dict())["seen"]
    assert [("caller cancelled", True)] == [
        (cancel["reason"], cancel["requestId"].startswith(raw.ID_PREFIX)) for cancel in seen
    ]
    assert ("ready", 0) == (pool.health("canned").state, pool.health("canned").restarts)


async def test_a_cancelled_forward_leaves_the_session_usable(
    shared_pool: UpstreamPool, connected: UpstreamConfig
) -> None:
    name = connected.name
    in_flight = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        in_flight.set()

    async def slow() -> None:
        await shared_pool.forward(name, "slow", {"seconds": 60}, progress=on_progress)

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            with anyio.fail_after(20):
                await in_flight.wait()
            scope.cancel()

    assert scope.cancelled_caught
    result = await shared_pool.forward(name, "echo", {"text": "next"})
    assert [{"type": "text", "text": "next"}] == result.as_dict()["content"]
    assert 0 == shared_pool.health(name).restarts
    if connected.transport != "sse":
        assert 0 == len(raw_calls(shared_pool, name))


@pytest.mark.parametrize("protocol", ["auto", "legacy"])
async def test_a_server_exiting_during_a_forward_fails_it_as_before(
    pool: UpstreamPool, protocol: str
) -> None:
    await pool.add(stdio_config("crashy", protocol=protocol))
    await pool.wait_ready("crashy")

    with pytest.raises(McpUpstreamError) as caught:
        await pool.forward("crashy", "crash", {})

    assert "tools/call 'crash' on MCP server 'crashy' failed: it exited with code 3" == str(
        caught.value
    )
    result = await pool.forward("crashy", "echo", {"text": "back again"})
    assert [{"type": "text", "text": "back again"}] == result.as_dict()["content"]
    assert pool.health("crashy").restarts >= 1


async def test_a_forward_in_flight_when_the_server_exits_fails_and_leaves_no_waiter(
    pool: UpstreamPool,
) -> None:
    await pool.add(canned_config())
    await pool.wait_ready("canned")
    calls = raw_calls(pool, "canned")
    errors: list[str] = []
    in_flight = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        in_flight.set()

    async def hanging() -> None:
        try:
            await pool.forward("canned", "hang", {}, progress=on_progress)
        except McpUpstreamError as exc:
            errors.append(str(exc))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(hanging)
            await in_flight.wait()
            with pytest.raises(McpUpstreamError):
                await pool.forward("canned", "exit", {})

    assert ["tools/call 'hang' on MCP server 'canned' failed: it exited with code 5"] == errors
    assert 0 == len(calls)


@pytest.mark.parametrize("protocol", ["auto", "legacy"])
async def test_an_http_server_crashing_during_a_forward_fails_it_and_is_reconnected(
    pool: UpstreamPool, protocol: str
) -> None:
    server = await anyio.to_thread.run_sync(ServerProcess, "http")
    try:
        await pool.add(http_config("web", server.url, protocol=protocol))
        await pool.wait_ready("web")

        with pytest.raises(McpUpstreamError) as caught:
            await pool.forward("web", "crash", {})
        assert "web" == caught.value.server
        assert str(caught.value).startswith("tools/call 'crash' on MCP server 'web' failed: it ")

        await anyio.to_thread.run_sync(server.stop)
        server = await anyio.to_thread.run_sync(ServerProcess, "http", server.port)
        await pool.wait_ready("web", timeout=20)
        result = await pool.forward("web", "echo", {"text": "reconnected"})
        assert [{"type": "text", "text": "reconnected"}] == result.as_dict()["content"]
    finally:
        server.stop()


async def test_an_expired_http_session_is_renewed_for_a_forward(pool: UpstreamPool) -> None:
    server = await anyio.to_thread.run_sync(ServerProcess, "http")
    try:
        await pool.add(http_config("sessions", server.url, protocol="legacy"))
        # Through the SDK: its answer also says the SDK's notifications/initialized POST is done
        # (stopping the server under it would end the session, not expire it).
        first = structured(await pool.call_tool("sessions", "stats", {}))
        server.stop()  # behind the pool's back; the new server knows no session
        server = await anyio.to_thread.run_sync(ServerProcess, "http", server.port)

        second = structured((await pool.forward("sessions", "stats", {})).as_dict())

        assert first["session_id"] is not None
        assert second["session_id"] is not None
        assert first["session_id"] != second["session_id"]
        assert first["pid"] != second["pid"]
    finally:
        server.stop()


async def test_an_http_server_answering_in_sse_keeps_its_connection(
    pool: UpstreamPool, http_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At the handshake era the test server answers every POST with an SSE stream, which it
    # closes after the answer: read to its end, the connection goes back to the pool.
    await pool.add(http_config("sse-answers", http_server.url, protocol="legacy"))
    for _ in range(3):
        await pool.forward("sse-answers", "echo", {"text": "warm"})
    connects: list[object] = []
    original = socket.socket.connect

    def counting(self: socket.socket, address: object) -> None:
        connects.append(address)
        return original(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", counting)
    for n in range(10):
        result = await pool.forward("sse-answers", "echo", {"text": str(n)})
        assert str(n) == result.as_dict()["content"][0]["text"]

    assert len(connects) <= 1  # not one connection per call
