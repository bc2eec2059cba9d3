"""The unified WebSocket end to end: a real uvicorn, the ``websockets`` client, approvals opened
by a real MCP agent call (the SDK client against /mcp, the stdio test server behind it) and
decided through REST."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
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

from hub import __version__
from hub.events import (
    SYSTEM_TOPIC,
    ApprovalRequested,
    ServerStarted,
    ServerStopping,
    ToolBlocked,
    UpstreamStateChanged,
)
from hub.memory import InMemoryStorage
from hub.policy import ApprovalWorkflow, Decision
from hub.policy.model import Action
from hub.records import Account, Role
from server.bootstrap import open_hub
from server.hub_services import Hub
from server.mcp.upstream import UpstreamHealth
from server.system_events import system_events_running
from server.ws import UnifiedSocket
from tests.integration.conftest import Api, LiveServer, make_settings, run_live
from tests.integration.mcp.conftest import GATEWAY_POLICY
from tests.integration.mcp.support import (
    REPO,
    agent,
    agent_key,
    eventually,
    held_approval_id,
    new_agent_key,
    raw_call,
)
from tests.integration.replicas import serve_replica

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
    return held_approval_id(held)


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


# -- the system topic ------------------------------------------------------------------------


async def upstream_pid(served: Served) -> int:
    """The pid of the ``demo`` upstream once it is ready (it connects in the background)."""

    async def health() -> UpstreamHealth:
        return served.hub.pool.health("demo")

    async def probe() -> int | None:
        found: UpstreamHealth = await served.run(health())
        return found.pid if found.state == "ready" else None

    return await eventually(probe)


async def test_an_upstream_crash_and_restart_arrive_on_the_system_topic(served: Served) -> None:
    live = served.live
    key = await agent_key(live)
    pid = await upstream_pid(served)
    async with (
        connect(ws_url(live), additional_headers=bearer(live.admin_key)) as ws,
        connect(ws_url(live, f"?token={key}")) as agent_ws,
    ):
        await subscribed(ws, "system", kind="upstream.", server="demo")
        connected = await next_message(agent_ws)
        assert connected["topics"] == ["approvals"]
        refused = await send(agent_ws, {"type": "subscribe", "topic": "system"})
        assert refused["type"] == "error"
        assert "an agent key may subscribe only to 'approvals'" in refused["message"]
        os.kill(pid, signal.SIGKILL)  # the upstream this test's server started
        down = await next_event(ws)
        back = await next_event(ws)
    assert down["type"] == back["type"] == "upstream.state_changed"
    assert (down["server"], down["state"]) == ("demo", "connecting")
    assert down["previous_state"] == "ready"
    assert down["error"]  # how it ended, e.g. killed by a signal
    assert (back["state"], back["previous_state"], back["restarts"]) == ("ready", "connecting", 1)
    assert down["replica"] == back["replica"] != ""
    assert down["account_id"] == connected["account_id"]
    assert await upstream_pid(served) != pid


async def apply_policy(live: LiveServer, source: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=live.url, timeout=WAIT) as http:
        answer = await http.post(
            "/api/v1/policies/apply",
            json={"source": source, "comment": "renamed"},
            headers=bearer(live.admin_key),
        )
    assert answer.status_code == 200, answer.text
    applied: dict[str, Any] = answer.json()
    return applied


async def test_policy_applies_arrive_on_the_system_topic_of_their_account_only(
    served: Served,
) -> None:
    live = served.live
    hub = served.hub
    other_policy = 'version: "1.0"\nmetadata: {name: elsewhere}\ntools: []\n'

    async def other_admin() -> str:
        account = Account(id="acct_sys", name="other", created_at=datetime.now(UTC))
        await hub.storage.accounts.add(account)
        created = await hub.identity.create_key(
            account.id, name="other admin", role=Role.ADMIN, actor="test"
        )
        return created.secret

    other_key = await served.run(other_admin())
    async with httpx.AsyncClient(base_url=live.url, timeout=WAIT) as http:
        current = await http.get("/api/v1/policies/export", headers=bearer(live.admin_key))
    source = current.json()["source"]
    async with (
        connect(ws_url(live), additional_headers=bearer(live.admin_key)) as ours,
        connect(ws_url(live, f"?token={other_key}")) as theirs,
    ):
        await subscribed(ours, "system", kind="policy.")
        await subscribed(theirs, "system")
        applied = await apply_policy(live, source.replace("gateway test", "renamed gateway"))
        await served.run(hub.policies.apply("acct_sys", other_policy, actor="test"))
        async with httpx.AsyncClient(base_url=live.url, timeout=WAIT) as http:
            rolled = await http.post(
                "/api/v1/policies/rollback", json={"version": 1}, headers=bearer(live.admin_key)
            )
        assert rolled.status_code == 200, rolled.text
        first, second = await next_event(ours), await next_event(ours)
        elsewhere = await next_event(theirs)
    assert first["type"] == "policy.applied"
    assert (first["version"], first["previous_version"]) == (applied["version"], 1)
    assert (first["name"], first["comment"]) == ("renamed gateway", "renamed")
    assert second["type"] == "policy.rolled_back"
    assert (second["version"], second["rolled_back_to"]) == (rolled.json()["version"], 1)
    assert second["name"] == "gateway test"
    # The other account's socket saw its own apply first: none of ours.
    assert (elsewhere["type"], elsewhere["account_id"]) == ("policy.applied", "acct_sys")
    assert elsewhere["name"] == "elsewhere"


async def test_a_replica_announces_its_start_and_its_stop(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    hub = await open_hub(settings, storage=InMemoryStorage())
    try:
        default = (await hub.identity.default_account()).id
        async with hub.bus.subscribe(SYSTEM_TOPIC) as events:
            async with system_events_running(hub):
                started = await anext(events)
            stopping = await anext(events)
    finally:
        await hub.close()
    assert isinstance(started, ServerStarted)
    assert isinstance(stopping, ServerStopping)
    assert started.replica == stopping.replica == f"{socket.gethostname()}:{os.getpid()}"
    assert (started.pid, started.version) == (os.getpid(), __version__)
    assert started.account_id == stopping.account_id == default


# -- device credentials ----------------------------------------------------------------------


async def test_a_device_sees_its_users_approvals_only_and_loses_the_socket_when_revoked(
    served: Served,
) -> None:
    live = served.live
    hub = served.hub
    admin = bearer(live.admin_key)
    async with httpx.AsyncClient(base_url=live.url, timeout=WAIT) as http:
        for email in ("ann@example.com", "bob@example.com"):
            user = await http.post("/api/v1/users/", json={"email": email}, headers=admin)
            assert user.status_code == 201, user.text
        team = {"name": "sre", "members": ["ann@example.com"]}
        assert (await http.post("/api/v1/teams/", json=team, headers=admin)).status_code == 201
        keys = {}
        for email in ("ann@example.com", "bob@example.com"):
            body = {"name": f"agent {email[:3]}", "role": "agent", "user_email": email}
            created = await http.post("/api/v1/keys/", json=body, headers=admin)
            assert created.status_code == 201, created.text
            keys[email] = created.json()["secret"]
        pairing = await http.post(
            "/api/v1/pairing-tokens/", json={"user": "ann@example.com"}, headers=admin
        )
        paired = await http.post(
            "/api/v1/devices/pair",
            json={"token": pairing.json()["token"], "name": "Ann's phone", "platform": "ios"},
        )
    assert paired.status_code == 201, paired.text
    credential, device_id = paired.json()["credential"], paired.json()["device"]["id"]

    async def opened(email: str, approvers: list[str]) -> str:
        agent_caller = await hub.identity.authenticate(keys[email])
        request = await hub.approvals.open(
            caller=agent_caller,
            server="demo",
            tool="add",
            args={"a": 1},
            justification=None,
            policy_version=1,
            workflow=msgspec.convert({"name": "wf", "approvers": approvers}, ApprovalWorkflow),
            decision=Decision(action=Action.REQUIRE_APPROVAL, rule="add#1"),
        )
        return request.id

    async with connect(ws_url(live, f"?token={credential}")) as ws:
        connected = await next_message(ws)
        assert (connected["role"], connected["device_id"]) == ("device", device_id)
        assert connected["topics"] == ["approvals"]
        for topic in ("activity", "system", "flow_executions"):
            refused = await send(ws, {"type": "subscribe", "topic": topic})
            assert refused["type"] == "error"
            assert "a device credential may subscribe only to 'approvals'" in refused["message"]
        answer = await send(ws, {"type": "subscribe", "topic": "approvals"})
        assert answer["type"] == "subscribed"
        await served.run(opened("bob@example.com", ["user:carol@example.com"]))  # not Ann's
        await served.run(opened("ann@example.com", []))  # Ann's own call: never hers
        hers = await served.run(opened("bob@example.com", ["team:sre"]))
        async with httpx.AsyncClient(base_url=live.url, timeout=WAIT) as http:
            approved = await http.post(
                f"/api/v1/devices/me/approvals/{hers}/approve", json={}, headers=bearer(credential)
            )
            assert approved.status_code == 200, approved.text
            seen = [await next_event(ws) for _ in range(3)]
            revoked = await http.post(f"/api/v1/devices/{device_id}/revoke", headers=admin)
        assert revoked.status_code == 200, revoked.text
        with pytest.raises(ConnectionClosed) as closed:
            await until_closed(ws)
    assert [(e["type"], e["request_id"]) for e in seen] == [
        ("approval.requested", hers),
        ("approval.voted", hers),
        ("approval.decided", hers),
    ]
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    assert "revoked" in closed.value.rcvd.reason


async def test_a_replica_starting_and_stopping_is_seen_from_another(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two ``preloop serve`` replicas on one PostgreSQL: A's socket hears of B's life."""
    with serve_replica(tmp_path / "a", postgres_url, cwd=REPO) as a:
        async with connect(ws_url(a), additional_headers=bearer(a.admin_key)) as ws:
            await subscribed(ws, "system", kind="server.")
            with serve_replica(tmp_path / "b", postgres_url, cwd=REPO, admin_key=a.admin_key):
                started = await next_event(ws)
            stopping = await next_event(ws)  # B published it before closing, as it stopped
    assert (started["type"], stopping["type"]) == ("server.started", "server.stopping")
    assert started["replica"] == stopping["replica"] == f"{started['hostname']}:{started['pid']}"
    assert started["pid"] != os.getpid()
    assert started["version"] == __version__


