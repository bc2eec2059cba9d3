"""Nothing runs that cannot be recorded (docs/decisions/0047): the tool-call pipeline
against an in-memory audit store that fails like an unreachable database."""

from __future__ import annotations

import asyncio
from typing import Any

from hub.errors import StorageError, ValidationError
from hub.ports import AuditStore
from hub.records import ApprovalStatus, AuditDraft, AuditEvent
from hub.tool_calls import Progress
from hub.tool_results import ToolResult
from tests.unit.core.test_firewall import (
    RecordingUpstream,
    RoundTripAudit,
    World,
    _first_pending,
    bash,
    make_world,
)

DOWN = "cannot reach the database: connection refused"


class BreakableAudit(RoundTripAudit):
    """The in-memory audit store; while ``broken`` every append fails as a database's does."""

    def __init__(self, inner: AuditStore) -> None:
        super().__init__(inner)
        self.broken = False
        self.break_after = ""  # an event kind: the store breaks once it has written one

    async def append(self, draft: AuditDraft) -> AuditEvent:
        if self.broken:
            raise StorageError(DOWN)
        self.broken = draft.kind == self.break_after
        return await super().append(draft)


class BreakingUpstream(RecordingUpstream):
    """Breaks the audit store while it runs a call: the database goes away mid-call."""

    audit: BreakableAudit | None = None

    async def forward(
        self, name: str, tool: str, arguments: dict[str, Any], *, progress: Progress | None = None
    ) -> ToolResult:
        assert self.audit is not None
        self.audit.broken = True
        return await super().forward(name, tool, arguments, progress=progress)


async def broken_world(upstream: RecordingUpstream | None = None) -> tuple[World, BreakableAudit]:
    stores: list[BreakableAudit] = []

    def breakable(inner: AuditStore) -> BreakableAudit:
        stores.append(BreakableAudit(inner))
        return stores[-1]

    world = await make_world(heartbeat=0.01, audit=breakable, upstream=upstream)
    return world, stores[0]


async def kinds(world: World) -> list[str]:
    account = await world.identity.default_account()
    return [e.kind for e in await world.storage.audit.all(account.id) if e.kind.startswith("tool.")]


def assert_refused_for_the_audit(result: dict[str, Any]) -> None:
    assert result["isError"] is True
    text = result["content"][0]["text"]
    assert text.startswith("Not run: Preloop cannot write its audit log")
    assert DOWN in text
    assert "refused" == result["_meta"]["ai.preloop/decision"]["status"]


async def test_an_allowed_call_is_never_forwarded_when_its_record_cannot_be_written() -> None:
    world, audit = await broken_world()
    audit.broken = True
    result = await world.call(world.agent, bash("ls"))
    assert_refused_for_the_audit(result)
    assert [] == world.upstream.calls
    audit.broken = False  # the database is back: the call runs, recorded twice
    ran = await world.call(world.agent, bash("ls"))
    assert {"ok": True} == ran["structuredContent"]
    assert [("shell", "bash", {"command": "ls"})] == world.upstream.calls
    assert ["tool.attempt", "tool.call"] == await kinds(world)
    [event] = await world.audit()
    assert "ok" == event["status"]


async def test_a_record_that_fails_after_the_call_ran_is_written_once_the_store_is_back() -> None:
    upstream = BreakingUpstream()
    world, audit = await broken_world(upstream)
    upstream.audit = audit
    result = await world.call(world.agent, bash("ls"))
    # It ran: the agent gets its answer (calling again would repeat the side effect).
    assert {"ok": True} == result["structuredContent"]
    assert ["tool.attempt"] == await kinds(world)  # recorded before it was forwarded
    audit.broken = False
    await world.tool_calls.drain()  # the owed record's retry, at once
    assert ["tool.attempt", "tool.call"] == await kinds(world)
    account = await world.identity.default_account()
    attempt, done = [
        e.data for e in await world.storage.audit.all(account.id) if e.kind.startswith("tool.")
    ]
    assert (attempt["call_id"], "ok") == (done["call_id"], done["status"])
    assert 1 == len(world.upstream.calls)


async def test_an_approved_sync_call_is_not_run_when_its_record_cannot_be_written() -> None:
    world, audit = await broken_world()
    waiting = asyncio.ensure_future(world.call(world.agent, bash("deploy api")))
    pending = await _first_pending(world)
    audit.break_after = "approval.decided"  # the decision is recorded, then the store fails
    await world.approvals.decide(
        world.agent.account_id, pending.id, approver=world.approver, approve=True
    )
    result = await asyncio.wait_for(waiting, timeout=10)
    assert_refused_for_the_audit(result)
    assert pending.id == result["_meta"]["ai.preloop/decision"]["approval_id"]
    assert [] == world.upstream.calls
    stored = await world.approvals.get(world.agent.account_id, pending.id)
    assert (ApprovalStatus.APPROVED, None) == (stored.status, stored.claimed_at)


