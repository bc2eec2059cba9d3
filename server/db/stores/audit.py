"""The hash-chained audit log in SQL.

Appends are group-committed: callers queue their drafts and one writer task turns everything
queued into one transaction, so twenty concurrent tool calls cost one commit, not twenty. The
writer runs apart from the callers, so a caller that is cancelled (an agent that went away)
still gets its event written.

A transaction makes sure each account's head row exists (seq 0, genesis hash), reads and locks
it (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the transaction already holds the write
lock, see ``_base``), chains the drafts after it, inserts the events and moves the head with a
compare-and-set. The head this process wrote last is remembered, so the next transaction skips
the read. On PostgreSQL the head is moved first: when another process (a replica) appended
meanwhile, that compare-and-set matches nothing and the transaction reads the locked head and
chains after it instead, with no rollback (replicas that take turns appending, as a decision
and the call it wakes do, would otherwise roll back every other append). The SQLite writer
inserts first; there a collision rolls the transaction back. Either way a transaction that
still fails is retried from a fresh head a bounded number of times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.audit import GENESIS_HASH, chain
from hub.errors import ConflictError, StorageError
from hub.ports import AuditQuery
from hub.records import AuditDraft, AuditEvent
from hub.store_rules import aware_utc, check_audit_query
from server.db import tables as t
from server.db.stores._base import Database, SqlStore, to_values
from server.db.stores._sqlite_audit import SqliteAuditWriter

MAX_APPEND_ATTEMPTS = 5
MAX_BATCH = 500  # drafts per transaction

Head = tuple[int, str]  # (seq, hash)
Pending = tuple[AuditDraft, "asyncio.Future[AuditEvent]"]


class SqlAuditStore(SqlStore):
    def __init__(self, db: Database, *, sqlite_writer: SqliteAuditWriter | None = None) -> None:
        super().__init__(db)
        self._sqlite = sqlite_writer  # a SQLite file: appends in one thread hop
        self._queue: list[Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self._heads: dict[str, Head] = {}  # account -> the head this process wrote last

    async def append(self, draft: AuditDraft) -> AuditEvent:
        aware_utc(draft.at, "audit event time")
        future: asyncio.Future[AuditEvent] = asyncio.get_running_loop().create_future()
        # Retrieve the outcome even when the caller is gone, so asyncio never logs it as lost.
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._queue.append((draft, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="preloop-audit-writer")
        return await asyncio.shield(future)

    async def flush(self) -> None:
        """Wait until every queued draft is written (closing the store calls this)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def close(self) -> None:
        await self.flush()
        if self._sqlite is not None:
            await self._sqlite.close()

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                events = await self._append_with_retries([draft for draft, _ in batch])
            except Exception:
                for draft, future in batch:
                    await self._append_alone(draft, future)
                continue
            for (_, future), event in zip(batch, events, strict=True):
                if not future.done():
                    future.set_result(event)

    async def _append_alone(self, draft: AuditDraft, future: asyncio.Future[AuditEvent]) -> None:
        try:
            (event,) = await self._append_with_retries([draft])
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(event)

    async def _append_with_retries(self, drafts: list[AuditDraft]) -> list[AuditEvent]:
        for _attempt in range(MAX_APPEND_ATTEMPTS):
            try:
                return await self._append_once(drafts)
            except ConflictError:
                # another process appended: chain after the head as stored now
                for draft in drafts:
                    self._heads.pop(draft.account_id, None)
        accounts = sorted({draft.account_id for draft in drafts})
        raise StorageError(
            f"audit append for account(s) {', '.join(map(repr, accounts))} collided "
            f"{MAX_APPEND_ATTEMPTS} times with concurrent appends"
        )

    async def _append_once(self, drafts: list[AuditDraft]) -> list[AuditEvent]:
        if self._sqlite is not None:
            written, new_heads = await self._sqlite.append(drafts, dict(self._heads))
            self._heads.update(new_heads)
            return written
        by_account: dict[str, list[int]] = {}
        for index, draft in enumerate(drafts):
            by_account.setdefault(draft.account_id, []).append(index)
        events: list[AuditEvent | None] = [None] * len(drafts)
        heads: dict[str, Head] = {}
        async with self._db.write(
            conflict="a concurrent audit append took this seq",
            missing=f"account {drafts[0].account_id!r} does not exist",
        ) as conn:
            for account_id, indexes in by_account.items():
                chained = await self._move_head(conn, account_id, [drafts[i] for i in indexes])
                for index, event in zip(indexes, chained, strict=True):
                    events[index] = event
                await conn.execute(insert(t.audit_events), [to_values(e) for e in chained])
                heads[account_id] = (chained[-1].seq, chained[-1].hash)
        self._heads.update(heads)
        return [event for event in events if event is not None]

    async def _move_head(
        self, conn: AsyncConnection, account_id: str, drafts: list[AuditDraft]
    ) -> list[AuditEvent]:
        """Chains ``drafts`` after the account's head and moves the head past them, holding
        its row lock until the transaction ends (so the inserts that follow cannot collide).

        First after the head this process wrote last, with a compare-and-set; when another
        process appended since, the set matches nothing and the head is read (locked) and
        chained after instead, in the same transaction: a stale guess costs one read, not a
        rolled-back transaction and a retry."""
        known = self._heads.get(account_id)
        if known is not None:
            events = _chain_after(known, drafts)
            if await self._set_head(conn, account_id, known, events[-1]):
                return events
        start = await self._read_head(conn, account_id)
        events = _chain_after(start, drafts)
        if not await self._set_head(conn, account_id, start, events[-1]):
            raise ConflictError("the audit head moved")  # rolls back; retried from a fresh head
        return events

    @staticmethod
    async def _set_head(
        conn: AsyncConnection, account_id: str, start: Head, last: AuditEvent
    ) -> bool:
        moved = await conn.execute(
            update(t.audit_heads)
            .where(t.audit_heads.c.account_id == account_id, t.audit_heads.c.seq == start[0])
            .values(seq=last.seq, hash=last.hash)
        )
        return bool(moved.rowcount == 1)

    async def _read_head(self, conn: AsyncConnection, account_id: str) -> Head:
        heads = t.audit_heads
        genesis = {"account_id": account_id, "seq": 0, "hash": GENESIS_HASH}
        await conn.execute(self._db.insert_missing(heads, genesis, key=("account_id",)))
        row = (
            await conn.execute(
                select(heads.c.seq, heads.c.hash)
                .where(heads.c.account_id == account_id)
                .with_for_update()
            )
        ).one()
        return (row.seq, row.hash)

    async def query(self, account_id: str, query: AuditQuery) -> Sequence[AuditEvent]:
        check_audit_query(query)
        c = t.audit_events.c
        stmt = select(t.audit_events).where(c.account_id == account_id, c.seq > query.after_seq)
        if query.kind is not None and query.kind.endswith("."):
            # substr, not LIKE: LIKE ignores case on SQLite and treats "_" as a wildcard.
            stmt = stmt.where(func.substr(c.kind, 1, len(query.kind)) == query.kind)
        elif query.kind is not None:
            stmt = stmt.where(c.kind == query.kind)
        if query.before_seq is not None:
            stmt = stmt.where(c.seq < query.before_seq)
        if query.actor is not None:
            stmt = stmt.where(c.actor == query.actor)
        if query.since is not None:
            stmt = stmt.where(c.at >= query.since)
        if query.until is not None:
            stmt = stmt.where(c.at < query.until)
        for key, value in query.match.items():
            stmt = stmt.where(self._data_equals(key, value))
        if query.text is not None:
            # instr, not LIKE: "%" and "_" in the text are themselves; lower() is ASCII-only
            # on SQLite, so both backends ignore ASCII case alone (non-ASCII data is stored
            # \u-escaped by SQLAlchemy's JSON type anyway).
            needle = query.text.lower()
            haystacks = (c.kind, c.actor, cast(c.data, String()))
            find = func.strpos if self._db.dialect == "postgresql" else func.instr
            stmt = stmt.where(or_(*(find(func.lower(h), needle) > 0 for h in haystacks)))
        order = c.seq.desc() if query.newest_first else c.seq.asc()
        return await self._all(stmt.order_by(order).limit(query.limit), AuditEvent)

    def _data_equals(self, key: str, value: Any) -> ColumnElement[bool]:
        """JSON equality of ``data[key]`` and a scalar, the same on both databases."""
        data = t.audit_events.c.data
        if self._db.dialect == "postgresql":
            expected = cast(literal(msgspec.json.encode(value).decode(), String()), JSONB)
            return cast(data, JSONB).op("->")(key) == expected
        path = f'$."{key}"'  # check_audit_query refused keys with quotes
        kind = func.json_type(data, path)
        extracted = func.json_extract(data, path)
        if value is None:
            return kind == "null"
        if isinstance(value, bool):
            return kind == ("true" if value else "false")
        if isinstance(value, str):
            return and_(kind == "text", extracted == value)
        return and_(kind.in_(("integer", "real")), extracted == value)

    async def all(self, account_id: str) -> Sequence[AuditEvent]:
        c = t.audit_events.c
        stmt = select(t.audit_events).where(c.account_id == account_id).order_by(c.seq)
        return await self._all(stmt, AuditEvent)

    async def head(self, account_id: str) -> tuple[int, str] | None:
        heads = t.audit_heads
        stmt = select(heads.c.seq, heads.c.hash).where(heads.c.account_id == account_id)
        async with self._db.read() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None or row.seq == 0 else (row.seq, row.hash)


def _chain_after(head: Head, drafts: Sequence[AuditDraft]) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    seq, prev_hash = head
    for draft in drafts:
        event = chain(draft, seq=seq + 1, prev_hash=prev_hash)
        events.append(event)
        seq, prev_hash = event.seq, event.hash
    return events
