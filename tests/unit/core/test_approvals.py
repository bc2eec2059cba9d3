"""The approval state machine: who may decide, quorum, compare-and-set, expiry, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import msgspec
import pytest

from hub.approvals import ApprovalService, args_digest
from hub.auditing import Auditor
from hub.clock import FrozenClock
from hub.errors import ConflictError, PermissionDeniedError
from hub.events import ApprovalDecided, ApprovalVoted, Event, InMemoryEventBus
from hub.identity import IdentityService
from hub.keys import Caller
from hub.memory import InMemoryStorage
from hub.policy import ApprovalWorkflow, Decision
from hub.policy.model import Action
from hub.records import ApprovalStatus, Role


class World(msgspec.Struct):
    service: ApprovalService
    identity: IdentityService
    storage: InMemoryStorage
    clock: FrozenClock
    bus: SignallingBus
    account_id: str

    async def caller(self, role: Role, *, email: str | None = None) -> Caller:
        if (
            email is not None
            and await self.storage.users.get_by_email(self.account_id, email) is None
        ):
            await self.identity.add_user(self.account_id, email=email, name="", actor="t")
        created = await self.identity.create_key(
            self.account_id, name="k", role=role, actor="t", user_email=email
        )
        return await self.identity.authenticate(created.secret)

    async def request(self, agent: Caller, **workflow: object):  # type: ignore[no-untyped-def]
        spec = msgspec.convert({"name": "wf", **workflow}, ApprovalWorkflow)
        return await self.service.open(
            caller=agent,
            server="shell",
            tool="bash",
            args={"command": "deploy prod", "token": "hunter2"},
            justification="release",
            policy_version=3,
            workflow=spec,
            decision=Decision(
                action=Action.REQUIRE_APPROVAL,
                rule="bash#1",
                rule_description="deploys need approval",
                workflow="wf",
            ),
        )


class SignallingBus(InMemoryEventBus):
    """The in-memory bus, telling the test when somebody has subscribed."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribed = asyncio.Event()

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[Event]]:
        async with super().subscribe(topic) as events:
            self.subscribed.set()
            yield events


@pytest.fixture
async def world() -> World:
    storage = InMemoryStorage()
    clock = FrozenClock()
    auditor = Auditor(storage.audit, clock)
    identity = IdentityService(storage, clock, auditor)
    account = await identity.default_account()
    bus = SignallingBus()
    return World(
        service=ApprovalService(storage, clock, auditor, bus),
        identity=identity,
        storage=storage,
        clock=clock,
        bus=bus,
        account_id=account.id,
    )