async def test_an_approved_async_call_runs_once_only_after_its_record_can_be_written() -> None:
    world, audit = await broken_world()
    held = await world.call(world.agent, bash("release v2"))
    approval_id = held["structuredContent"]["approval_id"]
    await world.approvals.decide(
        world.agent.account_id, approval_id, approver=world.approver, approve=True
    )
    audit.broken = True
    refused = await world.approval_status(world.agent, approval_id)
    assert_refused_for_the_audit(refused)
    assert [] == world.upstream.calls
    audit.broken = False  # the call is still held: the next poll runs it, once
    ran = await world.approval_status(world.agent, approval_id)
    again = await world.approval_status(world.agent, approval_id)
    assert {"ok": True} == ran["structuredContent"]
    assert ran == again
    assert [("shell", "bash", {"command": "release v2"})] == world.upstream.calls


class UnreachableApprovals:
    """The in-memory approval store, failing every write as an unreachable database does."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def add(self, request: Any) -> None:
        raise StorageError(DOWN)


async def test_a_database_failure_before_forwarding_is_a_clear_refusal() -> None:
    world = await make_world()
    world.storage.approvals = UnreachableApprovals(world.storage.approvals)  # type: ignore[assignment]
    result = await world.call(world.agent, bash("deploy api"))
    assert result["isError"] is True
    text = result["content"][0]["text"]
    assert text.startswith("Not run: Preloop's database failed")
    assert DOWN in text
    assert [] == world.upstream.calls
    [event] = await world.audit()
    assert ("refused", "require_approval") == (event["status"], event["decision"])


class UnstorableResults:
    """The in-memory approval store, refusing a call's result as PostgreSQL refuses a NUL in
    text (a ValidationError, not a StorageError)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def store_result(self, account_id: str, request_id: str, result: Any) -> Any:
        raise ValidationError("a text value holds a character the database cannot store")


async def test_an_approved_call_whose_result_cannot_be_stored_is_answered_and_recorded() -> None:
    world = await make_world(heartbeat=0.01)
    world.storage.approvals = UnstorableResults(world.storage.approvals)  # type: ignore[assignment]
    waiting = asyncio.ensure_future(world.call(world.agent, bash("deploy api")))
    pending = await _first_pending(world)
    await world.approvals.decide(
        world.agent.account_id, pending.id, approver=world.approver, approve=True
    )
    result = await asyncio.wait_for(waiting, timeout=10)  # it ran: the agent gets its answer
    assert {"ok": True} == result["structuredContent"]
    assert 1 == len(world.upstream.calls)
    [event] = await world.audit()
    assert ("ok", pending.id) == (event["status"], event["approval_id"])


class UnstorableRequests(UnreachableApprovals):
    """The in-memory approval store, refusing a request as PostgreSQL refuses a NUL in text."""

    async def add(self, request: Any) -> None:
        raise ValidationError("a text value holds a character the database cannot store")


async def test_a_request_the_store_refuses_is_a_clear_refusal_and_recorded() -> None:
    world = await make_world()
    world.storage.approvals = UnstorableRequests(world.storage.approvals)  # type: ignore[assignment]
    result = await world.call(world.agent, bash("deploy api\x00"))
    assert result["isError"] is True
    assert "cannot store" in result["content"][0]["text"]
    assert [] == world.upstream.calls
    [event] = await world.audit()
    assert ("refused", "require_approval") == (event["status"], event["decision"])


class UnreadableIds(UnreachableApprovals):
    """The in-memory approval store, refusing an id as PostgreSQL refuses a NUL in text."""

    async def get(self, account_id: str, request_id: str) -> Any:
        raise ValidationError("a text value holds a character the database cannot store")


async def test_a_poll_the_store_refuses_is_a_clear_refusal() -> None:
    world = await make_world()
    world.storage.approvals = UnreadableIds(world.storage.approvals)  # type: ignore[assignment]
    result = await world.approval_status(world.agent, "apr_\x00")
    assert result["isError"] is True
    assert "cannot store" in result["content"][0]["text"]
    assert [] == world.upstream.calls


class FlakyReads(UnreachableApprovals):
    """The in-memory approval store; ``fail_next`` reads fail as a database blip does."""

    fail_next = 0

    async def add(self, request: Any) -> None:
        await self._inner.add(request)

    async def get(self, account_id: str, request_id: str) -> Any:
        if self.fail_next:
            self.fail_next -= 1
            raise StorageError(DOWN)
        return await self._inner.get(account_id, request_id)


async def test_a_sync_wait_that_fails_withdraws_its_request() -> None:
    # The call is refused ("call again"), so nobody may approve the request it leaves.
    world = await make_world(heartbeat=0.01)
    flaky = FlakyReads(world.storage.approvals)
    world.storage.approvals = flaky  # type: ignore[assignment]
    waiting = asyncio.ensure_future(world.call(world.agent, bash("deploy api")))
    pending = await _first_pending(world)
    flaky.fail_next = 1  # the wait's next look at the request fails
    result = await asyncio.wait_for(waiting, timeout=10)
    assert result["isError"] is True
    assert DOWN in result["content"][0]["text"]
    after = await world.approvals.get(world.agent.account_id, pending.id)
    assert ApprovalStatus.CANCELLED is after.status
    assert [] == world.upstream.calls
