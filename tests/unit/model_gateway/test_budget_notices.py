"""Budget notices: a budget past its soft limit is announced on its workflow's channels, to
its approvers, once per channel across dispatches, retried and audited like a delivery. The
events come from the real BudgetService (a real hub on the in-memory storage); the channels
are recording notifiers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from hub.clock import FrozenClock
from hub.errors import ValidationError
from hub.events import SYSTEM_TOPIC, ApprovalRequested, BudgetCrossed
from hub.memory import InMemoryStorage
from hub.model_gateway.notices import announcement_key
from hub.model_gateway.records import Attribution, BudgetPeriod, BudgetScope, SoftAction
from hub.notification_dispatch import NotificationDispatch
from hub.notifier import Announcement, Notice
from hub.ports import AuditQuery
from hub.records import ApprovalRequest, Role
from server.bootstrap import open_hub
from server.hub_services import Hub
from tests.integration.conftest import make_settings

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
POLICY = """
version: "1.0"
metadata: {name: budget notices}
approval_workflows:
  - name: finance
    approvers: ["user:ada@example.com", "user:bo@example.com"]
    channels: [slack, email]
    channel_settings: {slack: {channel: "#spend"}}
  - name: quiet
    approvers: ["user:ada@example.com"]
    channels: [mattermost]
