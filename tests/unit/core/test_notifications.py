"""Notification dispatch: channels, recipients, retries, audit, settle."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.clock import FrozenClock
from hub.events import ApprovalDecided, ApprovalEscalated, ApprovalRequested, InMemoryEventBus
from hub.identity import IdentityService
from hub.keys import Caller
from hub.memory import InMemoryStorage
from hub.notification_dispatch import NotificationDispatch
from hub.notifier import Notice
from hub.policy import Decision
from hub.policy.model import Action
from hub.policy_versions import PolicyService
from hub.ports import AuditQuery
from hub.records import ApprovalRequest, NotificationClaim, Role

POLICY = """
version: "1.0"
metadata: {name: t}
approval_workflows:
  - name: ops
    approvers: ["user:ada@example.com", "team:oncall", "role:admin", "user:ghost@example.com"]
    channels: [email, slack]
    channel_settings: {slack: {channel: "#deploys"}}
    escalation: {after_seconds: 60, approvers: ["user:zed@example.com"]}
  - name: quiet
    approvers: ["user:ada@example.com"]
    channels: [mattermost]
  - name: anyone
    channels: [email]
tools:
  - name: bash
    action: require_approval
    approval_workflow: ops
"""


@dataclass
class Recording:
    """A notifier that records what it is asked to do."""

    channel: str
    delivered: list[Notice] = field(default_factory=list)
    settled: list[ApprovalRequest] = field(default_factory=list)
    got: asyncio.Event = field(default_factory=asyncio.Event)

    async def deliver(self, notice: Notice) -> None:
        self.delivered.append(notice)
        self.got.set()

    async def settle(self, request: ApprovalRequest) -> None:
        self.settled.append(request)
        self.got.set()


@dataclass
class Failing:
    """A notifier whose channel is down: it fails ``failures`` times, then works."""

    channel: str
    failures: int = 1000
    calls: int = 0
    delivered: list[Notice] = field(default_factory=list)

    async def deliver(self, notice: Notice) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionRefusedError("smtp.example.com:587 refused the connection")
        self.delivered.append(notice)

    async def settle(self, request: ApprovalRequest) -> None:
        raise ConnectionRefusedError("down")


@dataclass
class World:
    storage: InMemoryStorage
    clock: FrozenClock
    auditor: Auditor
    identity: IdentityService
    policies: PolicyService
    approvals: ApprovalService
    bus: InMemoryEventBus
    account: str
    sleeps: list[float] = field(default_factory=list)

    def dispatch(
        self, *notifiers: object, attempts: int = 3, claimant: str | None = None
    ) -> NotificationDispatch:
        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        return NotificationDispatch(
            storage=self.storage,
            policies=self.policies,
            auditor=self.auditor,
            clock=self.clock,
            bus=self.bus,
            notifiers=notifiers,  # type: ignore[arg-type]
            attempts=attempts,
            first_delay=0.5,
            sleep=sleep,
            claimant=claimant,
        )

    async def user(self, address: str, *, role: Role | None = None, **linked: str) -> Caller:
        user = await self.identity.add_user(self.account, email=address, name="", actor="t")
        if linked:
            await self.identity.link_user(self.account, address, linked, actor="t")
        created = await self.identity.create_key(
            self.account,
            name=address.split("@")[0],
            role=role or Role.APPROVER,
            actor="t",
            user_email=user.email,
        )
        return await self.identity.authenticate(created.secret)

    async def open(self, agent: Caller, workflow: str = "ops") -> ApprovalRequest:
        active = await self.policies.active(self.account)
        assert active is not None
        version, compiled = active
        spec = next(w for w in compiled.document.approval_workflows if w.name == workflow)
        return await self.approvals.open(
            caller=agent,
            server="shell",
            tool="bash",
            args={"command": "deploy"},
            justification="release",
            decision=Decision(action=Action.REQUIRE_APPROVAL, rule="bash#1", workflow=workflow),
            policy_version=version.version,
            workflow=spec,
        )

    def requested(self, request: ApprovalRequest) -> ApprovalRequested:
        return ApprovalRequested(
            account_id=self.account,
            at=self.clock.now(),
            request_id=request.id,
            tool=request.tool,
            server=request.server,
            workflow=request.workflow,
        )

    def decided(self, request: ApprovalRequest) -> ApprovalDecided:
        return ApprovalDecided(
            account_id=self.account,
            at=self.clock.now(),
            request_id=request.id,
            status="approved",
            decided_by=None,
            comment=None,
        )

    def escalated(self, request: ApprovalRequest) -> ApprovalEscalated:
        return ApprovalEscalated(
            account_id=self.account,
            at=self.clock.now(),
            request_id=request.id,
            workflow=request.workflow,
            added=("user:zed@example.com",),
        )

    async def failures(self) -> list[dict[str, object]]:
        events = await self.auditor.query(self.account, AuditQuery(kind="notification.failed"))
        return [e.data for e in sorted(events, key=lambda e: e.seq)]


@pytest.fixture
async def world() -> World:
    storage = InMemoryStorage()
    clock = FrozenClock()
    auditor = Auditor(storage.audit, clock)
    identity = IdentityService(storage, clock, auditor)
    account = (await identity.default_account()).id
    policies = PolicyService(storage, clock, auditor)
    await policies.apply(account, POLICY, actor="t")
    bus = InMemoryEventBus()
    return World(
        storage=storage,
        clock=clock,
        auditor=auditor,
        identity=identity,
        policies=policies,
        approvals=ApprovalService(storage, clock, auditor, bus),
        bus=bus,
        account=account,
    )


async def test_a_request_reaches_the_workflows_channels_and_its_approvers(world: World) -> None:
    await world.user("ada@example.com", slack="U_ADA", email="ada@home.example")
    await world.user("bo@example.com")
    await world.user("cy@example.com", role=Role.ADMIN)
    await world.user("dee@example.com")  # approver key, but not listed: not told
    await world.identity.add_team(
        world.account, name="oncall", members=["bo@example.com"], actor="t"
    )
    agent = await world.user("agent-owner@example.com", role=Role.AGENT)
    email, slack, mattermost = Recording("email"), Recording("slack"), Recording("mattermost")
    request = await world.open(agent)

    await world.dispatch(email, slack, mattermost).handle(world.requested(request))

    assert [] == mattermost.delivered  # the workflow does not list it
    assert 1 == len(email.delivered) == len(slack.delivered)
    notice = email.delivered[0]
    assert notice == slack.delivered[0]
    assert (request.id, False) == (notice.request.id, notice.escalation)
    assert ["ada@example.com", "bo@example.com", "cy@example.com"] == [
        r.email for r in notice.recipients
    ]
    assert {"slack": "U_ADA", "email": "ada@home.example"} == notice.recipients[0].identities
    assert {"slack": {"channel": "#deploys"}} == notice.channel_settings


async def test_the_user_who_made_the_call_is_never_a_recipient(world: World) -> None:
    ada = await world.user("ada@example.com", role=Role.ADMIN)
    agent_of_ada = await world.identity.create_key(
        world.account, name="ada-agent", role=Role.AGENT, actor="t", user_email="ada@example.com"
    )
    email = Recording("email")
    request = await world.open(await world.identity.authenticate(agent_of_ada.secret))

    await world.dispatch(email).handle(world.requested(request))

    assert ada.user_id is not None
    assert [] == [r for r in email.delivered[0].recipients if r.user_id == ada.user_id]


async def test_no_approvers_means_everyone_who_may_decide(world: World) -> None:
    await world.user("ada@example.com", role=Role.APPROVER)
    await world.user("cy@example.com", role=Role.ADMIN)
    await world.user("vi@example.com", role=Role.VIEWER)
    agent = await world.user("bot@example.com", role=Role.AGENT)
    email = Recording("email")
    request = await world.open(agent, "anyone")

    await world.dispatch(email).handle(world.requested(request))

    assert ["ada@example.com", "cy@example.com"] == [r.email for r in email.delivered[0].recipients]


async def test_a_failing_channel_is_retried_with_backoff_and_audited(world: World) -> None:
    await world.user("ada@example.com")
    agent = await world.user("bot@example.com", role=Role.AGENT)
    down, slack = Failing("email"), Recording("slack")
    request = await world.open(agent)

    await world.dispatch(down, slack, attempts=3).handle(world.requested(request))

    assert 3 == down.calls
    assert [0.5, 1.0] == world.sleeps  # bounded: no sleep after the last attempt
    assert 1 == len(slack.delivered)  # the other channel is unaffected
    failures = await world.failures()
    assert [1, 2, 3] == [f["attempt"] for f in failures]
    assert [False, False, True] == [f["final"] for f in failures]
    assert {("email", "deliver", request.id)} == {
        (f["channel"], f["operation"], f["request_id"]) for f in failures
    }
    assert "ConnectionRefusedError: smtp.example.com:587 refused" in str(failures[0]["error"])
    current = await world.approvals.get(world.account, request.id)
    assert "pending" == current.status.value  # a channel never decides


async def test_a_channel_that_recovers_delivers_once(world: World) -> None:
    await world.user("ada@example.com")
    agent = await world.user("bot@example.com", role=Role.AGENT)
    flaky = Failing("email", failures=1)
    request = await world.open(agent)

    await world.dispatch(flaky).handle(world.requested(request))

    assert (2, 1) == (flaky.calls, len(flaky.delivered))
    assert 1 == len(await world.failures())


async def test_a_decision_settles_on_the_workflows_channels(world: World) -> None:
    ada = await world.user("ada@example.com")
    agent = await world.user("bot@example.com", role=Role.AGENT)
    email, mattermost, down = Recording("email"), Recording("mattermost"), Failing("slack")
    request = await world.open(agent)
    voted = await world.approvals.decide(world.account, request.id, approver=ada, approve=True)
    decided = voted.request

    await world.dispatch(email, mattermost, down, attempts=2).handle(
        ApprovalDecided(
            account_id=world.account,
            at=world.clock.now(),
            request_id=request.id,
            status="approved",
            decided_by=ada.key_id,
            comment=None,
        )
    )

    assert [decided] == email.settled
    assert [] == mattermost.settled
    assert [("slack", "settle")] * 2 == [
        (f["channel"], f["operation"]) for f in await world.failures()
    ]


async def test_the_running_dispatch_follows_the_bus(world: World) -> None:
    ada = await world.user("ada@example.com")
    agent = await world.user("bot@example.com", role=Role.AGENT)
    email = Recording("email")
    dispatch = world.dispatch(email)

    async with dispatch.running():
        request = await world.open(agent)
        await asyncio.wait_for(email.got.wait(), 10)
        email.got.clear()
        await world.approvals.decide(world.account, request.id, approver=ada, approve=False)
        await asyncio.wait_for(email.got.wait(), 10)

    assert [request.id] == [n.request.id for n in email.delivered]
    assert ["denied"] == [r.status.value for r in email.settled]


async def test_an_unknown_request_is_ignored(world: World) -> None:
    email = Recording("email")
    event = ApprovalRequested(
        account_id=world.account,
        at=world.clock.now(),
        request_id="apr_missing",
        tool="bash",
        server="shell",
        workflow="ops",
    )

    await world.dispatch(email).handle(event)

    assert ([], []) == (email.delivered, await world.failures())


@dataclass
class Blocked(Recording):
    """A notifier whose delivery is slow: it posts only once ``release`` is set."""

    posting: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def deliver(self, notice: Notice) -> None:
        self.posting.set()
        await self.release.wait()
        await super().deliver(notice)


class ClaimSpy:
    """The storage's claim store, recording every answer (to know when a dispatch is done)."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self._claims = storage.notification_claims
        self.answers: list[tuple[str, str, bool]] = []
        self.changed = asyncio.Event()

    async def claim(self, claim: NotificationClaim) -> bool:
        won = await self._claims.claim(claim)
        self.answers.append((claim.channel, str(claim.operation), won))
        self.changed.set()
        return won

    async def answered(self, count: int) -> None:
        await _until(self.changed, lambda: len(self.answers) >= count)


