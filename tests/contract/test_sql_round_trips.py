"""PostgreSQL only: how many round trips the approval round's store calls make.

Every statement is a network round trip to PostgreSQL, and across replicas an approval's round
is mostly such waits (docs/performance.md): these counts are what the approval path was cut to
(docs/decisions/0072). Counted at asyncpg's calls that talk to the server; each call is
measured once its statements are prepared on the connection (the steady state).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from asyncpg.prepared_stmt import PreparedStatement

from hub.records import ApprovalStatus, SyncWait
from server.db import SqlStorage, make_engine

from .records import approval, at, draft, new_account, vote

pytestmark = pytest.mark.postgres


class RoundTrips:
    def __init__(self) -> None:
        self.count = 0

    async def of(self, call: Callable[[], Awaitable[Any]]) -> int:
        before = self.count
        await call()
        return self.count - before


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> RoundTrips:
    counter = RoundTrips()

    def counted(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            counter.count += 1
            return await method(*args, **kwargs)

        return call

    for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval", "prepare"):
        monkeypatch.setattr(asyncpg.Connection, name, counted(getattr(asyncpg.Connection, name)))
    for name in ("fetch", "fetchrow", "fetchval", "executemany"):
        monkeypatch.setattr(PreparedStatement, name, counted(getattr(PreparedStatement, name)))
    return counter


@pytest.fixture
async def storage(postgres_url: str) -> AsyncIterator[SqlStorage]:
    # One connection, so each call's statements are prepared on it by the warm-up call.
    opened = SqlStorage(make_engine(postgres_url, pool_size=1, max_overflow=0))
    try:
        yield opened
    finally:
        await opened.close()


async def test_reads_and_single_statement_writes_are_one_round_trip(
    storage: SqlStorage, round_trips: RoundTrips
) -> None:
    account_id = await new_account(storage)
    requests = [approval(account_id, status=ApprovalStatus.APPROVED) for _ in range(2)]
    for request in requests:
        await storage.approvals.add(request)
        await storage.sync_waits.add(
            SyncWait(account_id=account_id, request_id=request.id, instance_id="i", created_at=at())
        )
    warm, measured = requests

    async def round_of(request_id: str) -> list[int]:
        approvals, waits = storage.approvals, storage.sync_waits
        return [
            await round_trips.of(lambda: approvals.get(account_id, request_id)),
            await round_trips.of(lambda: waits.remove(account_id, request_id)),
            await round_trips.of(lambda: approvals.claim(account_id, request_id, at(1))),
            await round_trips.of(lambda: approvals.store_result(account_id, request_id, {})),
        ]

    await round_of(warm.id)
    assert [1, 1, 1, 1] == await round_of(measured.id)


async def test_an_audit_append_is_one_round_trip_after_this_process_and_two_after_another(
    postgres_url: str, storage: SqlStorage, round_trips: RoundTrips
) -> None:
    account_id = await new_account(storage)
    other = SqlStorage(make_engine(postgres_url))  # another replica
    try:
        for n in range(2):  # warm: both paths prepared
            await storage.audit.append(draft(account_id, n=n))
            await other.audit.append(draft(account_id, n=n))
        await storage.audit.append(draft(account_id, n=2))

        after_own = await round_trips.of(lambda: storage.audit.append(draft(account_id, n=3)))
        await other.audit.append(draft(account_id, n=4))
        after_other = await round_trips.of(lambda: storage.audit.append(draft(account_id, n=5)))
    finally:
        await other.close()

    assert (1, 2) == (after_own, after_other)


async def test_a_vote_is_one_transaction_of_four_statements(
    storage: SqlStorage, round_trips: RoundTrips
) -> None:
    account_id = await new_account(storage)
    warm, measured = approval(account_id), approval(account_id)
    for request in (warm, measured):
        await storage.approvals.add(request)
    await storage.approvals.cast_vote(vote(warm, "user_a"), required=1, decided_by="a")

    trips = await round_trips.of(
        lambda: storage.approvals.cast_vote(vote(measured, "user_a"), required=1, decided_by="a")
    )

    # BEGIN, lock the request, insert the vote, count the approvals, decide, COMMIT
    assert 6 == trips
