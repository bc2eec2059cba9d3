"""Notification claims: the first claim of (account, request, channel, operation) wins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from hub.errors import NotFoundError
from hub.ports import Storage
from hub.records import NotificationClaim, NotificationOperation
from server.db import SqlStorage, make_engine

from .records import new_account

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def _claim(
    account: str,
    request: str = "apr_1",
    *,
    channel: str = "slack",
    operation: NotificationOperation = NotificationOperation.DELIVER,
    by: str = "replica-a",
) -> NotificationClaim:
    return NotificationClaim(
        account_id=account,
        request_id=request,
        channel=channel,
        operation=operation,
        claimed_at=T0,
        claimed_by=by,
    )


async def test_the_first_claimant_holds_the_claim_and_every_other_loses(
    storage: Storage,
) -> None:
    account = await new_account(storage, "acme")
    claims = storage.notification_claims

    assert await claims.claim(_claim(account, by="replica-a"))
    assert not await claims.claim(_claim(account, by="replica-b"))
    assert await claims.claim(_claim(account, by="replica-a"))  # a retry: still its own


async def test_each_request_channel_and_operation_is_claimed_separately(
    storage: Storage,
) -> None:
    account = await new_account(storage, "acme")
    other = await new_account(storage, "other")
    claims = storage.notification_claims
    assert await claims.claim(_claim(account))

    assert await claims.claim(_claim(account, "apr_2"))
    assert await claims.claim(_claim(account, channel="mattermost"))
    assert await claims.claim(_claim(account, operation=NotificationOperation.ESCALATE))
    assert await claims.claim(_claim(account, operation=NotificationOperation.SETTLE))
    assert await claims.claim(_claim(other))
    assert not await claims.claim(_claim(account, operation=NotificationOperation.SETTLE, by="b"))


async def test_a_claim_in_a_missing_account_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFoundError):
        await storage.notification_claims.claim(_claim("acct_missing"))


async def test_two_stores_on_one_database_racing_for_a_claim_have_one_winner(
    sql_url: str,
) -> None:
    first, second = SqlStorage(make_engine(sql_url)), SqlStorage(make_engine(sql_url))
    contenders = [
        (operation, name, store)
        for operation in NotificationOperation
        for _ in range(3)
        for name, store in (("first", first), ("second", second))
    ]
    try:
        account = await new_account(first, "acme")
        results = await asyncio.gather(
            *(
                store.notification_claims.claim(_claim(account, operation=op, by=name))
                for op, name, store in contenders
            )
        )
    finally:
        await first.close()
        await second.close()

    for operation in NotificationOperation:
        outcomes = [
            (name, won)
            for (op, name, _), won in zip(contenders, results, strict=True)
            if op is operation
        ]
        winners = {name for name, won in outcomes if won}
        assert 1 == len(winners), outcomes
        assert [won for name, won in outcomes if name in winners] == [True] * 3