async def _until(changed: asyncio.Event, done: Callable[[], bool]) -> None:
    """Wait until ``done()``, looking again each time ``changed`` is set."""
    while True:
        changed.clear()
        if done():
            return
        await asyncio.wait_for(changed.wait(), 10)


def _replicas(
    got: asyncio.Event | None = None,
) -> tuple[dict[str, Recording], dict[str, Recording]]:
    """Each replica has notifiers of its own, as separate processes do."""
    got = got or asyncio.Event()
    return (
        {"email": Recording("email", got=got), "slack": Recording("slack", got=got)},
        {"email": Recording("email", got=got), "slack": Recording("slack", got=got)},
    )


async def test_two_dispatches_on_one_storage_deliver_escalate_and_settle_once(
    world: World,
) -> None:
    await world.user("ada@example.com")
    await world.user("zed@example.com")
    agent = await world.user("bot@example.com", role=Role.AGENT)
    one, two = _replicas()
    first = world.dispatch(*one.values(), claimant="replica-1")
    second = world.dispatch(*two.values(), claimant="replica-2")
    request = await world.open(agent)

    for event in (world.requested(request), world.escalated(request), world.decided(request)):
        await asyncio.gather(first.handle(event), second.handle(event))

    for channel in ("email", "slack"):
        delivered = one[channel].delivered + two[channel].delivered
        settled = one[channel].settled + two[channel].settled
        assert [False, True] == sorted(n.escalation for n in delivered), channel
        assert [request.id] == [r.id for r in settled], channel
    assert [] == await world.failures()


