"""The official MCP reference server (``@modelcontextprotocol/server-everything``, the pinned
npm version) behind Preloop: every tool it offers is listed through ``/mcp`` and, called
through Preloop, returns what the MCP SDK's own client gets when it calls the server directly
with the same arguments. The agent speaks either protocol era; the server speaks only the
handshake era.

What legitimately differs, and is normalised (nothing else is):

- clock times in the dynamic resources the server stamps (``without_clock_times``);
- ``get-env``'s text, a JSON object of the process environment, compared as an object: the two
  launchers list the same variables in another order (both start the server with Preloop's
  documented base environment plus the policy's ``env``);
- ``isError: false``, which the server leaves out (false is the default) and the MCP SDK
  behind Preloop's endpoint always writes out;
- for a 2026-07-28 agent, that era's envelope on every result (``resultType``, and the
  ``serverInfo`` Preloop's endpoint adds to ``_meta``), and the tools' ``execution`` field,
  which that era no longer has (the SDK leaves it out when it serialises a listing).

Tools that need client features: the server registers ``trigger-sampling-request``,
``trigger-elicitation-request``, ``trigger-url-elicitation``, ``get-roots-list`` and the async
sampling/elicitation tools only for a client that declares sampling, elicitation or roots.
Preloop's upstream session declares none of them (it relays no server-to-client requests), so
they are not offered through Preloop; the direct client declares none either, so the listings
match. ``simulate-research-query`` requires task augmentation, which Preloop does not forward:
called plainly it answers with the same ``isError`` result directly and through Preloop.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.mcp import UpstreamConfig
from server.mcp._stdio import base_environment
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.mcp.support import (
    EVERYTHING_CALLS,
    agent,
    call,
    calls_by,
    direct_client,
    direct_raw,
    direct_tools,
    new_agent_key,
    raw_call,
    tools_of,
    without_clock_times,
)

MODES = ["auto", "legacy"]
SERVER = "everything"
SERVER_INFO = "io.modelcontextprotocol/serverInfo"
POLICY_ENV = {"EVERYTHING_DEPLOYMENT": "set by the policy"}

# Every tool the server offers a client without sampling, elicitation or roots.
EVERYTHING_TOOLS = [
    "echo",
    "get-annotated-message",
    "get-env",
    "get-resource-links",
    "get-resource-reference",
    "get-structured-content",
    "get-sum",
    "get-tiny-image",
    "gzip-file-as-resource",
    "simulate-research-query",
    "toggle-simulated-logging",
    "toggle-subscriber-updates",
    "trigger-long-running-operation",
]
HELLO = "data:text/plain;base64,aGVsbG8sIHdvcmxk"  # a data: URI, so gzip needs no network

# The pool test's table, plus the tools that need more care. In order: a toggle is called
# twice, so each session ends with the simulated notifications off again.
CALLS: list[tuple[str, dict[str, Any]]] = [
    *EVERYTHING_CALLS,
    ("get-env", {}),
    ("gzip-file-as-resource", {"name": "hello.gz", "data": HELLO, "outputType": "resource"}),
    ("gzip-file-as-resource", {"name": "link.gz", "data": HELLO, "outputType": "resourceLink"}),
    ("toggle-simulated-logging", {}),
    ("toggle-simulated-logging", {}),
    ("toggle-subscriber-updates", {}),
    ("toggle-subscriber-updates", {}),
    ("trigger-long-running-operation", {"duration": 0.2, "steps": 2}),
    ("simulate-research-query", {"topic": "python"}),
]

POLICY = """\
version: "1.0"
metadata: {name: the MCP reference server}
mcp_servers:
  - name: %(server)s
    transport: stdio
    command: "%(command)s"
    args: ["stdio"]
    env: %(env)s
tools:
%(tools)s
defaults: {action: deny, unknown_tools: deny}
"""


def policy_for(command: Path) -> str:
    tools = "\n".join(
        f"  - {{name: {tool}, server: {SERVER}, action: allow}}" for tool in EVERYTHING_TOOLS
    )
    return POLICY % {
        "server": SERVER,
        "command": command,
        "env": json.dumps(POLICY_ENV),
        "tools": tools,
    }


@pytest.fixture(scope="module")
def everything_behind_preloop(
    tmp_path_factory: pytest.TempPathFactory, everything_server: Path
) -> Iterator[LiveServer]:
    """The real app on uvicorn, with the reference server as the stdio upstream."""
    tmp_path = tmp_path_factory.mktemp("everything")
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_for(everything_server))
    with run_live(make_settings(tmp_path, PRELOOP_POLICY_FILE=str(policy))) as live:
        yield live


def direct_config(command: Path) -> UpstreamConfig:
    """The same server, started by the SDK's client with the environment Preloop gives it."""
    return UpstreamConfig(
        name=SERVER,
        transport="stdio",
        command=str(command),
        args=("stdio",),
        env=base_environment() | POLICY_ENV,
    )


def comparable(tool: str, result: dict[str, Any], mode: str) -> Any:
    """``result`` without what legitimately differs (see the module's docstring)."""
    result = {"isError": False, **result}
    if mode == "auto":
        result.pop("resultType", None)
        meta = {k: v for k, v in (result.pop("_meta", None) or {}).items() if k != SERVER_INFO}
        if meta:
            result["_meta"] = meta
    if tool == "get-env":
        [block] = result["content"]
        result["content"] = [{**block, "text": json.loads(block["text"])}]
    return without_clock_times(result)


