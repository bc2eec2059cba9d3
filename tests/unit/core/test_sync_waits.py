"""A sync call whose process died: any process's sweep cancels its request once the lease ran
out, tells the approvers (the decided event) and records the cut-off call (docs/decisions/0049).

Process A holds the call through the real tool-call pipeline, then stops: its clock-driven lease is
never renewed and nothing wakes it (its own event bus; a heartbeat of an hour).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import anyio
import pytest

from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.errors import ConflictError, StorageError
from hub.events import APPROVALS_TOPIC, ApprovalDecided, InMemoryEventBus
from hub.policy_versions import PolicyService
from hub.ports import SyncWaitStore
from hub.records import ApprovalStatus, SyncWait
from hub.scheduler import ApprovalScheduler
from hub.sync_waits import CRASHED, SyncWaits
from hub.tool_calls import ToolCalls
from tests.unit.core.test_firewall import (
    RecordingUpstream,
    World,
    bash,
    make_world,
    run,
    tool_calls,
)

LEASE = 30.0
LEASE_PAST = timedelta(seconds=LEASE + 1)


def waits(world: World, instance: str) -> SyncWaits:
    auditor = Auditor(world.storage.audit, world.clock)
    return SyncWaits(
        world.storage.sync_waits,
        world.approvals,
        auditor,
        world.clock,
        instance_id=instance,
        lease_seconds=LEASE,
    )


async def held_by_a_process_that_dies(world: World) -> tuple[str, asyncio.Task[object]]:
    """A call held for sync approval in process A (its own bus: nothing wakes it later)."""
    auditor = Auditor(world.storage.audit, world.clock)
    bus = InMemoryEventBus()
    approvals = ApprovalService(world.storage, world.clock, auditor, bus)
    a = tool_calls(
        clock=world.clock,
        auditor=auditor,
        policies=PolicyService(world.storage, world.clock, auditor),
        approvals=approvals,
        upstream=RecordingUpstream(),
        heartbeat_seconds=3600,
        sync_waits=SyncWaits(
            world.storage.sync_waits, approvals, auditor, world.clock, instance_id="inst_a"
        ),
    )
    async with bus.subscribe(APPROVALS_TOPIC) as events:
        call = asyncio.ensure_future(run(a, world.agent, bash("deploy api")))
        opened = await asyncio.wait_for(anext(aiter(events)), timeout=10)
    await anyio.wait_all_tasks_blocked()  # A stored its wait and waits for the decision
    return opened.request_id, call


async def stop(a: asyncio.Task[object]) -> None:
    a.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await a


async def test_a_request_whose_process_died_is_cancelled_told_and_recorded() -> None:
    world = await make_world()
    request_id, a = await held_by_a_process_that_dies(world)
    b = waits(world, "inst_b")
    assert 1 == len(await world.storage.sync_waits.orphaned(world.clock.now() + LEASE_PAST))
    assert 0 == await b.sweep()  # A's lease is fresh: its call may still run
    world.clock.advance(LEASE + 1)

    async with world.bus.subscribe(APPROVALS_TOPIC) as events:
        assert 1 == await b.sweep()
        told = await asyncio.wait_for(anext(aiter(events)), timeout=10)

    assert isinstance(told, ApprovalDecided)
    assert (request_id, "cancelled", "system", CRASHED) == (
        told.request_id,
        told.status,
        told.decided_by,
        told.comment,
    )
    request = await world.approvals.get(world.agent.account_id, request_id)
    assert ApprovalStatus.CANCELLED == request.status
    with pytest.raises(ConflictError, match="already cancelled"):
        await world.approvals.decide(
            world.agent.account_id, request_id, approver=world.approver, approve=True
        )
    [record] = await world.audit()
    assert (request_id, "cancelled", CRASHED, "inst_a") == (
        record["approval_id"],
        record["status"],
        record["error"],
        record["instance"],
    )
    # who ended it, as every decision says it (decision 0054)
    assert ("system", "system", "system") == (
        record["decided_by"],
        record["decided_by_name"],
        record["decided_via"],
    )
    assert ("system", "system") == (told.decided_by_name, told.decided_via)
    assert 0 == await waits(world, "inst_c").sweep()  # recorded once, by one process
    await stop(a)


async def test_a_request_approved_after_its_process_died_is_recorded_as_not_run() -> None:
    world = await make_world()
    request_id, a = await held_by_a_process_that_dies(world)
    await world.approvals.decide(
        world.agent.account_id, request_id, approver=world.approver, approve=True
    )
    world.clock.advance(LEASE + 1)

    scheduler = ApprovalScheduler(world.approvals, sync_waits=waits(world, "inst_b"))
    assert 0 == (await scheduler.tick()).orphaned  # nothing left to cancel, but recorded

    [record] = await world.audit()
    assert (request_id, "approved", "cancelled") == (
        record["approval_id"],
        record["approval_status"],
        record["status"],
    )
    await stop(a)


class SlowToAcknowledge:
    """The sync-wait store, whose ``add`` is written before its caller hears so (a database
    commits, then answers): a caller cancelled meanwhile leaves the row behind."""

    def __init__(self, inner: SyncWaitStore) -> None:
        self._inner = inner
        self.written = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def add(self, wait: SyncWait) -> None:
        await self._inner.add(wait)
        self.written.set()
        await asyncio.Event().wait()  # the acknowledgement never comes


def pipeline_with(world: World, store: Any, upstream: RecordingUpstream) -> ToolCalls:
    auditor = Auditor(world.storage.audit, world.clock)
    return tool_calls(
        clock=world.clock,
        auditor=auditor,
        policies=PolicyService(world.storage, world.clock, auditor),
        approvals=world.approvals,
        upstream=upstream,
        heartbeat_seconds=0.01,
        sync_waits=SyncWaits(store, world.approvals, auditor, world.clock, instance_id="inst_a"),
    )


async def test_a_call_cancelled_while_its_wait_is_stored_leaves_no_wait() -> None:
    world = await make_world()
    store = SlowToAcknowledge(world.storage.sync_waits)
    a = pipeline_with(world, store, RecordingUpstream())
    call = asyncio.ensure_future(run(a, world.agent, bash("deploy api")))
    await asyncio.wait_for(store.written.wait(), timeout=10)
    await stop(call)
    await a.drain()
    world.clock.advance(LEASE + 1)
    assert [] == list(await world.storage.sync_waits.orphaned(world.clock.now()))
    assert 0 == await waits(world, "inst_b").sweep()
    # the withdrawn call's own record, and no "it will never run" one
    assert ["cancelled"] == [r["status"] for r in await world.audit()]


class Unreleasable:
    """The sync-wait store, failing to remove a wait (the database went away for a moment)."""

    def __init__(self, inner: SyncWaitStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def remove(self, account_id: str, request_id: str) -> bool:
        raise StorageError("cannot reach the database: connection refused")


async def test_a_call_that_ran_is_never_recorded_as_cut_off_by_a_later_sweep() -> None:
    # Its wait could not be released; once its process stops, a sweep finds the leftover
    # wait. The approved call was claimed and ran: no "it will never run" record.
    world = await make_world()
    upstream = RecordingUpstream()
    a = pipeline_with(world, Unreleasable(world.storage.sync_waits), upstream)
    async with world.bus.subscribe(APPROVALS_TOPIC) as events:
        call = asyncio.ensure_future(run(a, world.agent, bash("deploy api")))
        opened = await asyncio.wait_for(anext(aiter(events)), timeout=10)
    await world.approvals.decide(
        world.agent.account_id, opened.request_id, approver=world.approver, approve=True
    )
    result = await asyncio.wait_for(call, timeout=10)
    assert {"ok": True} == result["structuredContent"]
    world.clock.advance(LEASE + 1)

    await waits(world, "inst_b").sweep()

    assert [] == list(await world.storage.sync_waits.orphaned(world.clock.now()))
    assert [("ok", None)] == [(r["status"], r.get("error")) for r in await world.audit()]
    assert 1 == len(upstream.calls)