async def test_two_running_dispatches_on_one_bus_deliver_and_settle_once(world: World) -> None:
    ada = await world.user("ada@example.com")
    agent = await world.user("bot@example.com", role=Role.AGENT)
    spy = ClaimSpy(world.storage)
    world.storage.notification_claims = spy  # type: ignore[assignment]
    got = asyncio.Event()
    one, two = _replicas(got)

    async with (
        world.dispatch(*one.values(), claimant="replica-1").running(),
        world.dispatch(*two.values(), claimant="replica-2").running(),
    ):
        request = await world.open(agent)
        await spy.answered(4)  # both replicas asked for both channels' deliver claims
        await world.approvals.decide(world.account, request.id, approver=ada, approve=True)
        await spy.answered(8)  # both replicas asked for both settle claims
        await _until(got, lambda: all(one[c].settled + two[c].settled for c in one))
        settled = {c: one[c].settled + two[c].settled for c in one}

    for channel in ("email", "slack"):
        assert 1 == len(one[channel].delivered + two[channel].delivered), channel
        assert ["approved"] == [r.status.value for r in settled[channel]], channel
    assert 4 == sum(won for _, _, won in spy.answers)  # one winner per channel and operation


async def test_a_decision_while_posting_settles_once_after_the_post(world: World) -> None:
    ada = await world.user("ada@example.com")
    agent = await world.user("bot@example.com", role=Role.AGENT)
    slack = Blocked("slack")
    dispatch = world.dispatch(slack)
    request = await world.open(agent)

    delivering = asyncio.create_task(dispatch.handle(world.requested(request)))
    await asyncio.wait_for(slack.posting.wait(), 10)
    await world.approvals.decide(world.account, request.id, approver=ada, approve=True)
    settling = asyncio.create_task(dispatch.handle(world.decided(request)))
    slack.release.set()
    await asyncio.gather(delivering, settling)

    assert 1 == len(slack.delivered)
    assert ["approved"] == [r.status.value for r in slack.settled]


