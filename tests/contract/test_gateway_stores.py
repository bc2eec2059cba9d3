"""The gateway's stores (usage ledger, budgets, prices) on every backend."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from hub.errors import ConflictError, NotFoundError, ValidationError
from hub.model_gateway.records import BudgetPeriod, BudgetScope, ModelPrice, SoftAction, to_nanos
from hub.ports import BudgetClaim, Storage, UsageQuery

from .gateway_records import budget, usage
from .records import T0, at, new_account

DAY = T0.replace(hour=0)


# --- usage ----------------------------------------------------------------------------------
async def test_usage_round_trips_with_exact_cost(storage: Storage) -> None:
    account = await new_account(storage)
    record = usage(account, cost=Decimal("0.000000123"), stream=True, error=None)

    await storage.usage.add_many([record])

    assert [record] == list(await storage.usage.list(account, UsageQuery()))


async def test_usage_add_many_is_all_or_nothing(storage: Storage) -> None:
    account = await new_account(storage)
    first = usage(account)
    await storage.usage.add_many([first])

    with pytest.raises(ConflictError):
        await storage.usage.add_many([usage(account, seconds=1), first])
    with pytest.raises(NotFoundError):
        await storage.usage.add_many([usage("acct_missing")])

    assert [first.id] == [r.id for r in await storage.usage.list(account, UsageQuery())]


async def test_usage_list_filters_newest_first_and_pages(storage: Storage) -> None:
    account, other = await new_account(storage), await new_account(storage)
    records = [
        usage(account, seconds=1, flow="triage", execution_id="fx_1"),
        usage(account, seconds=2, flow="triage", execution_id="fx_2", model="claude-sonnet-4"),
        usage(account, seconds=3, api_key_id="key_b"),
        usage(other, seconds=4),
    ]
    await storage.usage.add_many(records)

    def ids(found: object) -> list[str]:
        return [r.id for r in found]  # type: ignore[attr-defined]

    newest = await storage.usage.list(account, UsageQuery())
    assert [records[2].id, records[1].id, records[0].id] == ids(newest)
    triage = await storage.usage.list(account, UsageQuery(flow="triage"))
    assert [records[1].id, records[0].id] == ids(triage)
    assert [records[0].id] == ids(
        await storage.usage.list(account, UsageQuery(execution_id="fx_1"))
    )
    assert [records[2].id] == ids(await storage.usage.list(account, UsageQuery(api_key_id="key_b")))
    sonnet = await storage.usage.list(account, UsageQuery(model="claude-sonnet-4"))
    assert [records[1].id] == ids(sonnet)
    window = await storage.usage.list(account, UsageQuery(since=at(2), until=at(3)))
    assert [records[1].id] == ids(window)
    page = await storage.usage.list(account, UsageQuery(limit=1))
    after = await storage.usage.list(
        account, UsageQuery(before=(page[0].created_at, page[0].id), limit=5)
    )
    assert [records[1].id, records[0].id] == ids(after)
    with pytest.raises(ValidationError):
        await storage.usage.list(account, UsageQuery(limit=-1))


async def test_usage_summary_groups_with_exact_sums(storage: Storage) -> None:
    account = await new_account(storage)
    tenth = Decimal("0.1")
    await storage.usage.add_many(
        [
            usage(account, seconds=0, cost=tenth, flow="a", input_tokens=5, cached_tokens=2),
            usage(account, seconds=60, cost=tenth, flow="a", model="gpt-4.1"),
            usage(account, seconds=86400, cost=Decimal("0.2"), flow=None, api_key_id="key_b"),
        ]
    )

    by_day = await storage.usage.summary(account, group_by="day")
    assert [("2026-01-01", 2, Decimal("0.2")), ("2026-01-02", 1, Decimal("0.2"))] == [
        (g.key, g.requests, g.cost) for g in by_day
    ]
    assert 105 == by_day[0].input_tokens
    assert 2 == by_day[0].cached_tokens
    by_flow = await storage.usage.summary(account, group_by="flow")
    assert [("a", 2), (None, 1)] == [(g.key, g.requests) for g in by_flow]
    by_model = await storage.usage.summary(account, group_by="model", flow="a")
    assert ["gpt-4.1", "gpt-4o-mini"] == [g.key for g in by_model]
    by_key = await storage.usage.summary(account, group_by="api_key", since=at(1))
    assert [("key_a", 1), ("key_b", 1)] == [(g.key, g.requests) for g in by_key]
    with pytest.raises(ValidationError):
        await storage.usage.summary(account, group_by="weekday")


async def test_usage_sessions_one_row_per_execution(storage: Storage) -> None:
    account = await new_account(storage)
    await storage.usage.add_many(
        [
            usage(account, seconds=1, flow="nightly", execution_id="fx_1", principal="flow:n"),
            usage(
                account,
                seconds=5,
                flow="nightly",
                execution_id="fx_1",
                principal="flow:n",
                outcome="error",
                status=502,
                cost=Decimal("0"),
            ),
            usage(account, seconds=3, flow="other", execution_id="fx_2"),
            usage(account, seconds=9),  # no execution: not a session
        ]
    )

    sessions = await storage.usage.sessions(account)
    assert ["fx_1", "fx_2"] == [s.execution_id for s in sessions]
    first = sessions[0]
    assert (2, 1, at(1), at(5), "nightly", "flow:n") == (
        first.requests,
        first.errors,
        first.first_seen,
        first.last_seen,
        first.flow,
        first.principal,
    )
    assert Decimal("0.000021") == first.cost
    assert ["fx_2"] == [s.execution_id for s in await storage.usage.sessions(account, flow="other")]
    assert ["fx_1"] == [
        s.execution_id for s in await storage.usage.sessions(account, principal="flow:n")
    ]
    assert ["fx_1"] == [s.execution_id for s in await storage.usage.sessions(account, since=at(4))]
    one = await storage.usage.sessions(account, execution_id="fx_2")
    assert [("fx_2", 1)] == [(s.execution_id, s.requests) for s in one]


# --- budgets --------------------------------------------------------------------------------
async def test_budgets_add_get_list_delete(storage: Storage) -> None:
    account = await new_account(storage)
    day = budget(
        account,
        "b-day",
        soft_limit=Decimal("8.10"),
        on_soft=SoftAction.ASK,
        approval_workflow="finance",
    )
    total = budget(account, "a-total", hard_limit=None)
    await storage.budgets.add(day)
    await storage.budgets.add(total)

    got = await storage.budgets.get(account, day.id)
    assert day == got
    assert got is not None
    assert (BudgetScope.ACCOUNT, BudgetPeriod.DAY, SoftAction.ASK) == (
        got.scope,
        got.period,
        got.on_soft,
    )
    assert all(
        type(v) is not str for v in (got.scope, got.period, got.on_soft)
    )  # enums, not their text
    assert total == await storage.budgets.get_by_name(account, "a-total")
    assert ["a-total", "b-day"] == [b.name for b in await storage.budgets.list(account)]
    with pytest.raises(ConflictError):
        await storage.budgets.add(budget(account, "b-day"))
    with pytest.raises(NotFoundError):
        await storage.budgets.add(budget("acct_missing"))

    await storage.budgets.delete(account, day.id)
    assert await storage.budgets.get(account, day.id) is None
    with pytest.raises(NotFoundError):
        await storage.budgets.delete(account, day.id)
    other = await new_account(storage)
    with pytest.raises(NotFoundError):
        await storage.budgets.delete(other, total.id)


async def test_reserve_counts_until_the_hard_limit_then_settles(storage: Storage) -> None:
    account = await new_account(storage)
    b = budget(account)
    await storage.budgets.add(b)
    claim = BudgetClaim(budget_id=b.id, period_start=DAY, hard_limit_nanos=to_nanos(Decimal(10)))
    later = at(900)

    ok = await storage.budgets.reserve(
        "res_1", [claim], amount_nanos=to_nanos(Decimal(6)), at=at(), expires_at=later
    )
    assert ok.refused is None
    assert to_nanos(Decimal(6)) == ok.counters[0].reserved_nanos
    refused = await storage.budgets.reserve(
        "res_2", [claim], amount_nanos=to_nanos(Decimal(5)), at=at(), expires_at=later
    )
    assert b.id == refused.refused
    assert to_nanos(Decimal(6)) == refused.counters[0].reserved_nanos

    await storage.budgets.settle("res_1", actual_nanos=to_nanos(Decimal("1.5")))
    await storage.budgets.settle("res_1", actual_nanos=to_nanos(Decimal("1.5")))  # no-op
    [counter] = await storage.budgets.counters([(b.id, DAY)], at=at())
    assert (to_nanos(Decimal("1.5")), 0) == (counter.spent_nanos, counter.reserved_nanos)

    again = await storage.budgets.reserve(
        "res_3", [claim], amount_nanos=to_nanos(Decimal(5)), at=at(), expires_at=later
    )
    assert again.refused is None


async def test_an_expired_reservation_stops_counting_but_settles(storage: Storage) -> None:
    account = await new_account(storage)
    b = budget(account)
    await storage.budgets.add(b)
    claim = BudgetClaim(budget_id=b.id, period_start=DAY, hard_limit_nanos=to_nanos(Decimal(10)))
    await storage.budgets.reserve(
        "res_1", [claim], amount_nanos=to_nanos(Decimal(9)), at=at(), expires_at=at(60)
    )

    [before] = await storage.budgets.counters([(b.id, DAY)], at=at(59))
    [after] = await storage.budgets.counters([(b.id, DAY)], at=at(61))
    assert to_nanos(Decimal(9)) == before.reserved_nanos
    assert 0 == after.reserved_nanos
    ok = await storage.budgets.reserve(
        "res_2", [claim], amount_nanos=to_nanos(Decimal(9)), at=at(61), expires_at=at(120)
    )
    assert ok.refused is None

    await storage.budgets.settle("res_1", actual_nanos=7)
    [counter] = await storage.budgets.counters([(b.id, DAY)], at=at(61))
    assert 7 == counter.spent_nanos


async def test_one_reservation_counts_against_every_budget_or_none(storage: Storage) -> None:
    account = await new_account(storage)
    wide, narrow = budget(account, "wide"), budget(account, "narrow")
    await storage.budgets.add(wide)
    await storage.budgets.add(narrow)
    claims = [
        BudgetClaim(budget_id=wide.id, period_start=DAY, hard_limit_nanos=100),
        BudgetClaim(budget_id=narrow.id, period_start=DAY, hard_limit_nanos=10),
    ]

    refused = await storage.budgets.reserve(
        "r1", claims, amount_nanos=11, at=at(), expires_at=at(60)
    )
    assert narrow.id == refused.refused
    ok = await storage.budgets.reserve("r2", claims, amount_nanos=10, at=at(), expires_at=at(60))
    assert [10, 10] == [c.reserved_nanos for c in ok.counters]
    counters = await storage.budgets.counters([(wide.id, DAY), (narrow.id, DAY)], at=at())
    assert [10, 10] == [c.reserved_nanos for c in counters]
    with pytest.raises(NotFoundError):
        await storage.budgets.reserve(
            "r3",
            [BudgetClaim(budget_id="bud_missing", period_start=DAY)],
            amount_nanos=1,
            at=at(),
            expires_at=at(60),
        )


async def test_concurrent_reservations_never_pass_the_hard_limit(storage: Storage) -> None:
    account = await new_account(storage)
    b = budget(account)
    await storage.budgets.add(b)
    claim = BudgetClaim(budget_id=b.id, period_start=DAY, hard_limit_nanos=1000)

    outcomes = await asyncio.gather(
        *(
            storage.budgets.reserve(f"r{i}", [claim], amount_nanos=100, at=at(), expires_at=at(60))
            for i in range(25)
        )
    )

    assert 10 == sum(1 for o in outcomes if o.refused is None)
    [counter] = await storage.budgets.counters([(b.id, DAY)], at=at())
    assert 1000 == counter.reserved_nanos


async def test_soft_notice_and_approval_claims_are_once_per_period(storage: Storage) -> None:
    account = await new_account(storage)
    b = budget(account)
    await storage.budgets.add(b)
    tomorrow = DAY.replace(day=2)

    assert await storage.budgets.mark_soft_notified(b.id, DAY) is True
    assert await storage.budgets.mark_soft_notified(b.id, DAY) is False
    assert await storage.budgets.mark_soft_notified(b.id, tomorrow) is True

    first = await storage.budgets.claim_approval(b.id, DAY, "apr_1")
    second = await storage.budgets.claim_approval(b.id, DAY, "apr_2")
    assert ("apr_1", "pending") == (first.approval_id, first.approval_status)
    assert ("apr_1", "pending") == (second.approval_id, second.approval_status)
    await storage.budgets.finish_approval(b.id, DAY, "apr_2", "denied")  # not its approval
    await storage.budgets.finish_approval(b.id, DAY, "apr_1", None)  # expired: ask again
    third = await storage.budgets.claim_approval(b.id, DAY, "apr_3")
    assert ("apr_3", "pending") == (third.approval_id, third.approval_status)
    await storage.budgets.finish_approval(b.id, DAY, "apr_3", "approved")
    [counter] = await storage.budgets.counters([(b.id, DAY)], at=at())
    assert ("apr_3", "approved", True) == (
        counter.approval_id,
        counter.approval_status,
        counter.soft_notified,
    )
    with pytest.raises(NotFoundError):
        await storage.budgets.mark_soft_notified("bud_missing", DAY)


async def test_deleting_a_budget_drops_its_counters(storage: Storage) -> None:
    account = await new_account(storage)
    b = budget(account)
    await storage.budgets.add(b)
    claim = BudgetClaim(budget_id=b.id, period_start=DAY)
    await storage.budgets.reserve("r1", [claim], amount_nanos=5, at=at(), expires_at=at(60))

    await storage.budgets.delete(account, b.id)
    await storage.budgets.settle("r1", actual_nanos=5)  # its budget is gone: nothing to do

    [counter] = await storage.budgets.counters([(b.id, DAY)], at=at())
    assert (0, 0) == (counter.spent_nanos, counter.reserved_nanos)


# --- prices ---------------------------------------------------------------------------------
async def test_model_prices_set_list_delete(storage: Storage) -> None:
    account, other = await new_account(storage), await new_account(storage)
    cheap = ModelPrice(model="gpt-4o*", input=Decimal("1.25"), output=Decimal("5"))
    exact = ModelPrice(
        model="gpt-4o", input=Decimal("2"), output=Decimal("8"), cached=Decimal("0.000001")
    )

    await storage.model_prices.set(account, cheap)
    await storage.model_prices.set(account, exact)
    replaced = ModelPrice(model="gpt-4o*", input=Decimal("1"), output=Decimal("4"))
    await storage.model_prices.set(account, replaced)

    assert [exact, replaced] == list(await storage.model_prices.list(account))
    assert [] == list(await storage.model_prices.list(other))
    await storage.model_prices.delete(account, "gpt-4o")
    assert [replaced] == list(await storage.model_prices.list(account))
    with pytest.raises(NotFoundError):
        await storage.model_prices.delete(account, "gpt-4o")
    with pytest.raises(NotFoundError):
        await storage.model_prices.set("acct_missing", cheap)
