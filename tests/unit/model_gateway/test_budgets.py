"""BudgetService: which budgets apply, hard refusals, soft warnings and their event, pause and
ask through an approval workflow, settling. On the in-memory storage through a real hub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from hub.clock import FrozenClock
from hub.events import SYSTEM_TOPIC, ApprovalRequested, BudgetCrossed
from hub.memory import InMemoryStorage
from hub.model_gateway.budgets import money, period_start, resets_at
from hub.model_gateway.ports import Admission, BudgetExceededError
from hub.model_gateway.records import Attribution, BudgetPeriod, BudgetScope, SoftAction
from hub.ports import AuditQuery
from hub.records import Role
from server.bootstrap import open_hub
from server.hub_services import Hub
from tests.integration.conftest import make_settings

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
POLICY = """
version: "1.0"
metadata: {name: budgets}
approval_workflows:
  - name: finance
    timeout_seconds: 300
    approvers: ["role:admin"]
tools: []
"""


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    opened = await open_hub(
        make_settings(tmp_path), clock=FrozenClock(NOW), storage=InMemoryStorage()
    )
    try:
        yield opened
    finally:
        await opened.close()


async def who(hub: Hub, *, flow: str | None = None, key: str = "key_agent") -> Attribution:
    account = await hub.identity.default_account()
    return Attribution(account_id=account.id, api_key_id=key, principal="agent", flow=flow)


async def add(hub: Hub, name: str = "team-day", **fields: object) -> None:
    account = await hub.identity.default_account()
    defaults: dict[str, object] = {"scope": BudgetScope.ACCOUNT, "period": BudgetPeriod.DAY}
    await hub.budgets.add(account.id, name=name, actor="test", **(defaults | fields))  # type: ignore[arg-type]


def test_periods_and_their_resets() -> None:
    assert datetime(2026, 11, 24, tzinfo=UTC) == period_start(BudgetPeriod.DAY, NOW)
    assert datetime(2026, 11, 25, tzinfo=UTC) == resets_at(BudgetPeriod.DAY, NOW)
    assert datetime(2026, 12, 1, tzinfo=UTC) == resets_at(BudgetPeriod.MONTH, NOW)
    december = NOW.replace(month=12, day=31)
    assert datetime(2027, 1, 1, tzinfo=UTC) == resets_at(BudgetPeriod.MONTH, december)
    assert resets_at(BudgetPeriod.TOTAL, NOW) is None
    assert ("$8.10", "$0.000125") == (money(Decimal("8.1")), money(Decimal("0.000125")))


async def test_no_budget_means_no_reservation(hub: Hub) -> None:
    admission = await hub.budgets.admit(await who(hub), model="gpt-4o", estimate=Decimal("5"))

    assert Admission() == admission
    await hub.budgets.settle(admission, Decimal("1"))  # nothing to settle: no error


async def test_a_hard_limit_refuses_before_it_is_passed_and_says_when_it_resets(hub: Hub) -> None:
    await add(hub, hard_limit=Decimal("10"))
    agent = await who(hub)

    first = await hub.budgets.admit(agent, model="gpt-4o", estimate=Decimal("6"))
    await hub.budgets.settle(first, Decimal("9.95"))
    with pytest.raises(BudgetExceededError) as refused:
        await hub.budgets.admit(agent, model="gpt-4o", estimate=Decimal("0.10"))

    message = str(refused.value)
    assert 'Budget "team-day"' in message
    assert "account day budget" in message
    assert "hard limit of $10.00" in message
    assert "spent $9.95" in message
    assert "resets 2026-11-25T00:00:00Z" in message
    assert datetime(2026, 11, 25, tzinfo=UTC) == refused.value.resets_at
    assert Decimal("6") == first.reserved


async def test_a_total_budget_never_resets(hub: Hub) -> None:
    await add(hub, "lifetime", period=BudgetPeriod.TOTAL, hard_limit=Decimal("1"))

    with pytest.raises(BudgetExceededError, match="never resets"):
        await hub.budgets.admit(await who(hub), model="m", estimate=Decimal("2"))


async def test_only_the_budgets_of_this_flow_and_key_apply(hub: Hub) -> None:
    await add(hub, "flow-a", scope=BudgetScope.FLOW, scope_id="a", hard_limit=Decimal("1"))
    await add(hub, "key-b", scope=BudgetScope.API_KEY, scope_id="key_b", hard_limit=Decimal("1"))

    assert (
        await hub.budgets.admit(await who(hub, flow="z"), model="m", estimate=Decimal(5))
    ).reservation_id is None
    with pytest.raises(BudgetExceededError, match="flow-a"):
        await hub.budgets.admit(await who(hub, flow="a"), model="m", estimate=Decimal(5))
    with pytest.raises(BudgetExceededError, match="key-b"):
        await hub.budgets.admit(await who(hub, key="key_b"), model="m", estimate=Decimal(5))


async def test_a_soft_limit_warns_and_announces_once_per_period(hub: Hub) -> None:
    await add(hub, soft_limit=Decimal("8"), hard_limit=Decimal("10"))
    agent = await who(hub)
    spent = await hub.budgets.admit(agent, model="m", estimate=Decimal("1"))
    await hub.budgets.settle(spent, Decimal("8.10"))

    async with hub.bus.subscribe(SYSTEM_TOPIC) as events:
        one = await hub.budgets.admit(agent, model="m", estimate=Decimal("0.5"))
        two = await hub.budgets.admit(agent, model="m", estimate=Decimal("0.5"))
        event = await asyncio.wait_for(anext(events), timeout=30)

    assert ('budget "team-day" at $8.10 of soft $8.00',) == one.warnings == two.warnings
    assert isinstance(event, BudgetCrossed)
    assert ("team-day", "8.1", "8", "2026-11-25") == (
        event.budget,
        event.spent,
        event.soft_limit,
        event.resets_at.date().isoformat(),  # type: ignore[union-attr]
    )
    account = await hub.identity.default_account()
    crossed = await hub.auditor.query(account.id, AuditQuery(kind="budget.soft_crossed"))
    assert 1 == len(crossed)
    [state] = await hub.budgets.states(account.id)
    assert ("warning", Decimal("8.1"), Decimal("1")) == (state.state, state.spent, state.reserved)


async def ask_budget(hub: Hub, policy: str = POLICY) -> Attribution:
    account = await hub.identity.default_account()
    await hub.policies.apply(account.id, policy, actor="test")
    await add(
        hub,
        soft_limit=Decimal("1"),
        hard_limit=Decimal("10"),
        on_soft=SoftAction.ASK,
        approval_workflow="finance",
    )
    agent = await who(hub)
    await hub.budgets.settle(
        await hub.budgets.admit(agent, model="m", estimate=Decimal("0")), Decimal("0.99")
    )
    return agent


async def decide_next_request(hub: Hub, events: AsyncIterator[object], *, approve: bool) -> str:
    event = await asyncio.wait_for(anext(events), timeout=30)  # type: ignore[call-overload]
    assert isinstance(event, ApprovalRequested)
    account = await hub.identity.default_account()
    admin = await hub.identity.create_key(account.id, name="boss", role=Role.ADMIN, actor="t")
    approver = await hub.identity.authenticate(admin.secret)
    await hub.approvals.decide(account.id, event.request_id, approver=approver, approve=approve)
    return event.request_id


async def test_ask_pauses_until_approved_then_grants_the_rest_of_the_period(hub: Hub) -> None:
    agent = await ask_budget(hub)
    account = await hub.identity.default_account()

    async with hub.bus.subscribe("approvals") as events:
        waiting = [
            asyncio.create_task(hub.budgets.admit(agent, model="gpt-4o", estimate=Decimal("0.5")))
            for _ in range(3)
        ]
        request_id = await decide_next_request(hub, events, approve=True)
        admitted = await asyncio.wait_for(asyncio.gather(*waiting), timeout=30)

    assert all(a.reservation_id is not None for a in admitted)
    request = await hub.approvals.get(account.id, request_id)
    assert ("gateway.budget", "team-day", "gpt-4o") == (
        request.tool,
        request.args["budget"],
        request.args["model"],
    )
    assert 1 == len(await hub.approvals.list(account.id))  # three requests, one question
    later = await hub.budgets.admit(agent, model="m", estimate=Decimal("1"))  # granted: no ask
    assert later.warnings


async def test_ask_denied_refuses_and_stays_refused_for_the_period(hub: Hub) -> None:
    agent = await ask_budget(hub)

    async with hub.bus.subscribe("approvals") as events:
        waiting = asyncio.create_task(hub.budgets.admit(agent, model="m", estimate=Decimal("0.5")))
        await decide_next_request(hub, events, approve=False)
        with pytest.raises(BudgetExceededError, match="was denied; resets 2026-11-25T00:00:00Z"):
            await asyncio.wait_for(waiting, timeout=30)

    with pytest.raises(BudgetExceededError, match="was denied"):
        await hub.budgets.admit(agent, model="m", estimate=Decimal("0.5"))
    account = await hub.identity.default_account()
    [state] = await hub.budgets.states(account.id)
    assert ("exceeded", Decimal(0)) == (state.state, state.reserved)


async def test_an_ask_budget_needs_a_workflow_of_the_active_policy(hub: Hub) -> None:
    from hub.errors import ValidationError

    with pytest.raises(ValidationError, match="finance"):
        await add(hub, soft_limit=Decimal("1"), on_soft=SoftAction.ASK, approval_workflow="finance")
    with pytest.raises(ValidationError, match="soft limit must not be above"):
        await add(hub, soft_limit=Decimal("2"), hard_limit=Decimal("1"))
    with pytest.raises(ValidationError, match="at most"):
        await add(hub, hard_limit=Decimal("1e12"))
    with pytest.raises(ValidationError, match="flow name"):
        await add(hub, scope=BudgetScope.FLOW, hard_limit=Decimal("1"))


async def test_ask_expired_refuses_and_the_next_request_asks_again(hub: Hub) -> None:
    agent = await ask_budget(hub)
    account = await hub.identity.default_account()

    async with hub.bus.subscribe("approvals") as events:
        waiting = asyncio.create_task(hub.budgets.admit(agent, model="m", estimate=Decimal("0.5")))
        first = await asyncio.wait_for(anext(events), timeout=30)
        assert isinstance(first, ApprovalRequested)
        assert isinstance(hub.clock, FrozenClock)
        hub.clock.advance(301)  # past the workflow's timeout: denied by "system"
        await hub.approvals.expire(account.id, first.request_id)
        with pytest.raises(BudgetExceededError, match=r"was not decided \(timed out\)"):
            await asyncio.wait_for(waiting, timeout=30)

        again = asyncio.create_task(hub.budgets.admit(agent, model="m", estimate=Decimal("0.5")))
        second = await asyncio.wait_for(anext(events), timeout=30)
        while not isinstance(second, ApprovalRequested):  # the first one's decided event
            second = await asyncio.wait_for(anext(events), timeout=30)
        assert second.request_id != first.request_id
        await hub.approvals.cancel(account.id, second.request_id, actor="t", reason="test over")
        with pytest.raises(BudgetExceededError):
            await asyncio.wait_for(again, timeout=30)


async def test_ask_fails_closed_when_the_workflow_left_the_policy(hub: Hub) -> None:
    agent = await ask_budget(hub)
    account = await hub.identity.default_account()
    await hub.policies.apply(account.id, POLICY.replace("finance", "legal"), actor="test")

    with pytest.raises(
        BudgetExceededError, match='asks workflow "finance", which the active policy'
    ):
        await hub.budgets.admit(agent, model="m", estimate=Decimal("0.5"))
    assert [] == list(await hub.approvals.list(account.id))


AI_POLICY = """
version: "1.0"
metadata: {name: budgets reviewed by a model}
approval_workflows:
  - name: finance
    timeout_seconds: 300
    approvers: ["role:admin"]
    approval_type: ai
    ai: {model: gpt-4o-mini, fallback: deny}
tools: []
"""


async def test_an_ask_denied_by_the_ai_fallback_is_a_denial_not_a_timeout(hub: Hub) -> None:
    # No provider serves the reviewer's model: the review fails and its fallback (deny) ends the
    # request as "system", like the deadline does; it is still a denial for the whole period.
    agent = await ask_budget(hub, policy=AI_POLICY)
    with pytest.raises(BudgetExceededError, match="was denied; resets 2026-11-25T00:00:00Z"):
        await asyncio.wait_for(
            hub.budgets.admit(agent, model="m", estimate=Decimal("0.5")), timeout=30
        )
    account = await hub.identity.default_account()
    [request] = await hub.approvals.list(account.id)
    assert ("denied", "system") == (request.status.value, request.decided_by)
    with pytest.raises(BudgetExceededError, match="was denied"):
        await hub.budgets.admit(agent, model="m", estimate=Decimal("0.5"))
    assert 1 == len(await hub.approvals.list(account.id))  # not asked again this period