async def test_a_post_finished_after_another_replica_settled_is_settled_too(
    world: World,
) -> None:
    ada = await world.user("ada@example.com")
    agent = await world.user("bot@example.com", role=Role.AGENT)
    slow, quick = Blocked("slack"), Recording("slack")
    poster = world.dispatch(slow, claimant="replica-1")
    settler = world.dispatch(quick, claimant="replica-2")
    request = await world.open(agent)

    delivering = asyncio.create_task(poster.handle(world.requested(request)))
    await asyncio.wait_for(slow.posting.wait(), 10)
    await settler.handle(world.requested(request))  # the claim is replica-1's: nothing
    await world.approvals.decide(world.account, request.id, approver=ada, approve=True)
    await settler.handle(world.decided(request))  # settles what exists: not the slow post
    slow.release.set()
    await delivering
    await poster.handle(world.decided(request))  # the settle claim is replica-2's

    assert ([], 1) == (quick.delivered, len(slow.delivered))
    assert ["approved"] == [r.status.value for r in quick.settled]
    assert ["approved"] == [r.status.value for r in slow.settled]  # its own post updated


async def test_a_claim_the_database_refuses_is_retried_and_audited(world: World) -> None:
    await world.user("ada@example.com")
    agent = await world.user("bot@example.com", role=Role.AGENT)
    claims = world.storage.notification_claims
    refusals = 0

    class Flaky:
        async def claim(self, claim: NotificationClaim) -> bool:
            nonlocal refusals
            if refusals < 1:
                refusals += 1
                raise ConnectionResetError("the database went away")
            return await claims.claim(claim)

    world.storage.notification_claims = Flaky()  # type: ignore[assignment]
    slack = Recording("slack")
    request = await world.open(agent)

    await world.dispatch(slack).handle(world.requested(request))

    assert 1 == len(slack.delivered)
    assert [("slack", "claim deliver", 1, False)] == [
        (f["channel"], f["operation"], f["attempt"], f["final"]) for f in await world.failures()
    ]
