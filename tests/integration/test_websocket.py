"""The unified WebSocket end to end: a real uvicorn, the ``websockets`` client, approvals opened
by a real MCP agent call (the SDK client against /mcp, the stdio test server behind it) and
decided through REST."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from hub.events import ApprovalRequested
from hub.policy import ApprovalWorkflow, Decision
from hub.policy.model import Action
from hub.records import Account, Role
from server.bootstrap import Hub
from server.ws import UnifiedSocket
from tests.integration.conftest import Api, LiveServer, make_settings, run_live
from tests.integration.mcp.conftest import GATEWAY_POLICY
from tests.integration.mcp.support import REPO, agent, agent_key, new_agent_key, raw_call

WAIT = 30


class Served(msgspec.Struct):
    """The live server and, for setting up another account, its hub and event loop."""

    live: LiveServer
    hub: Hub
    loop: asyncio.AbstractEventLoop

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` in the server's event loop (where its hub lives)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(GATEWAY_POLICY % {"python": sys.executable})
    monkeypatch.chdir(REPO)  # the upstream runs `-m tests.servers...` from the repo root
    monkeypatch.setenv("DEMO_TOOLSET", "v1")
    settings = make_settings(
        tmp_path,
        PRELOOP_POLICY_FILE=str(policy),
        PRELOOP_MCP_ENV_ALLOW="DEMO_TOOLSET",
        PRELOOP_SERVER_WS_HEARTBEAT_SECONDS="0.2",
        PRELOOP_SERVER_WS_ACTIVITY_SECONDS="0.05",
    )
    ready: dict[str, Any] = {}

    async def on_ready(hub: Hub) -> None:
        ready.update(hub=hub, loop=asyncio.get_running_loop())

    with run_live(settings, on_ready=on_ready) as live:
        yield Served(live=live, hub=ready["hub"], loop=ready["loop"])


def ws_url(live: LiveServer, query: str = "") -> str:
    return live.url.replace("http://", "ws://", 1) + "/api/v1/ws/unified" + query


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def next_message(ws: ClientConnection, *, heartbeats: bool = False) -> dict[str, Any]:
    """The next server message (heartbeats skipped unless asked for)."""
    async with asyncio.timeout(WAIT):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if heartbeats or message["type"] != "heartbeat":
                return message


async def until_closed(ws: ClientConnection) -> None:
    """Read messages until the server closes the socket (``ConnectionClosed``)."""
    while True:
        await next_message(ws)


async def send(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    return await next_message(ws)


async def subscribed(ws: ClientConnection, topic: str, **filters: Any) -> None:
    connected = await next_message(ws)
    assert connected["type"] == "connected"
    answer = await send(ws, {"type": "subscribe", "topic": topic, "filters": filters})
    assert answer["type"] == "subscribed", answer
    assert answer["topic"] == topic


async def next_event(ws: ClientConnection) -> dict[str, Any]:
    message = await next_message(ws)
    assert message["type"] == "event", message
    event: dict[str, Any] = message["event"]
    return event


async def held_add(live: LiveServer, key: str) -> str:
    """An agent's call of ``demo__add`` (async approval): the approval request's id."""
    async with agent(live, key, "legacy") as client:
        held = await raw_call(client, "demo__add", {"a": 2, "b": 3})
    approval_id: str = held["structuredContent"]["approval_id"]
    return approval_id


async def decide(live: LiveServer, approval_id: str, verb: str) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=WAIT) as http:
        response = await http.post(
            f"/api/v1/approvals/{approval_id}/{verb}", json={}, headers=bearer(live.admin_key)
        )
    assert response.status_code == 200, response.text


async def test_refuses_connections_without_a_valid_key(served: Served) -> None:
    live = served.live
    for url, headers in [
        (ws_url(live), {}),
        (ws_url(live, "?token=pl_nope_nope"), {}),
        (ws_url(live), bearer("pl_nope_nope")),
        (ws_url(live), {"Authorization": "Basic abc"}),
    ]:
        async with connect(url, additional_headers=headers) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await next_message(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401
        assert closed.value.rcvd.reason
    async with connect(ws_url(live)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await next_message(ws)
    assert closed.value.rcvd is not None
    assert "missing API key" in closed.value.rcvd.reason
    async with httpx.AsyncClient(timeout=WAIT) as http:
        plain = await http.get(f"{live.url}/api/v1/ws/unified")
    assert plain.status_code == 426


async def test_agent_call_and_rest_decision_arrive_as_events(served: Served) -> None:
    live = served.live
    key = await agent_key(live)
    async with connect(ws_url(live), additional_headers=bearer(live.admin_key)) as ws:
        await subscribed(ws, "approvals")
        approval_id = await held_add(live, key)
        requested = await next_event(ws)
        assert requested["type"] == "approval.requested"
        assert requested["request_id"] == approval_id
        assert (requested["tool"], requested["server"]) == ("add", "demo")
        await decide(live, approval_id, "approve")
        kinds = []
        while (event := await next_event(ws))["type"] != "approval.decided":
            kinds.append(event["type"])
        assert kinds == ["approval.voted"]
    assert event["request_id"] == approval_id
    assert event["status"] == "approved"


async def test_filters_and_an_agent_sees_only_its_own_calls(served: Served) -> None:
    live = served.live
    first, second = await agent_key(live, "first"), await agent_key(live, "second")
    async with (
        connect(ws_url(live), additional_headers=bearer(live.admin_key)) as approved_only,
        connect(ws_url(live, f"?token={second}")) as own,
    ):
        await subscribed(approved_only, "approvals", status=["approved"], tool="add")
        await subscribed(own, "approvals")
        denied = await held_add(live, first)
        await decide(live, denied, "deny")
        mine = await held_add(live, second)
        await decide(live, mine, "approve")
        event = await next_event(approved_only)
        assert (event["type"], event["request_id"]) == ("approval.decided", mine)
        seen = [await next_event(own) for _ in range(3)]  # nothing of the first agent's
        assert [(e["type"], e["request_id"]) for e in seen] == [
            ("approval.requested", mine),
            ("approval.voted", mine),
            ("approval.decided", mine),
        ]
        refused = await send(own, {"type": "subscribe", "topic": "activity"})
        assert refused["type"] == "error"
        assert "agent key" in refused["message"]


async def test_activity_streams_new_audit_events_with_filters(served: Served) -> None:
    live = served.live
    async with connect(ws_url(live), additional_headers=bearer(live.admin_key)) as ws:
        await subscribed(ws, "activity", kind=["tool.", "approval.decided"])
        key = await agent_key(live)  # audited as key.created: filtered out
        approval_id = await held_add(live, key)
        await decide(live, approval_id, "deny")
        seen = [await next_event(ws) for _ in range(2)]
    assert [e["type"] for e in seen] == ["audit.appended"] * 2
    by_kind = {e["kind"]: e for e in seen}  # tool calls may be written in a later batch
    assert sorted(by_kind) == ["approval.decided", "tool.call"]
    assert seen[0]["seq"] < seen[1]["seq"]
    assert by_kind["tool.call"]["data"]["tool"] == "add"
    assert "hash" not in seen[0]


async def test_another_accounts_events_never_arrive(served: Served) -> None:
    live = served.live

    async def other_account_request() -> str:
        hub = served.hub
        account = Account(id="acct_other", name="other", created_at=datetime.now(UTC))
        await hub.storage.accounts.add(account)
        created = await hub.identity.create_key(
            account.id, name="other agent", role=Role.AGENT, actor="test"
        )
        caller = await hub.identity.authenticate(created.secret)
        request = await hub.approvals.open(
            caller=caller,
            server="demo",
            tool="add",
            args={"a": 1},
            justification=None,
            policy_version=1,
            workflow=msgspec.convert({"name": "wf"}, ApprovalWorkflow),
            decision=Decision(action=Action.REQUIRE_APPROVAL, rule="add#1"),
        )
        return request.id

    key = await agent_key(live)
    async with connect(ws_url(live), additional_headers=bearer(live.admin_key)) as ws:
        await subscribed(ws, "approvals")
        elsewhere = await served.run(other_account_request())
        ours = await held_add(live, key)
        event = await next_event(ws)
    assert event["request_id"] == ours != elsewhere


async def test_bad_messages_get_errors_and_the_socket_stays_open(served: Served) -> None:
    live = served.live
    async with connect(ws_url(live), additional_headers=bearer(live.admin_key)) as ws:
        connected = await next_message(ws)
        assert connected["role"] == "admin"
        answers = [
            await send(ws, {"type": "subscribe", "topic": "nope"}),
            await send(ws, {"type": "subscribe", "topic": "approvals", "filters": {"x": "1"}}),
            await send(ws, {"type": "subscribe", "topic": "approvals", "filters": {"tool": 3}}),
            await send(ws, {"type": "dance"}),
            await send(ws, {"topic": "approvals"}),
        ]
        await ws.send("{not json")
        answers.append(await next_message(ws))
        await ws.send(b'{"type": "ping"}')
        answers.append(await next_message(ws))
        assert [a["type"] for a in answers] == ["error"] * 7
        assert "text frames" in answers[6]["message"]
        messages = [a["message"] for a in answers]
        assert "unknown topic 'nope'" in messages[0]
        assert "unknown filter 'x'" in messages[1]
        assert "must be a string or a list of strings" in messages[2]
        assert "unknown message type 'dance'" in messages[3]
        assert '"type"' in messages[4]
        assert "not valid JSON" in messages[5]
        assert await send(ws, {"type": "ping"}) == {"type": "pong"}
        reserved = await send(ws, {"type": "subscribe", "topic": "flow_executions"})
        assert reserved == {"type": "subscribed", "topic": "flow_executions", "filters": {}}
        gone = await send(ws, {"type": "unsubscribe", "topic": "flow_executions"})
        assert gone == {"type": "unsubscribed", "topic": "flow_executions"}


async def test_a_revoked_key_loses_its_socket(served: Served) -> None:
    live = served.live
    secret, key_id = await new_agent_key(live, "short-lived")
    async with connect(ws_url(live, f"?token={secret}")) as ws:
        await subscribed(ws, "approvals")
        async with httpx.AsyncClient(base_url=live.url, timeout=WAIT) as http:
            revoked = await http.post(
                f"/api/v1/keys/{key_id}/revoke", headers=bearer(live.admin_key)
            )
        assert revoked.status_code == 200, revoked.text
        with pytest.raises(ConnectionClosed) as closed:
            await until_closed(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    assert "revoked" in closed.value.rcvd.reason


async def test_heartbeats_arrive(served: Served) -> None:
    live = served.live
    async with connect(ws_url(live, f"?token={live.admin_key}")) as ws:
        connected = await next_message(ws, heartbeats=True)
        assert connected["heartbeat_seconds"] == 0.2
        beat = await next_message(ws, heartbeats=True)
        again = await next_message(ws, heartbeats=True)
    assert beat["type"] == again["type"] == "heartbeat"
    assert "at" in beat


async def test_a_failing_subscription_tells_the_client(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server error inside a subscription ends it with an ``error``, not a silent stop."""
    caller = await api.hub.identity.authenticate(api.admin_key)
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    socket = UnifiedSocket(api.hub, caller, sent.put)
    subscribe = {"type": "subscribe", "topic": "approvals", "filters": {"tool": "add"}}
    await socket.handle(json.dumps(subscribe))  # a tool filter reads the request
    assert (await sent.get())["type"] == "subscribed"

    async def broken(account_id: str, request_id: str) -> None:
        raise RuntimeError("the store is gone")

    monkeypatch.setattr(api.hub.approvals, "get", broken)
    event = ApprovalRequested(
        account_id=caller.account_id,
        at=datetime.now(UTC),
        request_id="apr_1",
        tool="add",
        server="demo",
        workflow="wf",
    )
    await api.hub.bus.publish("approvals", event)
    async with asyncio.timeout(WAIT):
        error = await sent.get()
    assert error["type"] == "error"
    assert error["topic"] == "approvals"
    assert "subscribe again" in error["message"]
    await socket.close()