async def test_system_filters_and_the_account_decide_what_arrives(api: Api) -> None:
    caller = await api.hub.identity.authenticate(api.admin_key)
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    socket = UnifiedSocket(api.hub, caller, sent.put)
    filters = {"kind": ["upstream.", "tool.blocked"], "server": "github"}
    subscribe = {"type": "subscribe", "topic": "system", "filters": filters}
    await socket.handle(json.dumps(subscribe))
    assert (await sent.get())["type"] == "subscribed"
    now = datetime.now(UTC)
    ours = {"account_id": caller.account_id, "at": now}

    def upstream(server: str, **base: Any) -> UpstreamStateChanged:
        return UpstreamStateChanged(
            **base,
            server=server,
            state="ready",
            previous_state="connecting",
            error=None,
            restarts=0,
            replica="here:1",
        )

    for event in [
        upstream("github", account_id="acct_else", at=now),  # another account's
        upstream("slack", **ours),  # another server
        ServerStarted(**ours, replica="here:1", hostname="here", pid=1, version="1"),  # kind
        ToolBlocked(**ours, server="slack", tool="post", pinned_hash="a", hash="b"),  # server
        ToolBlocked(**ours, server="github", tool="create_issue", pinned_hash="a", hash="b"),
        upstream("github", **ours),
    ]:
        await api.hub.bus.publish(SYSTEM_TOPIC, event)
    async with asyncio.timeout(WAIT):
        first, second = await sent.get(), await sent.get()
    await socket.close()
    assert (first["topic"], first["event"]["type"]) == ("system", "tool.blocked")
    assert first["event"]["tool"] == "create_issue"
    assert second["event"]["type"] == "upstream.state_changed"
    assert second["event"]["server"] == "github"
    assert sent.empty()
