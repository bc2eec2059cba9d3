"""The tool-call pipeline's policy and approval path against the in-memory hub and a recording
upstream; outcomes rendered as the MCP edge answers them (server/mcp/_answers.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import msgspec
import pytest

from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.clock import FrozenClock
from hub.errors import ConflictError, PreloopError
from hub.events import InMemoryEventBus
from hub.held_calls import HeldCalls, Sealer
from hub.identity import IdentityService
from hub.keys import Caller
from hub.memory import InMemoryStorage
from hub.policy_versions import PolicyService
from hub.ports import AuditQuery, AuditStore
from hub.records import ApprovalStatus, AuditDraft, AuditEvent, Role
from hub.sync_waits import SyncWaits
from hub.tool_calls import STATUS_TOOL, Pins, Progress, ToolCalls, exposed_name
from hub.tool_results import ToolResult
from server.mcp._answers import answer

POLICY = """
version: "1.0"
metadata: {name: test}
defaults: {unknown_tools: deny, on_error: deny}
approval_workflows:
  - {name: sync-wf, timeout_seconds: 60}
  - {name: async-wf, timeout_seconds: 60, async_approval: true}
tools:
  - name: bash
    server: shell
    justification: optional
    conditions:
      - {expression: "args.command.startsWith('rm')", action: deny, message: "no deleting"}
      - {expression: "args.command.contains('deploy')", action: require_approval,
         approval_workflow: sync-wf}
      - {expression: "args.command.contains('release')", action: require_approval,
         approval_workflow: async-wf}
  - name: write
    justification: required
  - name: strict
    conditions:
      - {expression: "args.level > 3", action: allow}
"""


class CallRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One call of an upstream tool, as a test writes it."""

    server: str
    tool: str
    arguments: dict[str, Any] = {}
    session: str = ""


class RecordingUpstream:
    """Answers like an MCP server would, and remembers every call it got."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail = False

    async def forward(
        self, name: str, tool: str, arguments: dict[str, Any], *, progress: Progress | None = None
    ) -> ToolResult:
        self.calls.append((name, tool, arguments))
        if self.fail:
            raise PreloopError("upstream exited")
        return ToolResult.of(
            {
                "content": [{"type": "text", "text": f"ran {arguments}"}],
                "structuredContent": {"ok": True},
                "isError": False,
            }
        )


class StaticServers:
    """The upstream servers the test policy's tools live on."""

    names_ = ("fs", "shell", "x")

    async def names(self, account_id: str) -> list[str]:
        return list(self.names_)


class NoPins:
    """Tool pinning with nothing changed."""

    async def blocked(self, account_id: str, server: str, tool: str) -> bool:
        return False


def tool_calls(
    *,
    clock: FrozenClock,
    auditor: Auditor,
    policies: PolicyService,
    approvals: ApprovalService,
    upstream: RecordingUpstream,
    heartbeat_seconds: float = 10.0,
    held_calls: HeldCalls | None = None,
    sync_waits: SyncWaits | None = None,
    pins: Pins | None = None,
) -> ToolCalls:
    """The pipeline on the test's parts, every test server known and (unless ``pins`` says
    otherwise) no tool's definition changed."""
    return ToolCalls(
        clock=clock,
        auditor=auditor,
        policies=policies,
        approvals=approvals,
        upstream=upstream,
        servers=StaticServers(),
        pins=pins or NoPins(),
        heartbeat_seconds=heartbeat_seconds,
        held_calls=held_calls,
        sync_waits=sync_waits,
    )


