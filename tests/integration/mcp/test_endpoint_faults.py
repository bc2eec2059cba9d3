"""Faults through Preloop's ``/mcp``, with the MCP SDK's own client as the agent (both protocol
eras): an upstream that crashes mid-call, agents that go away while their call waits for
approval, and a hundred agents at once.

The disconnect tests share one live server (uvicorn on 127.0.0.1, SQLite), so its serving on
after each fault is tested too; each test uses a key of its own and reads back only that key's
audit events. The crash tests get a server of their own (an upstream that crashes again soon
after a restart is retried with backoff, which a shared server would mix in), and so do the
hundred agents (who must be the first to list its tools).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.mcp.support import (
    REPO,
    agent,
    calls_by,
    eventually,
    new_agent_key,
    raw_call,
    text_of,
    tools_of,
)

MODES = ["auto", "legacy"]

FAULTS_POLICY = """\
version: "1.0"
metadata: {name: fault tests}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
approval_workflows:
  - {name: sync-approval, timeout_seconds: 600, async_approval: false}
tools:
  - {name: echo, server: demo, action: allow}
  - {name: slow, server: demo, action: allow}
  - {name: crash, server: demo, action: allow}
  - {name: stats, server: demo, action: allow}
  - {name: add_tool, server: demo, action: require_approval, approval_workflow: sync-approval}
defaults: {action: deny, unknown_tools: deny}
"""


@contextmanager
def serving(tmp_path: Path) -> Iterator[LiveServer]:
    """The real app on uvicorn in front of the stdio test server ``demo``."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(FAULTS_POLICY % {"python": sys.executable})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)  # the upstream runs `-m tests.servers...` from the repo root
        with run_live(make_settings(tmp_path, PRELOOP_POLICY_FILE=str(policy))) as live:
            yield live


@pytest.fixture(scope="module")
def faults_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(tmp_path_factory.mktemp("faults")) as live:
        yield live


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[LiveServer]:
    with serving(tmp_path) as live:
        yield live


def admin(live: LiveServer) -> httpx.AsyncClient:
    """The REST API as the administrator (who is also an approver)."""
    return httpx.AsyncClient(
        base_url=live.url, headers={"Authorization": f"Bearer {live.admin_key}"}, timeout=30
    )


# -- an upstream that crashes mid-call ------------------------------------------------------

CRASHED = "tools/call 'crash' on MCP server 'demo' failed: it exited with code 3"


@pytest.mark.parametrize("mode", MODES)
async def test_an_upstream_crash_is_an_error_result_and_the_upstream_restarts(
    own_server: LiveServer, mode: str
) -> None:
    live = own_server
    key, key_id = await new_agent_key(live, f"crash {mode}")
    in_flight = asyncio.Event()

    async def started(progress: float, total: float | None, message: str | None) -> None:
        in_flight.set()  # `slow` reports progress once it runs

    async with asyncio.timeout(60), agent(live, key, mode) as client:  # never a hang
        before = await raw_call(client, "demo__stats", {})
        slow = asyncio.create_task(
            client.call_tool("demo__slow", {"seconds": 60}, progress_callback=started)
        )
        await in_flight.wait()
        crashed = await raw_call(client, "demo__crash", {})
        interrupted = (await slow).model_dump(by_alias=True, mode="json", exclude_none=True)
        echoed = await raw_call(client, "demo__echo", {"text": "back again"})
        after = await raw_call(client, "demo__stats", {})

    # Tool results with isError (raw_call would raise on a JSON-RPC error), not hangs.
    assert crashed["isError"] is True
    assert text_of(crashed) == f"The upstream server 'demo' failed: {CRASHED}"
    assert interrupted["isError"] is True  # the other call the crash cut short
    assert text_of(interrupted).endswith("failed: it exited with code 3")
    assert text_of(echoed) == "back again"
    assert echoed.get("isError") in (None, False)
    assert before["structuredContent"]["pid"] != after["structuredContent"]["pid"]  # restarted
    async with admin(live) as http:
        [server] = (await http.get("/api/v1/servers/")).json()
    assert (server["name"], server["health"]["state"]) == ("demo", "ready")
    assert (server["health"]["restarts"], server["health"]["last_error"]) == (
        1,
        "exited with code 3",
    )
    events = await calls_by(live, key_id)
    assert sorted((e["tool"], e["status"]) for e in events) == [
        ("crash", "upstream_error"),
        ("echo", "ok"),
        ("slow", "upstream_error"),
        ("stats", "ok"),
        ("stats", "ok"),
    ]
    assert {e["error"] for e in events if e["status"] == "upstream_error"} == {
        CRASHED,
        "tools/call 'slow' on MCP server 'demo' failed: it exited with code 3",
    }


