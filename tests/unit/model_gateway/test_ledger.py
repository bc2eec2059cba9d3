"""The usage ledger: record without waiting, group commit, flush, retry after failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from hub.errors import StorageError
from hub.memory import InMemoryStorage
from hub.model_gateway.ledger import UsageLedger
from hub.model_gateway.records import UsageRecord
from hub.ports import UsageQuery
from hub.records import Account
from tests.contract.gateway_records import usage
from tests.contract.records import T0


class Flaky:
    """The in-memory usage store, failing the first ``failures`` writes; counts batches."""

    def __init__(self, storage: InMemoryStorage, failures: int = 0) -> None:
        self._storage = storage
        self.failures = failures
        self.batches: list[int] = []

    async def add_many(self, records: Sequence[UsageRecord]) -> None:
        if self.failures:
            self.failures -= 1
            raise StorageError("database error: connection reset")
        self.batches.append(len(records))
        await self._storage.usage.add_many(records)


async def storage_with_account() -> InMemoryStorage:
    storage = InMemoryStorage()
    await storage.accounts.add(Account(id="acct_1", name="one", created_at=T0))
    return storage


async def stored(storage: InMemoryStorage) -> list[str]:
    return sorted(r.id for r in await storage.usage.list("acct_1", UsageQuery(limit=10_000)))


async def test_records_are_group_committed_and_durable_after_flush() -> None:
    storage = await storage_with_account()
    store = Flaky(storage)
    ledger = UsageLedger(store, batch=50)
    records = [usage("acct_1", seconds=i) for i in range(120)]

    async with ledger.running():
        for record in records:
            ledger.record(record)  # no await: never blocks the request path
        await ledger.flush()
        assert sorted(r.id for r in records) == await stored(storage)
        assert 0 == ledger.queued

    assert 120 == sum(store.batches)
    assert len(store.batches) < 120  # shared commits
    assert max(store.batches) <= 50


async def test_a_failed_write_is_retried_and_logged_not_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = await storage_with_account()
    store = Flaky(storage, failures=2)
    ledger = UsageLedger(store, retry_seconds=0.01)
    record = usage("acct_1")

    with caplog.at_level(logging.WARNING, logger="preloop.gateway.ledger"):
        async with ledger.running():
            ledger.record(record)
            await asyncio.wait_for(ledger.flush(), timeout=30)

    assert [record.id] == await stored(storage)
    assert 2 == ledger.failures
    assert 2 == sum("retrying" in r.getMessage() for r in caplog.records)


async def test_close_flushes_what_is_queued() -> None:
    storage = await storage_with_account()
    ledger = UsageLedger(storage.usage)
    records = [usage("acct_1", seconds=i) for i in range(5)]

    for record in records:
        ledger.record(record)
    await ledger.close()

    assert sorted(r.id for r in records) == await stored(storage)


async def test_a_record_already_stored_or_of_a_gone_account_does_not_block_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = await storage_with_account()
    ledger = UsageLedger(storage.usage)
    already = usage("acct_1")
    await storage.usage.add_many([already])
    good = usage("acct_1", seconds=1)

    with caplog.at_level(logging.INFO, logger="preloop.gateway.ledger"):
        async with ledger.running():
            for record in (already, usage("acct_gone"), good):
                ledger.record(record)
            await asyncio.wait_for(ledger.flush(), timeout=30)

    assert sorted([already.id, good.id]) == await stored(storage)
    assert any("dropped" in r.getMessage() for r in caplog.records)
