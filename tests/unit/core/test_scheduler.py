"""The approval scheduler's tick: expiry by ``on_timeout`` and escalation, on frozen time and
the in-memory store (a fresh service on the same store stands for a restarted server)."""

from __future__ import annotations

import pytest

from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.errors import ConflictError, PermissionDeniedError
from hub.events import ApprovalDecided, ApprovalEscalated, Event
from hub.ports import AuditQuery
from hub.records import ApprovalStatus, Role
from hub.scheduler import ApprovalScheduler, Tick
from tests.unit.core.test_approvals import World, world

__all__ = ["world"]  # the fixture, shared with the approval tests

ESCALATING = {
    "timeout_seconds": 600,
    "approvers": ["user:ana@example.com"],
    "escalation": {"after_seconds": 60, "approvers": ["user:bo@example.com", "team:leads"]},
}


def restarted(world: World) -> ApprovalScheduler:
    """A scheduler built afresh on the same store: nothing carried over in memory."""
    auditor = Auditor(world.storage.audit, world.clock)
    return ApprovalScheduler(ApprovalService(world.storage, world.clock, auditor, world.bus))


async def events_during(world: World, scheduler: ApprovalScheduler) -> tuple[Tick, list[Event]]:
    seen: list[Event] = []
    async with world.bus.subscribe("approvals") as events:
        tick = await scheduler.tick()
        while len(seen) < tick.escalated + tick.expired:
            seen.append(await anext(events))
    return tick, seen


async def test_deadline_denies_by_default(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    request = await world.request(agent, timeout_seconds=30)
    world.clock.advance(29)
    assert await restarted(world).tick() == Tick()
    world.clock.advance(2)
    tick, seen = await events_during(world, restarted(world))
    assert tick == Tick(expired=1)
    done = await world.service.get(world.account_id, request.id)
    assert (done.status, done.decided_by) == (ApprovalStatus.DENIED, "system")
    assert "no decision before the deadline" in (done.comment or "")
    assert [(type(e), e.status) for e in seen if isinstance(e, ApprovalDecided)] == [
        (ApprovalDecided, "denied")
    ]


async def test_on_timeout_expire_expires(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    request = await world.request(agent, timeout_seconds=30, on_timeout="expire")
    world.clock.advance(31)
    assert await restarted(world).tick() == Tick(expired=1)
    done = await world.service.get(world.account_id, request.id)
    assert done.status is ApprovalStatus.EXPIRED
    assert await restarted(world).tick() == Tick()  # nothing fires twice


async def test_escalation_fires_once_and_lets_the_escalation_approvers_decide(
    world: World,
) -> None:
    agent = await world.caller(Role.AGENT)
    bo = await world.caller(Role.APPROVER, email="bo@example.com")
    request = await world.request(agent, **ESCALATING)
    assert request.escalate_at is not None
    assert (request.escalate_at - request.created_at).total_seconds() == 60
    with pytest.raises(PermissionDeniedError, match="only the approvers"):
        await world.service.decide(world.account_id, request.id, approver=bo, approve=True)

    world.clock.advance(59)
    assert await restarted(world).tick() == Tick()
    world.clock.advance(2)
    tick, seen = await events_during(world, restarted(world))
    assert tick == Tick(escalated=1)
    assert seen == [
        ApprovalEscalated(
            account_id=world.account_id,
            at=world.clock.now(),
            request_id=request.id,
            workflow="wf",
            added=("user:bo@example.com", "team:leads"),
        )
    ]
    escalated = await world.service.get(world.account_id, request.id)
    assert escalated.escalated_at == world.clock.now()
    assert escalated.approvers == ("user:ana@example.com", "user:bo@example.com", "team:leads")
    assert escalated.status is ApprovalStatus.PENDING

    world.clock.advance(60)
    assert await restarted(world).tick() == Tick()  # escalated once, never again
    audit = await world.storage.audit.query(world.account_id, AuditQuery(kind="approval.escalated"))
    assert [(e.actor, e.data["request_id"]) for e in audit] == [("system", request.id)]

    voted = await world.service.decide(world.account_id, request.id, approver=bo, approve=True)
    assert voted.request.status is ApprovalStatus.APPROVED


async def test_a_decided_request_is_neither_escalated_nor_expired(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    ana = await world.caller(Role.APPROVER, email="ana@example.com")
    request = await world.request(agent, **ESCALATING)
    await world.service.decide(world.account_id, request.id, approver=ana, approve=False)
    world.clock.advance(601)
    assert await restarted(world).tick() == Tick()
    assert (await world.service.get(world.account_id, request.id)).escalated_at is None


async def test_escalation_keeps_an_open_approver_list_open(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    anyone = await world.caller(Role.APPROVER, email="zed@example.com")
    request = await world.request(
        agent, escalation={"after_seconds": 5, "approvers": ["user:bo@example.com"]}
    )
    world.clock.advance(6)
    assert await restarted(world).tick() == Tick(escalated=1)
    escalated = await world.service.get(world.account_id, request.id)
    assert escalated.approvers == ()  # listing bo would shut out every other approver
    voted = await world.service.decide(world.account_id, request.id, approver=anyone, approve=True)
    assert voted.request.status is ApprovalStatus.APPROVED


async def test_both_due_escalates_then_ends(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    request = await world.request(agent, **ESCALATING)
    world.clock.advance(700)  # the server was down through both
    assert await restarted(world).tick() == Tick(escalated=1, expired=1)
    done = await world.service.get(world.account_id, request.id)
    assert done.status is ApprovalStatus.DENIED
    assert done.escalated_at is not None
    with pytest.raises(ConflictError, match="already denied by system"):
        await world.service.cancel(world.account_id, request.id, actor="t", reason="late")


async def test_a_tick_drains_more_than_one_batch(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    for _ in range(5):
        await world.request(agent, timeout_seconds=10)
    world.clock.advance(11)
    auditor = Auditor(world.storage.audit, world.clock)
    service = ApprovalService(world.storage, world.clock, auditor, world.bus)
    assert await ApprovalScheduler(service, batch=2).tick() == Tick(expired=5)
    pending = await world.service.list(world.account_id, status=ApprovalStatus.PENDING)
    assert list(pending) == []