async def run(
    pipeline: ToolCalls,
    caller: Caller,
    request: CallRequest,
    *,
    progress: Progress | None = None,
    gone: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """The call through the pipeline, answered as the MCP edge answers it."""
    outcome = await pipeline.call(
        caller,
        exposed_name(request.server, request.tool),
        dict(request.arguments),
        session=request.session,
        progress=progress,
        gone=gone,
    )
    return answer(outcome)


async def poll(pipeline: ToolCalls, caller: Caller, approval_id: str) -> dict[str, Any]:
    """The built-in get_approval_status, answered as the MCP edge answers it."""
    return answer(await pipeline.call(caller, STATUS_TOOL, {"approval_id": approval_id}))


class RoundTripAudit:
    """The in-memory audit store, with a write that suspends first as a database's does: the
    plain in-memory store never suspends, so no cancellation could cut its writes short."""

    def __init__(self, inner: AuditStore) -> None:
        self._inner = inner

    async def append(self, draft: AuditDraft) -> AuditEvent:
        await asyncio.sleep(0)
        return await self._inner.append(draft)

    async def query(self, account_id: str, query: AuditQuery) -> Sequence[AuditEvent]:
        return await self._inner.query(account_id, query)

    async def all(self, account_id: str) -> Sequence[AuditEvent]:
        return await self._inner.all(account_id)

    async def head(self, account_id: str) -> tuple[int, str] | None:
        return await self._inner.head(account_id)


class World(msgspec.Struct):
    tool_calls: ToolCalls
    approvals: ApprovalService
    identity: IdentityService
    storage: InMemoryStorage
    clock: FrozenClock
    upstream: RecordingUpstream
    bus: InMemoryEventBus
    agent: Caller
    approver: Caller

    async def call(
        self,
        caller: Caller,
        request: CallRequest,
        *,
        progress: Progress | None = None,
        gone: Callable[[], Any] | None = None,
    ) -> dict[str, Any]:
        return await run(self.tool_calls, caller, request, progress=progress, gone=gone)

    async def approval_status(self, caller: Caller, approval_id: str) -> dict[str, Any]:
        return await poll(self.tool_calls, caller, approval_id)

    async def audit(self) -> list[dict[str, Any]]:
        account = await self.identity.default_account()
        return [e.data for e in await self.storage.audit.all(account.id) if e.kind == "tool.call"]


async def make_world(
    policy: str | None = POLICY,
    heartbeat: float = 10.0,
    audit: Callable[[AuditStore], AuditStore] = RoundTripAudit,
    upstream: RecordingUpstream | None = None,
    sealer: Sealer | None = None,
) -> World:
    storage, clock = InMemoryStorage(), FrozenClock()
    auditor = Auditor(audit(storage.audit), clock)
    identity = IdentityService(storage, clock, auditor)
    account = await identity.default_account()
    policies = PolicyService(storage, clock, auditor)
    if policy is not None:
        await policies.apply(account.id, policy, actor="test")
    bus = InMemoryEventBus()
    approvals = ApprovalService(storage, clock, auditor, bus)
    upstream = upstream or RecordingUpstream()
    pipeline = tool_calls(
        clock=clock,
        auditor=auditor,
        policies=policies,
        approvals=approvals,
        upstream=upstream,
        heartbeat_seconds=heartbeat,
        held_calls=None if sealer is None else HeldCalls(storage.held_calls, sealer, clock),
    )

    async def key(role: Role) -> Caller:
        created = await identity.create_key(account.id, name=role.value, role=role, actor="t")
        return await identity.authenticate(created.secret)

    return World(
        tool_calls=pipeline,
        approvals=approvals,
        bus=bus,
        identity=identity,
        storage=storage,
        clock=clock,
        upstream=upstream,
        agent=await key(Role.AGENT),
        approver=await key(Role.APPROVER),
    )


def bash(command: str, **extra: Any) -> CallRequest:
    return CallRequest(server="shell", tool="bash", arguments={"command": command, **extra})


async def test_allow_forwards_without_the_justification_and_audits() -> None:
    world = await make_world()
    result = await world.call(world.agent, bash("ls", justification="look"))
    assert result["structuredContent"] == {"ok": True}
    assert world.upstream.calls == [("shell", "bash", {"command": "ls"})]
    [event] = await world.audit()
    assert (event["decision"], event["status"], event["justification"]) == ("allow", "ok", "look")
    assert event["rule"] == "defaults.action"
    assert event["duration_ms"] >= 0


async def test_deny_never_reaches_the_upstream() -> None:
    world = await make_world()
    result = await world.call(world.agent, bash("rm -rf /"))
    assert result["isError"] is True
    assert "no deleting" in result["content"][0]["text"]
    assert result["_meta"]["ai.preloop/decision"]["rule"] == "shell/bash#1"
    assert world.upstream.calls == []
    [event] = await world.audit()
    assert (event["decision"], event["status"]) == ("deny", "denied")


async def test_no_policy_denies() -> None:
    world = await make_world(policy=None)
    result = await world.call(world.agent, bash("ls"))
    assert result["isError"] is True
    assert "no policy" in result["content"][0]["text"]
    assert world.upstream.calls == []


async def test_required_justification_missing_is_refused_with_instructions() -> None:
    world = await make_world()
    result = await world.call(world.agent, CallRequest(server="fs", tool="write", arguments={}))
    assert result["isError"] is True
    assert "justification" in result["content"][0]["text"]
    assert world.upstream.calls == []


async def test_evaluation_error_never_allows() -> None:
    world = await make_world()
    result = await world.call(world.agent, CallRequest(server="x", tool="strict", arguments={}))
    assert result["isError"] is True
    assert world.upstream.calls == []
    [event] = await world.audit()
    assert "evaluation_error" in event


async def test_upstream_failure_is_an_error_result_and_audited() -> None:
    world = await make_world()
    world.upstream.fail = True
    result = await world.call(world.agent, bash("ls"))
    assert result["isError"] is True
    assert "upstream exited" in result["content"][0]["text"]
    [event] = await world.audit()
    assert event["status"] == "upstream_error"


@pytest.mark.parametrize("watched", [False, True], ids=["no-gone", "gone-never-resolves"])
async def test_sync_approval_heartbeats_then_runs_once_approved(watched: bool) -> None:
    # The MCP endpoint always passes `gone`; an agent that stays gets the same outcome.
    world = await make_world(heartbeat=0.01)
    gone = asyncio.Event().wait if watched else None
    beats: list[str | None] = []
    first_beat = asyncio.Event()

    async def progress(done: float, total: float | None, message: str | None) -> None:
        beats.append(message)
        first_beat.set()

    call = asyncio.create_task(
        world.call(world.agent, bash("deploy api"), progress=progress, gone=gone)
    )
    await asyncio.wait_for(first_beat.wait(), timeout=10)
    assert world.upstream.calls == []
    [pending] = await world.approvals.list(world.agent.account_id)
    await world.approvals.decide(
        world.agent.account_id, pending.id, approver=world.approver, approve=True
    )
    result = await asyncio.wait_for(call, timeout=10)
    assert result["isError"] is False
    assert world.upstream.calls == [("shell", "bash", {"command": "deploy api"})]
    assert beats
    assert all(pending.id in (m or "") for m in beats)
    [event] = await world.audit()
    assert (
        event["approval_id"],
        event["decided_by"],
        event["decided_by_name"],
        event["decided_via"],
        event["status"],
    ) == (
        pending.id,
        world.approver.key_id,  # a key with no user is its own person
        "approver",  # the key's name
        f"key:{world.approver.key_id}",
        "ok",
    )
    stored = await world.approvals.get(world.agent.account_id, pending.id)
    assert stored.claimed_at is not None
    assert stored.result == result


async def test_sync_approval_denied_returns_the_comment() -> None:
    world = await make_world(heartbeat=0.01)
    call = asyncio.create_task(world.call(world.agent, bash("deploy api")))
    pending = await _first_pending(world)
    await world.approvals.decide(
        world.agent.account_id,
        pending.id,
        approver=world.approver,
        approve=False,
        comment="freeze week",
    )
    result = await asyncio.wait_for(call, timeout=10)
    assert result["isError"] is True
    assert "denied" in result["content"][0]["text"]
    assert "freeze week" in result["content"][0]["text"]
    assert "denied by approver:" in result["content"][0]["text"]  # the name, not the key id
    assert world.upstream.calls == []


async def test_sync_approval_expiry_refuses() -> None:
    world = await make_world(heartbeat=0.01)
    call = asyncio.create_task(world.call(world.agent, bash("deploy api")))
    await _first_pending(world)
    world.clock.advance(61)
    assert await world.approvals.expire_due() == 1
    result = await asyncio.wait_for(call, timeout=10)
    assert result["isError"] is True
    assert "expired" in result["content"][0]["text"]
    assert world.upstream.calls == []


async def test_disconnect_while_waiting_cancels_the_request() -> None:
    world = await make_world(heartbeat=0.01)
    call = asyncio.create_task(world.call(world.agent, bash("deploy api")))
    pending = await _first_pending(world)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    after = await world.approvals.get(world.agent.account_id, pending.id)
    assert after.status is ApprovalStatus.CANCELLED
    [event] = await world.audit()
    assert event["status"] == "cancelled"


async def test_a_cancellation_delivered_again_still_withdraws_and_audits() -> None:
    # The MCP SDK cancels a handler through an anyio cancel scope, which cancels again at
    # every later await: the withdrawal and the audit record must still complete.
    world = await make_world(heartbeat=0.01)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(world.call, world.agent, bash("deploy api"))
            pending = await _first_pending(world)
            await anyio.wait_all_tasks_blocked()  # the call waits for the decision
            scope.cancel()
    await world.tool_calls.drain()
    after = await world.approvals.get(world.agent.account_id, pending.id)
    assert after.status is ApprovalStatus.CANCELLED
    [event] = await world.audit()
    assert (event["status"], event["approval_id"]) == ("cancelled", pending.id)
    assert world.upstream.calls == []


class BlockingUpstream(RecordingUpstream):
    """Records a call, then never answers: the call is running upstream."""

    def __init__(self) -> None:
        super().__init__()
        self.running = asyncio.Event()

    async def forward(
        self, name: str, tool: str, arguments: dict[str, Any], *, progress: Progress | None = None
    ) -> ToolResult:
        self.calls.append((name, tool, arguments))
        self.running.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_poll_cancelled_while_its_approved_call_runs_still_records_the_call() -> None:
    # get_approval_status forwarded the approved call; the agent cancels the poll (or the
    # server stops): the call ran, so its tool.call record is written, like call()'s.
    upstream = BlockingUpstream()
    world = await make_world(upstream=upstream)
    held = await world.call(world.agent, bash("release v9"))
    approval_id = held["structuredContent"]["approval_id"]
    await world.approvals.decide(
        world.agent.account_id, approval_id, approver=world.approver, approve=True
    )
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(world.approval_status, world.agent, approval_id)
            await upstream.running.wait()
            scope.cancel()
    await world.tool_calls.drain()
    assert [("shell", "bash", {"command": "release v9"})] == upstream.calls
    account = await world.identity.default_account()
    attempt, *_ = [
        e.data for e in await world.storage.audit.all(account.id) if e.kind == "tool.attempt"
    ]
    _, polled = await world.audit()  # the held call's record, then the poll's
    assert (polled["approval_id"], polled["status"], polled["call_id"]) == (
        approval_id,
        "cancelled",
        attempt["call_id"],
    )


async def test_an_agent_gone_while_waiting_never_runs_the_call() -> None:
    world = await make_world(heartbeat=0.01)
    gone = asyncio.Event()
    call = asyncio.create_task(world.call(world.agent, bash("deploy api"), gone=gone.wait))
    pending = await _first_pending(world)
    gone.set()
    result = await asyncio.wait_for(call, timeout=10)
    assert result["isError"] is True
    assert "the client disconnected while waiting" in result["content"][0]["text"]
    after = await world.approvals.get(world.agent.account_id, pending.id)
    assert after.status is ApprovalStatus.CANCELLED
    with pytest.raises(ConflictError, match="already cancelled"):
        await world.approvals.decide(
            world.agent.account_id, pending.id, approver=world.approver, approve=True
        )
    [event] = await world.audit()
    assert (event["status"], event["approval_id"]) == ("cancelled", pending.id)
    assert world.upstream.calls == []
    # the agent withdrew it: its key, by name and credential (decision 0054)
    assert (after.decided_by, after.decided_by_name, after.decided_via) == (
        world.agent.key_id,
        "agent",
        f"key:{world.agent.key_id}",
    )


async def test_gone_matters_only_while_waiting_for_approval() -> None:
    world = await make_world()

    async def already_gone() -> None:
        return None

    result = await world.call(world.agent, bash("ls"), gone=already_gone)
    assert result["structuredContent"] == {"ok": True}
    [event] = await world.audit()
    assert event["status"] == "ok"


async def test_async_approval_runs_exactly_once_for_its_caller() -> None:
    world = await make_world()
    first = await world.call(world.agent, bash("release v2"))
    approval_id = first["structuredContent"]["approval_id"]
    assert first["structuredContent"]["status"] == "pending"
    assert world.upstream.calls == []
    pending = await world.approval_status(world.agent, approval_id)
    assert pending["structuredContent"]["status"] == "pending"
    stranger = await world.approval_status(world.approver, approval_id)
    assert stranger["isError"] is True

    await world.approvals.decide(
        world.agent.account_id, approval_id, approver=world.approver, approve=True
    )
    ran = await world.approval_status(world.agent, approval_id)
    again = await world.approval_status(world.agent, approval_id)
    assert ran["structuredContent"] == {"ok": True}
    assert again == ran
    assert world.upstream.calls == [("shell", "bash", {"command": "release v2"})]


async def test_async_approval_denied_poll_says_so() -> None:
    world = await make_world()
    first = await world.call(world.agent, bash("release v3"))
    approval_id = first["structuredContent"]["approval_id"]
    await world.approvals.decide(
        world.agent.account_id,
        approval_id,
        approver=world.approver,
        approve=False,
        comment="not yet",
    )
    polled = await world.approval_status(world.agent, approval_id)
    assert polled["isError"] is True
    assert "not yet" in polled["content"][0]["text"]
    assert world.upstream.calls == []


async def _first_pending(world: World):  # type: ignore[no-untyped-def]
    """The call's approval request, once the call has opened it (event-driven)."""
    from hub.events import APPROVALS_TOPIC

    async with world.bus.subscribe(APPROVALS_TOPIC) as events:
        found = await world.approvals.list(world.agent.account_id)
        if not found:
            await asyncio.wait_for(anext(aiter(events)), timeout=10)
            found = await world.approvals.list(world.agent.account_id)
    return found[0]