def as_listed(tool: dict[str, Any], mode: str) -> dict[str, Any]:
    """How Preloop lists a tool of the server to an agent speaking ``mode``'s era."""
    shown = {**tool, "name": f"{SERVER}__{tool['name']}"}
    if mode == "auto":
        shown.pop("execution", None)
    return shown


@pytest.mark.parametrize("mode", MODES)
async def test_every_tool_is_listed_and_answers_as_it_does_directly(
    everything_behind_preloop: LiveServer, everything_server: Path, mode: str
) -> None:
    live = everything_behind_preloop
    key, key_id = await new_agent_key(live, f"everything {mode}")
    expected: list[dict[str, Any]] = []
    actual: list[dict[str, Any]] = []
    async with direct_client(direct_config(everything_server)) as direct:
        direct_listing = await direct_tools(direct)
        for tool, arguments in CALLS:
            expected.append(await direct_raw(direct, call(tool, arguments)))
    async with agent(live, key, mode) as client:
        listed = await tools_of(client)
        for tool, arguments in CALLS:
            actual.append(await raw_call(client, f"{SERVER}__{tool}", arguments))

    assert sorted(tool["name"] for tool in direct_listing) == EVERYTHING_TOOLS
    assert {tool for tool, _ in CALLS} == set(EVERYTHING_TOOLS)  # every tool is called
    assert {name: tool for name, tool in listed.items() if name != "get_approval_status"} == {
        f"{SERVER}__{tool['name']}": as_listed(tool, mode) for tool in direct_listing
    }
    for (tool, _), direct_result, through_preloop in zip(CALLS, expected, actual, strict=True):
        assert comparable(tool, direct_result, "legacy") == comparable(
            tool, through_preloop, mode
        ), tool
    env = json.loads(actual[CALLS.index(("get-env", {}))]["content"][0]["text"])
    assert env["EVERYTHING_DEPLOYMENT"] == "set by the policy"  # and nothing but the base
    events = await calls_by(live, key_id)
    assert [(e["tool"], e["decision"], e["status"]) for e in events] == [
        (tool, "allow", "error" if tool == "simulate-research-query" else "ok") for tool, _ in CALLS
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_progress_is_relayed_as_the_server_sends_it(
    everything_behind_preloop: LiveServer, everything_server: Path, mode: str
) -> None:
    live = everything_behind_preloop
    direct_progress: list[tuple[float, float | None, str | None]] = []
    relayed: list[tuple[float, float | None, str | None]] = []

    def to(seen: list[tuple[float, float | None, str | None]]) -> Any:
        async def record(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        return record

    arguments = {"duration": 0.3, "steps": 3}
    async with direct_client(direct_config(everything_server)) as direct:
        await direct.call_tool(
            "trigger-long-running-operation", arguments, progress_callback=to(direct_progress)
        )
    async with agent(live, live.admin_key, mode) as client:
        await client.call_tool(
            f"{SERVER}__trigger-long-running-operation",
            arguments,
            progress_callback=to(relayed),
        )

    assert [progress for progress, _, _ in direct_progress] == [1.0, 2.0, 3.0]
    assert relayed == direct_progress


LISTING_POLICY = """\
version: "1.0"
metadata: {name: a few tools of the MCP reference server}
mcp_servers:
  - name: %(server)s
    transport: stdio
    command: "%(command)s"
    args: ["stdio"]
approval_workflows:
  - {name: later, async_approval: true}
tools:
  - {name: echo, server: %(server)s, action: allow}
  - {name: get-sum, server: %(server)s, action: require_approval, approval_workflow: later}
  - name: get-env
    server: %(server)s
    action: allow
    conditions:
      - {action: deny, message: "The environment stays private."}
defaults: {action: deny, unknown_tools: deny}
"""


@pytest.mark.parametrize("mode", MODES)
async def test_only_the_tools_the_policy_may_run_are_listed(
    tmp_path: Path, everything_server: Path, mode: str
) -> None:
    # The example: with unknown_tools: deny, the 13 tools were all listed.
    policy = tmp_path / "policy.yaml"
    policy.write_text(LISTING_POLICY % {"server": SERVER, "command": everything_server})
    with run_live(make_settings(tmp_path, PRELOOP_POLICY_FILE=str(policy))) as live:
        key, key_id = await new_agent_key(live, "a few tools")
        async with agent(live, key, mode) as client:
            listed = await tools_of(client)
            hidden = await raw_call(client, f"{SERVER}__get-tiny-image", {})
            denied = await raw_call(client, f"{SERVER}__get-env", {})
        events = await calls_by(live, key_id)
    assert {f"{SERVER}__echo", f"{SERVER}__get-sum", "get_approval_status"} == set(listed)
    assert True is hidden["isError"]
    assert True is denied["isError"]
    assert "The environment stays private." in denied["content"][0]["text"]
    assert [("get-tiny-image", "deny", "denied"), ("get-env", "deny", "denied")] == [
        (e["tool"], e["decision"], e["status"]) for e in events
    ]