tools: []
"""
OTHER_POLICY = POLICY.replace("name: finance", "name: treasury")


@dataclass
class Recording:
    """A notifier that records what it is asked to announce."""

    channel: str
    announced: list[Announcement] = field(default_factory=list)
    got: asyncio.Event = field(default_factory=asyncio.Event)

    async def deliver(self, notice: Notice) -> None:
        raise AssertionError("a budget notice is no approval request")

    async def settle(self, request: ApprovalRequest) -> None:
        raise AssertionError("a budget notice is never settled")

    async def announce(self, announcement: Announcement) -> None:
        self.announced.append(announcement)
        self.got.set()


@dataclass
class Failing(Recording):
    """A channel that is down for ``failures`` calls, then works."""

    failures: int = 1000
    calls: int = 0

    async def announce(self, announcement: Announcement) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionRefusedError("hooks.slack.example refused the connection")
        await super().announce(announcement)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    opened = await open_hub(
        make_settings(tmp_path), clock=FrozenClock(NOW), storage=InMemoryStorage()
    )
    try:
        account = await opened.identity.default_account()
        await opened.policies.apply(account.id, POLICY, actor="test")
        for email in ("ada@example.com", "bo@example.com", "cy@example.com"):
            await opened.identity.add_user(account.id, email=email, name="", actor="test")
        await opened.identity.link_user(account.id, "ada@example.com", {"slack": "UADA"}, actor="t")
        yield opened
    finally:
        await opened.close()


def dispatch(hub: Hub, *notifiers: object, claimant: str | None = None) -> NotificationDispatch:
    async def no_wait(seconds: float) -> None:
        sleeps.append(seconds)

    sleeps: list[float] = []
    made = NotificationDispatch(
        storage=hub.storage,
        policies=hub.policies,
        auditor=hub.auditor,
        clock=hub.clock,
        bus=hub.bus,
        notifiers=notifiers,  # type: ignore[arg-type]
        attempts=3,
        first_delay=0.5,
        sleep=no_wait,
        claimant=claimant,
    )
    made.sleeps = sleeps  # type: ignore[attr-defined]
    return made


async def add_budget(hub: Hub, **fields: object) -> None:
    account = await hub.identity.default_account()
    values: dict[str, object] = {
        "name": "team-day",
        "scope": BudgetScope.ACCOUNT,
        "period": BudgetPeriod.DAY,
        "soft_limit": Decimal("8"),
        "hard_limit": Decimal("10"),
        "approval_workflow": "finance",
    }
    await hub.budgets.add(account.id, actor="test", **(values | fields))  # type: ignore[arg-type]


async def cross(hub: Hub) -> BudgetCrossed:
    """Spend $7.90, then ask for $0.50 more: past the soft limit of $8."""
    account = await hub.identity.default_account()
    agent = Attribution(account_id=account.id, api_key_id="key_agent", principal="agent")
    spent = await hub.budgets.admit(agent, model="m", estimate=Decimal("1"))
    await hub.budgets.settle(spent, Decimal("7.9"))
    async with hub.bus.subscribe(SYSTEM_TOPIC) as events:
        await hub.budgets.admit(agent, model="m", estimate=Decimal("0.5"))
        event = await asyncio.wait_for(anext(events), timeout=30)
    assert isinstance(event, BudgetCrossed)
    return event


async def failures(hub: Hub) -> list[dict[str, object]]:
    account = await hub.identity.default_account()
    found = await hub.auditor.query(account.id, AuditQuery(kind="notification.failed"))
    return [e.data for e in sorted(found, key=lambda e: e.seq)]


async def test_the_workflows_channels_and_approvers_are_told_once(hub: Hub) -> None:
    await add_budget(hub)
    event = await cross(hub)
    slack, email, mattermost = Recording("slack"), Recording("email"), Recording("mattermost")
    notices = dispatch(hub, slack, email, mattermost)

    await notices.handle(event)
    late = Recording("slack"), Recording("email")
    await dispatch(hub, *late).handle(event)  # another replica's copy of the event: claimed

    assert ([], []) == tuple(r.announced for r in late)
    assert [] == mattermost.announced  # the workflow does not list it
    assert 1 == len(slack.announced) == len(email.announced)
    told = slack.announced[0]
    assert told == email.announced[0]
    assert ("warning", 'Budget "team-day" passed its soft limit') == (told.severity, told.title)
    assert (
        "Budget: team-day (account budget, period: day)",
        "Spent: $7.90 of soft limit $8.00, hard limit $10.00",
        "Resets: 2026-11-25 00:00 UTC",
        "Requests go on, with a Preloop-Budget-Warning header; the hard limit refuses them.",
    ) == told.lines
    assert ["ada@example.com", "bo@example.com"] == [r.email for r in told.recipients]
    assert {"slack": "UADA"} == told.recipients[0].identities
    assert {"slack": {"channel": "#spend"}} == told.channel_settings
    assert f"budget:{event.budget_id}:20261125T0000Z" == told.key == announcement_key(event)
    assert len(told.key) <= 64  # it is the claim's request id


async def test_two_dispatches_on_one_storage_announce_once_per_channel(hub: Hub) -> None:
    await add_budget(hub)
    event = await cross(hub)
    first = Recording("slack"), Recording("email")
    second = Recording("slack"), Recording("email")

    await asyncio.gather(
        dispatch(hub, *first, claimant="replica-a").handle(event),
        dispatch(hub, *second, claimant="replica-b").handle(event),
    )

    assert [1, 1] == [
        len(a.announced) + len(b.announced) for a, b in zip(first, second, strict=True)
    ]


async def test_a_failing_channel_is_retried_and_audited_the_others_are_told(hub: Hub) -> None:
    await add_budget(hub)
    event = await cross(hub)
    down, email = Failing("slack", failures=2), Recording("email")
    notices = dispatch(hub, down, email)

    await notices.handle(event)

    assert (3, 1, 1) == (down.calls, len(down.announced), len(email.announced))
    assert [0.5, 1.0] == notices.sleeps  # type: ignore[attr-defined]
    audited = await failures(hub)
    assert [1, 2] == [f["attempt"] for f in audited]
    assert {(announcement_key(event), "slack", "announce", False)} == {
        (f["request_id"], f["channel"], f["operation"], f["final"]) for f in audited
    }
    assert "refused the connection" in str(audited[0]["error"])


async def test_a_channel_that_stays_down_is_audited_as_final(hub: Hub) -> None:
    await add_budget(hub)
    event = await cross(hub)
    down = Failing("email")

    await dispatch(hub, down).handle(event)

    assert (3, []) == (down.calls, down.announced)
    assert [False, False, True] == [f["final"] for f in await failures(hub)]


async def test_a_warn_budget_without_a_workflow_is_announced_nowhere(hub: Hub) -> None:
    await add_budget(hub, approval_workflow=None)
    event = await cross(hub)  # still on the system topic (the WebSocket) and in the audit
    slack, email = Recording("slack"), Recording("email")

    await dispatch(hub, slack, email).handle(event)

    assert ([], [], []) == (slack.announced, email.announced, await failures(hub))


async def test_a_workflow_gone_from_the_policy_is_audited(hub: Hub) -> None:
    await add_budget(hub)
    event = await cross(hub)
    account = await hub.identity.default_account()
    await hub.policies.apply(account.id, OTHER_POLICY, actor="test")
    slack = Recording("slack")

    await dispatch(hub, slack).handle(event)
    await dispatch(hub, slack).handle(event)  # another replica's copy: audited once

    [failure] = await failures(hub)
    assert [] == slack.announced
    assert ("resolve", announcement_key(event)) == (failure["operation"], failure["request_id"])
    assert "'finance', which the active policy does not have" in str(failure["error"])


async def test_the_running_dispatch_follows_the_system_topic(hub: Hub) -> None:
    await add_budget(hub)
    slack = Recording("slack")
    notices = dispatch(hub, slack)

    async with notices.running():
        await cross(hub)
        await asyncio.wait_for(slack.got.wait(), timeout=30)

    assert ['Budget "team-day" passed its soft limit'] == [a.title for a in slack.announced]


async def test_an_ask_budget_once_granted_is_announced_as_granted(hub: Hub) -> None:
    await add_budget(hub, on_soft=SoftAction.ASK, hard_limit=None)
    account = await hub.identity.default_account()
    agent = Attribution(account_id=account.id, api_key_id="key_agent", principal="agent")
    spent = await hub.budgets.admit(agent, model="m", estimate=Decimal("1"))
    await hub.budgets.settle(spent, Decimal("7.9"))
    ada = await hub.identity.create_key(
        account.id, name="ada", role=Role.APPROVER, actor="t", user_email="ada@example.com"
    )
    deciding = await hub.identity.authenticate(ada.secret)

    async with hub.bus.subscribe(SYSTEM_TOPIC) as system, hub.bus.subscribe("approvals") as asks:
        asking = asyncio.create_task(hub.budgets.admit(agent, model="m", estimate=Decimal("0.5")))
        requested = await asyncio.wait_for(anext(asks), timeout=30)
        assert isinstance(requested, ApprovalRequested)
        await hub.approvals.decide(
            account.id, requested.request_id, approver=deciding, approve=True
        )
        await asyncio.wait_for(asking, timeout=30)
        event = await asyncio.wait_for(anext(system), timeout=30)
    email = Recording("email")

    assert isinstance(event, BudgetCrossed)
    await dispatch(hub, email).handle(event)

    [told] = email.announced
    assert "Spent: $7.90 of soft limit $8.00" == told.lines[1]
    assert "approved for the rest of the period" in told.lines[-1]


async def test_a_warn_budget_may_name_a_workflow_of_the_active_policy(hub: Hub) -> None:
    await add_budget(hub, name="told")  # warn (the default) with workflow "finance": accepted
    with pytest.raises(ValidationError, match="'treasury' is not in the active policy"):
        await add_budget(hub, name="unknown", approval_workflow="treasury")
    with pytest.raises(ValidationError, match="needs a soft limit"):
        await add_budget(hub, name="hard-only", soft_limit=None)
