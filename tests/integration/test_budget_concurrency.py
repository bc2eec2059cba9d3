"""Budgets hold under concurrency: 200 requests admitted at once against a hard limit, on
SQLite and PostgreSQL, and from two processes' worth of services on one PostgreSQL database.
Reservations are what keep them apart, so the sum reserved and spent never passes the limit
(the estimate is an upper bound of each request's cost)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from hub.clock import FrozenClock
from hub.model_gateway.budgets import MAX_LIMIT, MAX_RESERVATION
from hub.model_gateway.ports import Admission, BudgetExceededError
from hub.model_gateway.records import Attribution, BudgetPeriod, BudgetScope
from server.bootstrap import open_hub
from server.db import open_storage
from server.hub_services import Hub
from tests.integration.conftest import make_settings

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
LIMIT = Decimal("10")
ESTIMATE = Decimal("0.30")
REQUESTS = 200


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


async def hub_on(url: str, tmp_path: Path) -> Hub:
    storage = await open_storage(url, migrate=False)
    return await open_hub(make_settings(tmp_path), clock=FrozenClock(NOW), storage=storage)


@pytest.fixture
async def hub(database_url: str, tmp_path: Path) -> AsyncIterator[Hub]:
    opened = await hub_on(database_url, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


async def agent_of(hub: Hub) -> Attribution:
    account = await hub.identity.default_account()
    await hub.budgets.add(
        account.id,
        name="team-day",
        scope=BudgetScope.ACCOUNT,
        period=BudgetPeriod.DAY,
        hard_limit=LIMIT,
        actor="test",
    )
    return Attribution(account_id=account.id, api_key_id="key_a", principal="agent")


async def try_admit(hub: Hub, who: Attribution) -> Admission | None:
    try:
        return await hub.budgets.admit(who, model="gpt-4o", estimate=ESTIMATE)
    except BudgetExceededError:
        return None


async def test_200_concurrent_admits_never_pass_the_hard_limit(hub: Hub) -> None:
    who = await agent_of(hub)

    outcomes = await asyncio.wait_for(
        asyncio.gather(*(try_admit(hub, who) for _ in range(REQUESTS))), timeout=120
    )

    admitted = [a for a in outcomes if a is not None]
    assert 33 == len(admitted)  # floor(10 / 0.30): not one more
    [state] = await hub.budgets.states(who.account_id)
    assert (Decimal(0), Decimal("9.9")) == (state.spent, state.reserved)
    await asyncio.gather(*(hub.budgets.settle(a, ESTIMATE) for a in admitted))
    [state] = await hub.budgets.states(who.account_id)
    assert (Decimal("9.9"), Decimal(0), "ok") == (state.spent, state.reserved, state.state)


async def test_admits_and_settles_interleaved_stay_within_the_limit(hub: Hub) -> None:
    who = await agent_of(hub)
    actual = Decimal("0.10")

    async def request() -> bool:
        admission = await try_admit(hub, who)
        if admission is None:
            return False
        await hub.budgets.settle(admission, actual)
        return True

    results = await asyncio.wait_for(
        asyncio.gather(*(request() for _ in range(REQUESTS))), timeout=120
    )

    [state] = await hub.budgets.states(who.account_id)
    assert Decimal(0) == state.reserved
    assert actual * sum(results) == state.spent
    assert state.spent <= LIMIT
    assert sum(results) >= 33  # at least what fits at the estimate


@pytest.mark.postgres
async def test_two_services_on_one_postgres_database_share_the_limit(
    postgres_url: str, tmp_path: Path
) -> None:
    first = await hub_on(postgres_url, tmp_path / "one")
    second = await hub_on(postgres_url, tmp_path / "two")
    try:
        who = await agent_of(first)

        outcomes = await asyncio.wait_for(
            asyncio.gather(*(try_admit(first if i % 2 else second, who) for i in range(REQUESTS))),
            timeout=120,
        )

        assert 33 == sum(1 for a in outcomes if a is not None)
        assert any(a is not None for a in outcomes[0::2])  # the second hub admitted some
        [state] = await second.budgets.states(who.account_id)
        assert Decimal("9.9") == state.reserved
    finally:
        await first.close()
        await second.close()


async def test_an_absurd_estimate_is_reserved_capped_and_still_refused_by_a_hard_limit(
    hub: Hub,
) -> None:
    """A request's max tokens times its choices times a price set at the maximum can be worth
    more nano-dollars than a 64-bit column holds: the reservation is capped just above every
    hard limit, so it is stored, and refused by any hard budget."""
    account = await hub.identity.default_account()
    who = Attribution(account_id=account.id, api_key_id="key_a", principal="agent")
    absurd = Decimal(2**31 - 1) * 128 * Decimal(1_000_000) / 1_000_000  # $1 a token
    await hub.budgets.add(
        account.id,
        name="watch",
        scope=BudgetScope.ACCOUNT,
        period=BudgetPeriod.DAY,
        soft_limit=Decimal("1"),
        actor="test",
    )

    admission = await hub.budgets.admit(who, model="gpt-4o", estimate=absurd)

    assert MAX_RESERVATION == admission.reserved
    await hub.budgets.settle(admission, Decimal(0))
    await hub.budgets.add(
        account.id,
        name="cap",
        scope=BudgetScope.ACCOUNT,
        period=BudgetPeriod.DAY,
        hard_limit=MAX_LIMIT,
        actor="test",
    )
    with pytest.raises(BudgetExceededError, match='Budget "cap"'):
        await hub.budgets.admit(who, model="gpt-4o", estimate=absurd)