# -- an agent that goes away while its call waits for approval ------------------------------


async def pending_request_of(live: LiveServer, key_id: str) -> dict[str, Any]:
    """The key's approval request, once its call has opened it."""

    async def probe() -> dict[str, Any] | None:
        async with admin(live) as http:
            pending = (await http.get("/api/v1/approvals/", params={"status": "pending"})).json()
        mine = [request for request in pending if request["principal_key_id"] == key_id]
        return mine[0] if mine else None

    return await eventually(probe)


async def settled_status(live: LiveServer, request_id: str) -> str:
    """The request's status once it is no longer pending."""

    async def probe() -> str | None:
        async with admin(live) as http:
            shown = (await http.get(f"/api/v1/approvals/{request_id}")).json()
        status: str = shown["request"]["status"]
        return None if status == "pending" else status

    return await eventually(probe)


async def audited_calls(live: LiveServer, key_id: str) -> list[dict[str, Any]]:
    """The key's audit events, once there is one (the record follows the withdrawal)."""

    async def probe() -> list[dict[str, Any]] | None:
        return await calls_by(live, key_id) or None

    return await eventually(probe)


async def leave_by_cancelling(live: LiveServer, key: str, key_id: str, mode: str, tool: str) -> str:
    """The agent cancels its call (handshake era: notifications/cancelled; 2026-07-28: the
    request's stream is closed) and keeps its session."""
    async with agent(live, key, mode) as client:
        call = asyncio.create_task(raw_call(client, "demo__add_tool", {"name": tool}))
        request = await pending_request_of(live, key_id)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        return await settled_status(live, request["id"])  # while the session is still open


async def leave_by_closing(live: LiveServer, key: str, key_id: str, mode: str, tool: str) -> str:
    """The agent shuts its MCP client down mid-call (handshake era: the session is deleted)."""

    async def waiting_agent() -> None:
        async with agent(live, key, mode) as client:
            await raw_call(client, "demo__add_tool", {"name": tool})

    call = asyncio.create_task(waiting_agent())
    request = await pending_request_of(live, key_id)
    call.cancel()  # unwinds the client: its context managers close the session and transport
    with pytest.raises(asyncio.CancelledError):
        await call
    return await settled_status(live, request["id"])


