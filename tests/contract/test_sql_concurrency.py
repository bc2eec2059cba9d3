"""SQL only: two engines on one database (a server and a bot worker, say) stay consistent.

Each engine has its own pool and, on SQLite, its own in-process write lock, so only the
database's own locking (row locks; ``BEGIN IMMEDIATE`` with a busy timeout) keeps them apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest

from hub.audit_chain import verify_chain
from hub.errors import ConflictError
from hub.ports import VoteOutcome
from hub.records import ApprovalStatus
from server.db import SqlStorage, make_engine
from server.db.stores._base import Database
from server.db.stores.audit import SqlAuditStore

from .records import approval, at, draft, new_account, vote, workflow


@pytest.fixture
async def two_processes(sql_url: str) -> AsyncIterator[tuple[SqlStorage, SqlStorage]]:
    first, second = SqlStorage(make_engine(sql_url)), SqlStorage(make_engine(sql_url))
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_audit_appends_through_two_engines_form_one_chain(
    two_processes: tuple[SqlStorage, SqlStorage],
) -> None:
    first, second = two_processes
    account_id = await new_account(first)

    await asyncio.gather(
        *(store.audit.append(draft(account_id, n=n)) for n in range(15) for store in two_processes)
    )

    events = await second.audit.all(account_id)
    report = verify_chain(events, head=await first.audit.head(account_id))
    assert report.ok, report.problems
    assert [e.seq for e in events] == list(range(1, 31))


async def test_alternating_appends_chain_after_the_other_engines_events(
    two_processes: tuple[SqlStorage, SqlStorage],
) -> None:
    # Each store remembers the head it wrote last; here that head is always stale.
    first, second = two_processes
    account_id = await new_account(first)

    for n in range(6):
        await two_processes[n % 2].audit.append(draft(account_id, n=n))

    events = await first.audit.all(account_id)
    assert [e.seq for e in events] == list(range(1, 7))
    assert verify_chain(events, head=await second.audit.head(account_id)).ok


async def test_an_append_whose_caller_is_cancelled_is_still_written(
    sql_storage: SqlStorage,
) -> None:
    account_id = await new_account(sql_storage)
    appends = [
        asyncio.create_task(sql_storage.audit.append(draft(account_id, n=n))) for n in range(5)
    ]
    await asyncio.sleep(0)  # queued, not yet written
    appends[2].cancel()

    await sql_storage.audit.flush()

    events = await sql_storage.audit.all(account_id)
    assert [e.data for e in events] == [draft(account_id, n=n).data for n in range(5)]
    assert appends[2].cancelled()


async def test_transitions_through_two_engines_let_exactly_one_win(
    two_processes: tuple[SqlStorage, SqlStorage],
) -> None:
    first, second = two_processes
    account_id = await new_account(first)
    request = approval(account_id)
    await first.approvals.add(request)

    results = await asyncio.gather(
        *(
            store.approvals.transition(
                account_id,
                request.id,
                expected=ApprovalStatus.PENDING,
                new=new,
                decided_at=at(1),
                decided_by=f"decider-{n}",
                comment=None,
            )
            for n, (store, new) in enumerate(
                [
                    (first, ApprovalStatus.APPROVED),
                    (second, ApprovalStatus.DENIED),
                    (first, ApprovalStatus.DENIED),
                    (second, ApprovalStatus.APPROVED),
                ]
            )
        )
    )

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await second.approvals.get(account_id, request.id) == winners[0]


async def test_votes_through_two_engines_reach_the_quorum_exactly_once(
    two_processes: tuple[SqlStorage, SqlStorage],
) -> None:
    first, second = two_processes
    account_id = await new_account(first)
    request = approval(account_id, required_approvals=2)
    await first.approvals.add(request)

    results = await asyncio.gather(
        *(
            (first, second)[n % 2].approvals.cast_vote(
                vote(request, f"approver-{n}", created=n), required=2, decided_by=f"key-{n}"
            )
            for n in range(6)
        ),
        return_exceptions=True,
    )

    counted = [r for r in results if isinstance(r, VoteOutcome)]
    assert [False, True] == sorted(r.decided is not None for r in counted)
    assert all(isinstance(r, ConflictError) for r in results if not isinstance(r, VoteOutcome))
    recorded = await second.approvals.votes(account_id, request.id)
    assert 2 == len(recorded)
    stored = await second.approvals.get(account_id, request.id)
    assert stored is not None
    assert ApprovalStatus.APPROVED == stored.status


async def test_read_then_write_transactions_through_two_engines_both_succeed(
    two_processes: tuple[SqlStorage, SqlStorage],
) -> None:
    first, _ = two_processes
    account_id = await new_account(first)
    sets = [[workflow(account_id, f"set{n}-{m}") for m in range(3)] for n in range(6)]

    await asyncio.gather(
        *(
            two_processes[n % 2].workflows.replace_all(account_id, chosen)
            for n, chosen in enumerate(sets)
        )
    )

    final = list(await first.workflows.list(account_id))
    assert final in sets  # one whole set won; nothing was interleaved or lost to "locked"


async def test_sqlite_fast_appends_write_the_rows_sqlalchemy_writes(sqlite_url: str) -> None:
    # The SQLite store appends through its own sqlite3 connection; the rows must be exactly
    # what the SQLAlchemy path writes (the PostgreSQL path, and SQLite without a file).
    storage = SqlStorage(make_engine(sqlite_url))
    try:
        account_id = await new_account(storage)
        event = draft(account_id, seconds=1.5, tool="echo", args={"n": 1, "s": "é"})
        fast = await storage.audit.append(event)
        plain = SqlAuditStore(Database(storage.engine))  # no fast writer
        slow = await plain.append(msgspec.structs.replace(event, kind="tool.other"))
        async with storage.engine.connect() as conn:
            rows = (await conn.exec_driver_sql("SELECT * FROM audit_events ORDER BY seq")).all()
        events = await storage.audit.all(account_id)
        report = verify_chain(events, head=await storage.audit.head(account_id))
    finally:
        await storage.close()

    assert [fast.seq, slow.seq] == [1, 2]
    first, second = (dict(row._mapping) for row in rows)
    assert {k: v for k, v in first.items() if k not in ("seq", "kind", "hash", "prev_hash")} == {
        k: v for k, v in second.items() if k not in ("seq", "kind", "hash", "prev_hash")
    }
    assert second["prev_hash"] == first["hash"]
    assert report.ok, report.problems


async def test_escalations_through_two_engines_fire_exactly_once(
    two_processes: tuple[SqlStorage, SqlStorage],
) -> None:
    first, second = two_processes
    account_id = await new_account(first)
    request = approval(account_id, escalate_at=at(60), escalation_approvers=("team:leads",))
    await first.approvals.add(request)

    results = await asyncio.gather(
        *(
            store.approvals.escalate(
                account_id, request.id, at=at(61 + n), approvers=(f"user:{n}@example.com",)
            )
            for n, store in enumerate([first, second, first, second, first, second])
        )
    )

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await second.approvals.get(account_id, request.id) == winners[0]
    assert list(await first.approvals.escalation_due(at(1000))) == []
