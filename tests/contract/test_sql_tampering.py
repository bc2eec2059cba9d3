"""SQL only: whoever edits or deletes audit rows behind Preloop's back is found out."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import JSON, bindparam, text

from hub.audit_chain import event_hash, verify_chain
from hub.errors import StorageError
from server.db import SqlStorage
from server.db.tables import UtcDateTime

from .records import draft, new_account


async def _log_of_five(storage: SqlStorage) -> str:
    account_id = await new_account(storage)
    for n in range(1, 6):
        await storage.audit.append(draft(account_id, seconds=n, tool="read", n=n))
    return account_id


async def _raw(storage: SqlStorage, sql: str, **params: Any) -> int:
    statement = text(sql)
    if "data" in params:
        statement = statement.bindparams(bindparam("data", type_=JSON))
    if "at" in params:
        statement = statement.bindparams(bindparam("at", type_=UtcDateTime()))
    async with storage.engine.begin() as conn:
        return (await conn.execute(statement, params)).rowcount


async def _problems(storage: SqlStorage, account_id: str) -> tuple[str, ...]:
    events = await storage.audit.all(account_id)
    return verify_chain(events, head=await storage.audit.head(account_id)).problems


async def test_an_untouched_log_verifies(sql_storage: SqlStorage) -> None:
    account_id = await _log_of_five(sql_storage)

    assert await _problems(sql_storage, account_id) == ()


async def test_an_edited_row_is_detected(sql_storage: SqlStorage) -> None:
    account_id = await _log_of_five(sql_storage)

    changed = await _raw(
        sql_storage,
        "UPDATE audit_events SET data = :data WHERE account_id = :a AND seq = 3",
        data={"tool": "delete", "n": 3},
        a=account_id,
    )

    assert changed == 1
    assert await _problems(sql_storage, account_id) == (
        "event 3: content does not match its hash; it was edited",
    )


async def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(
    sql_storage: SqlStorage,
) -> None:
    account_id = await _log_of_five(sql_storage)
    third = (await sql_storage.audit.all(account_id))[2]
    forged = {"tool": "delete", "n": 3}
    forged_hash = event_hash(
        account_id=account_id,
        seq=3,
        kind=third.kind,
        actor=third.actor,
        at=third.at,
        data=forged,
        prev_hash=third.prev_hash,
    )

    await _raw(
        sql_storage,
        "UPDATE audit_events SET data = :data, hash = :h WHERE account_id = :a AND seq = 3",
        data=forged,
        h=forged_hash,
        a=account_id,
    )

    assert await _problems(sql_storage, account_id) == (
        "event 4: does not link to the event before it",
    )


async def test_a_deleted_middle_row_is_detected(sql_storage: SqlStorage) -> None:
    account_id = await _log_of_five(sql_storage)

    deleted = await _raw(
        sql_storage, "DELETE FROM audit_events WHERE account_id = :a AND seq = 3", a=account_id
    )

    assert deleted == 1
    problems = await _problems(sql_storage, account_id)
    assert problems[0].startswith("event 3: missing (next event found is 4)")


async def test_a_deleted_last_row_is_detected_through_the_head(sql_storage: SqlStorage) -> None:
    account_id = await _log_of_five(sql_storage)

    await _raw(
        sql_storage, "DELETE FROM audit_events WHERE account_id = :a AND seq = 5", a=account_id
    )

    events = await sql_storage.audit.all(account_id)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert await _problems(sql_storage, account_id) == (
        "chain head says 5 events but 4 were found; the newest rows were deleted",
    )


async def test_appends_continue_from_the_recorded_head(sql_storage: SqlStorage) -> None:
    account_id = await _log_of_five(sql_storage)
    head = await sql_storage.audit.head(account_id)

    sixth = await sql_storage.audit.append(draft(account_id, seconds=6))

    assert head is not None
    assert (6, head[1]) == (sixth.seq, sixth.prev_hash)
    assert await _problems(sql_storage, account_id) == ()


async def test_a_planted_next_row_makes_appends_fail_rather_than_fork(
    sql_storage: SqlStorage,
) -> None:
    account_id = await _log_of_five(sql_storage)
    fifth = (await sql_storage.audit.all(account_id))[-1]
    await _raw(
        sql_storage,
        "INSERT INTO audit_events (account_id, seq, kind, actor, at, data, prev_hash, hash) "
        "VALUES (:a, 6, 'forged', 'mallory', :at, :data, :p, :h)",
        a=account_id,
        at=fifth.at,
        data={},
        p=fifth.hash,
        h="0" * 64,
    )

    with pytest.raises(StorageError, match="collided"):
        await sql_storage.audit.append(draft(account_id, seconds=6))

    assert await sql_storage.audit.head(account_id) == (5, fifth.hash)
    assert [e.kind for e in await sql_storage.audit.all(account_id)][-1] == "forged"