async def leave_by_dying(live: LiveServer, key: str, key_id: str, mode: str, tool: str) -> str:
    """The agent's process is killed: no cancellation, no session deletion, only the TCP
    connection closing (which the handshake era does not count as a cancellation)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.servers.mcp_agent",
        f"{live.url}/mcp",
        key,
        mode,
        "demo__add_tool",
        json.dumps({"name": tool}),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        request = await pending_request_of(live, key_id)
    finally:
        process.kill()
        await process.communicate()
    return await settled_status(live, request["id"])


LEAVING = {"cancel": leave_by_cancelling, "close": leave_by_closing, "kill": leave_by_dying}


@pytest.mark.parametrize("how", list(LEAVING))
@pytest.mark.parametrize("mode", MODES)
async def test_an_agent_gone_while_waiting_for_approval_withdraws_the_call(
    faults_server: LiveServer, mode: str, how: str
) -> None:
    key, key_id = await new_agent_key(faults_server, f"leaves by {how} in {mode} mode")
    tool = f"never_{mode}_{how}"  # add_tool would register it: the proof that it ran

    status = await LEAVING[how](faults_server, key, key_id, mode, tool)

    assert status == "cancelled"
    [event] = await audited_calls(faults_server, key_id)
    assert (event["tool"], event["decision"], event["status"]) == (
        "add_tool",
        "require_approval",
        "cancelled",
    )
    async with admin(faults_server) as http:  # an approver who comes too late
        shown = (await http.get(f"/api/v1/approvals/{event['approval_id']}")).json()
        approved = await http.post(f"/api/v1/approvals/{event['approval_id']}/approve", json={})
    assert shown["request"]["decided_by"] == key_id  # withdrawn by the agent's own key
    assert approved.status_code == 409
    assert "already cancelled" in approved.json()["error"]["message"]
    async with agent(faults_server, faults_server.admin_key, "auto") as client:
        tools = await tools_of(client)
    assert f"demo__{tool}" not in tools  # the call never ran
    assert await calls_by(faults_server, key_id) == [event]  # and nothing else happened


@pytest.mark.parametrize("mode", MODES)
async def test_an_allowed_call_the_agent_cancels_is_audited_as_cancelled(
    faults_server: LiveServer, mode: str
) -> None:
    key, key_id = await new_agent_key(faults_server, f"cancels slow in {mode} mode")
    in_flight = asyncio.Event()

    async def started(progress: float, total: float | None, message: str | None) -> None:
        in_flight.set()

    async with agent(faults_server, key, mode) as client:
        call = asyncio.create_task(
            client.call_tool("demo__slow", {"seconds": 60}, progress_callback=started)
        )
        await asyncio.wait_for(in_flight.wait(), 30)  # the upstream runs it
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        echoed = await raw_call(client, "demo__echo", {"text": "still here"})

    assert text_of(echoed) == "still here"

    async def both_recorded() -> list[dict[str, Any]] | None:
        found = await calls_by(faults_server, key_id)  # the cancelled call's record may
        return found if len(found) == 2 else None  # land after the echo's

    events = await eventually(both_recorded)
    assert sorted((e["tool"], e["decision"], e["status"]) for e in events) == [
        ("echo", "allow", "ok"),
        ("slow", "allow", "cancelled"),
    ]


# -- many agents at once ---------------------------------------------------------------------

AGENTS = 100


async def test_a_hundred_agents_at_once(own_server: LiveServer) -> None:
    # A server of its own: the hundred agents are the first to list its tools.
    live = own_server
    key, key_id = await new_agent_key(live, "a hundred agents")
    everyone_connected = asyncio.Barrier(AGENTS)
    everyone_answered = asyncio.Barrier(AGENTS)

    async def one(number: int) -> tuple[list[str], dict[str, Any]]:
        async with agent(live, key, MODES[number % 2]) as client:
            await everyone_connected.wait()  # all sessions are open before any call
            tools = sorted(await tools_of(client))
            result = await raw_call(client, "demo__echo", {"text": f"agent {number}"})
            await everyone_answered.wait()  # and stay open until every call is answered
        return tools, result

    async with asyncio.timeout(120), asyncio.TaskGroup() as group:
        agents = [group.create_task(one(number)) for number in range(AGENTS)]
    answers = [task.result() for task in agents]

    listed = answers[0][0]
    assert {"get_approval_status", "demo__echo", "demo__add_tool"} <= set(listed)
    assert all(tools == listed for tools, _ in answers)
    assert [text_of(result) for _, result in answers] == [f"agent {n}" for n in range(AGENTS)]
    assert all(result.get("isError") in (None, False) for _, result in answers)
    events = await calls_by(live, key_id)
    assert len(events) == AGENTS
    assert {(e["tool"], e["decision"], e["status"]) for e in events} == {("echo", "allow", "ok")}
    assert sorted(e["args"]["text"] for e in events) == sorted(f"agent {n}" for n in range(AGENTS))
    legacy_sessions = {e["session"] for e in events if e["session"]}
    assert len(legacy_sessions) == AGENTS // 2  # one MCP session per handshake-era agent
    async with admin(live) as http:
        pinned = (
            await http.get("/api/v1/audit/", params={"kind": "tool.pinned", "limit": 1000})
        ).json()
    # Each tool pinned once, however many agents listed it first at the same time (every
    # tool of the server is pinned, also those the policy hides from the listing).
    pinned_tools = [event["data"]["tool"] for event in pinned]
    assert sorted(set(pinned_tools)) == sorted(pinned_tools)
    assert {name.removeprefix("demo__") for name in listed if name != "get_approval_status"} <= (
        set(pinned_tools)
    )
