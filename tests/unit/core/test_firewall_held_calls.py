"""Async approvals kept sealed in the store: any replica, or the same one after a restart,
runs the approved call once (docs/decisions/0048)."""

from __future__ import annotations

from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.events import InMemoryEventBus
from hub.held_calls import HeldCalls
from hub.policy_versions import PolicyService
from hub.tool_calls import ToolCalls
from server.custody.local import Keyring, KeyringSealer, new_key_entry
from tests.unit.core.test_firewall import (
    RecordingUpstream,
    World,
    bash,
    make_world,
    poll,
    tool_calls,
)

SEALER = KeyringSealer(Keyring.parse(new_key_entry()))


def replica(world: World, upstream: RecordingUpstream) -> ToolCalls:
    """Another pipeline on the same store: a second replica, or this one restarted."""
    auditor = Auditor(world.storage.audit, world.clock)
    return tool_calls(
        clock=world.clock,
        auditor=auditor,
        policies=PolicyService(world.storage, world.clock, auditor),
        approvals=ApprovalService(world.storage, world.clock, auditor, InMemoryEventBus()),
        upstream=upstream,
        held_calls=HeldCalls(world.storage.held_calls, SEALER, world.clock),
    )


async def held_and_approved(world: World, command: str) -> str:
    held = await world.call(world.agent, bash(command, token="hunter2"))
    approval_id: str = held["structuredContent"]["approval_id"]
    await world.approvals.decide(
        world.agent.account_id, approval_id, approver=world.approver, approve=True
    )
    return approval_id


async def test_another_replica_runs_the_approved_call_once() -> None:
    world = await make_world(sealer=SEALER)
    approval_id = await held_and_approved(world, "release v2")
    other = RecordingUpstream()

    ran = await poll(replica(world, other), world.agent, approval_id)
    again = await poll(replica(world, other), world.agent, approval_id)
    on_a = await world.approval_status(world.agent, approval_id)

    assert {"ok": True} == ran["structuredContent"]
    assert ran == again == on_a
    assert [("shell", "bash", {"command": "release v2", "token": "hunter2"})] == other.calls
    assert [] == world.upstream.calls  # the replica that held it did not run it again
    assert await world.storage.held_calls.get(world.agent.account_id, approval_id) is None


async def test_after_a_restart_the_approved_call_runs_once() -> None:
    world = await make_world(sealer=SEALER)
    approval_id = await held_and_approved(world, "release v3")
    restarted = replica(world, world.upstream)  # nothing held in its memory

    ran = await poll(restarted, world.agent, approval_id)
    again = await poll(restarted, world.agent, approval_id)

    assert {"ok": True} == ran["structuredContent"]
    assert ran == again
    assert [("shell", "bash", {"command": "release v3", "token": "hunter2"})] == (
        world.upstream.calls
    )


async def test_the_real_arguments_are_stored_sealed_only() -> None:
    world = await make_world(sealer=SEALER)
    held = await world.call(world.agent, bash("release v4", token="hunter2"))
    approval_id = held["structuredContent"]["approval_id"]

    kept = await world.storage.held_calls.get(world.agent.account_id, approval_id)

    assert kept is not None
    assert "hunter2" not in kept.sealed
    assert "release" not in kept.sealed


async def test_a_denied_call_is_forgotten_when_its_agent_learns_of_it() -> None:
    world = await make_world(sealer=SEALER)
    held = await world.call(world.agent, bash("release v5"))
    approval_id = held["structuredContent"]["approval_id"]
    assert await world.storage.held_calls.get(world.agent.account_id, approval_id) is not None
    await world.approvals.decide(
        world.agent.account_id, approval_id, approver=world.approver, approve=False
    )

    polled = await poll(replica(world, world.upstream), world.agent, approval_id)

    assert polled["isError"] is True
    assert await world.storage.held_calls.get(world.agent.account_id, approval_id) is None
    assert [] == world.upstream.calls