async def test_request_is_bound_to_the_exact_call_and_redacted(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    request = await world.request(
        agent, timeout_seconds=60, required_approvals=2, approvers=["role:approver"]
    )
    assert request.status is ApprovalStatus.PENDING
    assert request.args_digest == args_digest({"command": "deploy prod", "token": "hunter2"})
    assert request.args == {"command": "deploy prod", "token": "[REDACTED]"}
    assert request.principal_key_id == agent.key_id
    assert (request.policy_version, request.required_approvals) == (3, 2)
    assert request.approvers == ("role:approver",)
    assert (request.expires_at - request.created_at).total_seconds() == 60
    assert args_digest({"b": 1, "a": 2}) == args_digest({"a": 2, "b": 1})


async def test_the_caller_can_never_decide_its_own_request(world: World) -> None:
    admin = await world.caller(Role.ADMIN)
    request = await world.request(admin)
    with pytest.raises(PermissionDeniedError, match="never decide"):
        await world.service.decide(world.account_id, request.id, approver=admin, approve=True)


async def test_another_key_of_the_same_user_cannot_decide(world: World) -> None:
    agent = await world.caller(Role.AGENT, email="ana@example.com")
    own_approver_key = await world.caller(Role.APPROVER, email="ana@example.com")
    request = await world.request(agent)
    with pytest.raises(PermissionDeniedError, match="any of their keys"):
        await world.service.decide(
            world.account_id, request.id, approver=own_approver_key, approve=True
        )


async def test_only_deciding_roles_and_listed_approvers(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    viewer = await world.caller(Role.VIEWER)
    request = await world.request(agent, approvers=["team:oncall", "user:bo@example.com"])
    with pytest.raises(PermissionDeniedError, match="approver or admin role"):
        await world.service.decide(world.account_id, request.id, approver=viewer, approve=True)
    outsider = await world.caller(Role.APPROVER, email="cy@example.com")
    with pytest.raises(PermissionDeniedError, match="only the approvers of workflow 'wf'"):
        await world.service.decide(world.account_id, request.id, approver=outsider, approve=True)
    member = await world.caller(Role.APPROVER, email="dee@example.com")
    await world.identity.add_team(
        world.account_id, name="oncall", members=["dee@example.com"], actor="t"
    )
    voted = await world.service.decide(
        world.account_id, request.id, approver=member, approve=True, comment="ok"
    )
    decided = voted.request
    assert decided.status is ApprovalStatus.APPROVED
    assert member.user_id == decided.decided_by  # the person, not the key
    assert ("dee@example.com", f"key:{member.key_id}") == (
        decided.decided_by_name,
        decided.decided_via,
    )


async def test_quorum_needs_distinct_approvers_and_a_deny_decides(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    first, second = await world.caller(Role.APPROVER), await world.caller(Role.ADMIN)
    request = await world.request(agent, required_approvals=2)
    after_one = await world.service.decide(
        world.account_id, request.id, approver=first, approve=True
    )
    assert (after_one.request.status, after_one.approvals) == (ApprovalStatus.PENDING, 1)
    with pytest.raises(ConflictError, match="already voted"):
        await world.service.decide(world.account_id, request.id, approver=first, approve=True)
    done = await world.service.decide(world.account_id, request.id, approver=second, approve=True)
    assert (done.request.status, done.approvals) == (ApprovalStatus.APPROVED, 2)

    other = await world.request(agent, required_approvals=2)
    denied = (
        await world.service.decide(
            world.account_id, other.id, approver=first, approve=False, comment="not on a Friday"
        )
    ).request
    assert (denied.status, denied.comment) == (ApprovalStatus.DENIED, "not on a Friday")
    with pytest.raises(ConflictError, match=re.escape(f"already denied by k ({first.key_id})")):
        await world.service.decide(world.account_id, other.id, approver=second, approve=True)


async def test_one_person_is_one_approver_whatever_key_or_channel(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    by_key = await world.caller(Role.APPROVER, email="ana@example.com")
    other_key = await world.caller(Role.ADMIN, email="ana@example.com")
    assert by_key.user_id is not None
    in_person = await world.identity.caller_for_user(
        world.account_id, by_key.user_id, via="email:link1"
    )
    request = await world.request(agent, required_approvals=2)
    await world.service.decide(world.account_id, request.id, approver=by_key, approve=True)

    for again in (other_key, in_person):  # another key of hers; her email link or chat button
        with pytest.raises(ConflictError, match="already voted"):
            await world.service.decide(world.account_id, request.id, approver=again, approve=True)

    still = await world.service.get(world.account_id, request.id)
    assert still.status is ApprovalStatus.PENDING


async def test_who_decided_is_the_person_their_name_and_the_credential_on_every_channel(
    world: World,
) -> None:
    """A key of a user, a key of nobody, and the user in person through a channel: the vote,
    the request, the events and the audit record the person (the audit's actor), their name
    and the credential, in the same fields."""
    agent = await world.caller(Role.AGENT)
    await world.identity.add_user(world.account_id, email="ana@example.com", name="Ana", actor="t")
    ana_key = await world.caller(Role.APPROVER, email="ana@example.com")
    assert ana_key.user_id is not None
    ana_by_slack = await world.identity.caller_for_user(
        world.account_id, ana_key.user_id, via="slack:U123"
    )
    robot = await world.caller(Role.APPROVER)  # a key that belongs to no user
    expected = {
        "key of a user": (ana_key, ana_key.user_id, "Ana", f"key:{ana_key.key_id}"),
        "user in person": (ana_by_slack, ana_key.user_id, "Ana", "slack:U123"),
        "key of nobody": (robot, robot.key_id, "k", f"key:{robot.key_id}"),
    }
    recorded = {}
    async with world.bus.subscribe("approvals") as events:
        for label, (approver, *_) in expected.items():
            request = await world.request(agent)
            decided = (
                await world.service.decide(
                    world.account_id, request.id, approver=approver, approve=True
                )
            ).request
            (vote,) = await world.service.votes(world.account_id, request.id)
            voted = await anext(e async for e in events if isinstance(e, ApprovalVoted))
            trail = await world.storage.audit.all(world.account_id)
            audited = {e.kind: e for e in trail if e.data.get("request_id") == request.id}
            recorded[label] = (
                approver,
                decided.decided_by,
                decided.decided_by_name,
                decided.decided_via,
            )
            assert (vote.approver, vote.approver_name, vote.via) == (
                decided.decided_by,
                decided.decided_by_name,
                decided.decided_via,
            )
            assert (voted.approver, voted.approver_name, voted.via) == (
                vote.approver,
                vote.approver_name,
                vote.via,
            )
            for kind in ("approval.voted", "approval.decided"):
                assert vote.approver == audited[kind].actor
            assert vote.via == audited["approval.voted"].data["via"]
            assert vote.approver_name == audited["approval.decided"].data["decided_by_name"]
    assert expected == recorded


async def test_concurrent_decisions_have_exactly_one_winner(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    approvers = [await world.caller(Role.APPROVER) for _ in range(5)]
    request = await world.request(agent)
    results = await asyncio.gather(
        *(
            world.service.decide(world.account_id, request.id, approver=a, approve=i % 2 == 0)
            for i, a in enumerate(approvers)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConflictError) for r in results if isinstance(r, BaseException))
    final = await world.service.get(world.account_id, request.id)
    assert final.status is winners[0].request.status


async def test_deadline_expires_the_request(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    approver = await world.caller(Role.APPROVER)
    request = await world.request(agent, timeout_seconds=30, on_timeout="expire")
    world.clock.advance(31)
    with pytest.raises(ConflictError, match="already expired"):
        await world.service.decide(world.account_id, request.id, approver=approver, approve=True)
    assert (await world.service.get(world.account_id, request.id)).status is (
        ApprovalStatus.EXPIRED
    )


async def test_expire_due_sweeps_overdue_requests(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    short = await world.request(agent, timeout_seconds=10, on_timeout="expire")
    long = await world.request(agent, timeout_seconds=1000, on_timeout="expire")
    world.clock.advance(11)
    assert await world.service.expire_due() == 1
    assert (await world.service.get(world.account_id, short.id)).status is (ApprovalStatus.EXPIRED)
    assert (await world.service.get(world.account_id, long.id)).status is (ApprovalStatus.PENDING)


async def test_wait_wakes_on_the_decision_event(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    approver = await world.caller(Role.APPROVER)
    request = await world.request(agent)
    waiter = asyncio.create_task(world.service.wait(world.account_id, request.id))
    await asyncio.wait_for(world.bus.subscribed.wait(), timeout=10)
    assert not waiter.done()
    await world.service.decide(world.account_id, request.id, approver=approver, approve=True)
    result = await asyncio.wait_for(waiter, timeout=10)
    assert result.status is ApprovalStatus.APPROVED


async def test_wait_answers_the_decision_as_stored_without_reading_it_again(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    approver = await world.caller(Role.APPROVER)
    request = await world.request(agent)
    waiter = asyncio.create_task(world.service.wait(world.account_id, request.id))
    await asyncio.wait_for(world.bus.subscribed.wait(), timeout=10)
    world.clock.advance(5)
    await world.service.decide(
        world.account_id, request.id, approver=approver, approve=False, comment="not today"
    )
    result = await asyncio.wait_for(waiter, timeout=10)

    # Built from the event: equal to the stored request, field for field.
    assert result == await world.service.get(world.account_id, request.id)
    assert (result.status, result.decided_by, result.comment) == (
        ApprovalStatus.DENIED,
        approver.key_id,
        "not today",
    )


async def test_wait_returns_pending_after_max_wait(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    request = await world.request(agent, timeout_seconds=600)
    result = await world.service.wait(world.account_id, request.id, max_wait=0)
    assert result.status is ApprovalStatus.PENDING


async def test_cancel_and_events_and_audit(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    request = await world.request(agent)
    async with world.bus.subscribe("approvals") as events:
        cancelled = await world.service.cancel(
            world.account_id, request.id, actor=agent.key_id, reason="client disconnected"
        )
        event = await asyncio.wait_for(anext(aiter(events)), timeout=10)
    assert cancelled.status is ApprovalStatus.CANCELLED
    assert isinstance(event, ApprovalDecided)
    assert (event.request_id, event.status) == (request.id, "cancelled")
    kinds = [e.kind for e in await world.storage.audit.all(world.account_id)]
    assert kinds[-2:] == ["approval.requested", "approval.decided"]
    trail = await world.storage.audit.all(world.account_id)
    assert "hunter2" not in msgspec.json.encode(trail).decode()


async def test_the_deadline_and_a_withdrawal_record_a_name_and_a_credential(world: World) -> None:
    # Decision 0054: every decision has the person, their name and the credential; the
    # scheduler's deadline is `system` through `system`, an agent's withdrawal its key.
    agent = await world.caller(Role.AGENT)
    timed = await world.request(agent, timeout_seconds=10, on_timeout="expire")
    withdrawn = await world.request(agent)
    world.clock.advance(11)
    async with world.bus.subscribe("approvals") as events:
        assert await world.service.expire_due() == 1
        await world.service.cancel(
            world.account_id,
            withdrawn.id,
            actor=agent.key_id,
            reason="client disconnected",
            name=agent.name,
            via=agent.credential,
        )
        seen = [await asyncio.wait_for(anext(aiter(events)), timeout=10) for _ in range(2)]
    expired = await world.service.get(world.account_id, timed.id)
    assert (expired.decided_by, expired.decided_by_name, expired.decided_via) == (
        "system",
        "system",
        "system",
    )
    cancelled = await world.service.get(world.account_id, withdrawn.id)
    assert (cancelled.decided_by, cancelled.decided_by_name, cancelled.decided_via) == (
        agent.key_id,
        "k",
        f"key:{agent.key_id}",
    )
    assert [(e.decided_by_name, e.decided_via) for e in seen if isinstance(e, ApprovalDecided)] == [
        ("system", "system"),
        ("k", f"key:{agent.key_id}"),
    ]
    decided = [
        e.data
        for e in await world.storage.audit.all(world.account_id)
        if e.kind == "approval.decided"
    ]
    assert [(d["decided_by_name"], d["via"]) for d in decided] == [
        ("system", "system"),
        ("k", f"key:{agent.key_id}"),
    ]


async def test_a_vote_result_carries_the_approvals_so_far(world: World) -> None:
    agent = await world.caller(Role.AGENT)
    one, two, three = [await world.caller(Role.APPROVER) for _ in range(3)]
    request = await world.request(agent, required_approvals=3)

    counts = [
        (voted.request.status, voted.approvals)
        for voted in [
            await world.service.decide(world.account_id, request.id, approver=one, approve=True),
            await world.service.decide(world.account_id, request.id, approver=two, approve=True),
            await world.service.decide(world.account_id, request.id, approver=three, approve=False),
        ]
    ]

    assert [
        (ApprovalStatus.PENDING, 1),
        (ApprovalStatus.PENDING, 2),
        (ApprovalStatus.DENIED, 2),
    ] == counts


async def test_a_users_login_token_and_their_key_are_one_person_to_the_approval(
    world: World,
) -> None:
    from hub.login_limits import LoginLimiter
    from hub.logins import LoginService
    from hub.passwords import ScryptCost

    logins = LoginService(
        world.storage,
        world.clock,
        Auditor(world.storage.audit, world.clock),
        world.identity,
        LoginLimiter(world.clock, per_username=5, per_address=20, window_seconds=300),
        cost=ScryptCost(log_n=10),
    )
    own_key = await world.caller(Role.APPROVER, email="ana@example.com")
    await logins.set_password(
        world.account_id, "ana@example.com", "a long password", role=Role.ADMIN, actor="t"
    )
    first = await logins.login("ana@example.com", "a long password")
    second = await logins.login("ana@example.com", "a long password")
    by_token = await world.identity.authenticate(first.text)
    request = await world.request(by_token)

    for approver in (by_token, await world.identity.authenticate(second.text), own_key):
        with pytest.raises(PermissionDeniedError, match="never decide"):
            await world.service.decide(
                world.account_id, request.id, approver=approver, approve=True
            )
    other = await world.caller(Role.APPROVER, email="bo@example.com")
    decided = await world.service.decide(world.account_id, request.id, approver=other, approve=True)
    assert ApprovalStatus.APPROVED is decided.request.status
