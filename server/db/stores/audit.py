"""The hash-chained audit log in SQL.

Appends are group-committed: callers queue their drafts and one writer task turns everything
queued into one transaction, so twenty concurrent tool calls cost one commit, not twenty. The
writer runs apart from the callers, so a caller that is cancelled (an agent that went away)
still gets its event written.

On PostgreSQL an account's drafts are chained after the head this process wrote last and
written by **one statement**, in autocommit: a compare-and-set ``UPDATE`` of the head (in a
``WITH``) and the ``INSERT`` of the events, which inserts nothing unless the head moved. One
round trip in the usual case, where a transaction took six (BEGIN, head, insert, COMMIT and
the pool's three-statement ping). When another process (a replica) appended meanwhile, which
happens at every decision that wakes a call held on another replica, nothing is written, and
the statement answers with the head as it saw it; it runs again after that head (two round
trips). The head is read instead for an account's first event (its row is created first: seq
0, the genesis hash) and when the statement saw no newer head. The head's row lock, held only
while the statement runs, keeps concurrent appends apart: of two statements after the same
head, the second re-checks the moved head and matches nothing. Each account is appended
apart, so a failure never leaves another account's events half-retried.

The SQLite writer (``_sqlite_audit``) makes sure each account's head row exists, chains after
it and inserts, in one transaction that holds the database's write lock; a collision with
another process rolls it back. Either way an append that still fails is retried from a fresh
head a bounded number of times.
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
    column,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from hub.audit_chain import GENESIS_HASH, chain
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
            if self._sqlite is not None:
                await self._write_batch(batch)
                continue
            by_account: dict[str, list[Pending]] = {}
            for pending in batch:
                by_account.setdefault(pending[0].account_id, []).append(pending)
            for pending_of_one in by_account.values():
                await self._write_batch(pending_of_one)

    async def _write_batch(self, batch: list[Pending]) -> None:
        """Write ``batch`` in one go, else each draft alone (one bad draft fails alone)."""
        if batch:
            try:
                events = await self._append_with_retries([draft for draft, _ in batch])
            except Exception:
                for draft, future in batch:
                    await self._append_alone(draft, future)
                return
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
        (account_id,) = {draft.account_id for draft in drafts}  # one account (``_drain``)
        if self._db.dialect != "postgresql":
            return await self._append_in_transaction(account_id, drafts)
        start = self._heads.get(account_id) or await self._read_head(account_id)
        for _attempt in range(2):
            events = _chain_after(start, drafts)
            stored, seen = await self._insert_after(account_id, start, events)
            if stored:
                return events
            # Another process appended: chain after the head the statement saw, or, when it
            # saw none newer (it moved while the statement waited for its lock), as read now.
            start = seen if seen not in (None, start) else await self._read_head(account_id)
        raise ConflictError("the audit head moved")  # retried from a fresh head

    async def _insert_after(
        self, account_id: str, start: Head, events: list[AuditEvent]
    ) -> tuple[bool, Head | None]:
        """One statement: move the head from ``start`` past ``events`` and insert them, or do
        neither when the head is no longer at ``start``. Whether they were written, and the
        head as the statement saw it (``None`` when the account has none yet)."""
        heads = t.audit_heads
        moved = (
            update(heads)
            .where(heads.c.account_id == account_id, heads.c.seq == start[0])
            .values(seq=events[-1].seq, hash=events[-1].hash)
            .returning(heads.c.account_id)
            .cte("moved")
        )
        columns = list(t.audit_events.c)
        rows = values(*(column(c.name, c.type) for c in columns), name="new_events").data(
            [tuple(to_values(event)[c.name] for c in columns) for event in events]
        )
        inserted = (
            insert(t.audit_events)
            .from_select([c.name for c in columns], select(rows).where(exists(moved.select())))
            .returning(t.audit_events.c.seq)
            .cte("inserted")
        )
        count = select(func.count()).select_from(inserted).scalar_subquery()
        stmt = (
            select(count, heads.c.seq, heads.c.hash)
            .where(heads.c.account_id == account_id)
            .add_cte(moved)
            .add_cte(inserted)
        )

        def write(conn: Connection) -> tuple[bool, Head | None]:
            row = conn.execute(stmt).first()
            if row is None:
                return False, None
            return row[0] == len(events), (row.seq, row.hash)

        written, seen = await self._db.run_single(
            write,
            conflict="a concurrent audit append took this seq",
            missing=f"account {account_id!r} does not exist",
        )
        if written:
            self._heads[account_id] = (events[-1].seq, events[-1].hash)
        return written, seen

    async def _read_head(self, account_id: str) -> Head:
        return await self._db.run_single(
            lambda conn: self._stored_head(conn, account_id),
            missing=f"account {account_id!r} does not exist",
        )

    def _stored_head(self, conn: Connection, account_id: str) -> Head:
        """The account's head as stored now; its row (seq 0, the genesis hash) is created for
        an account's first event."""
        heads = t.audit_heads
        read = select(heads.c.seq, heads.c.hash).where(heads.c.account_id == account_id)
        row = conn.execute(read).first()
        if row is None:
            genesis = {"account_id": account_id, "seq": 0, "hash": GENESIS_HASH}
            conn.execute(self._db.insert_missing(heads, genesis, key=("account_id",)))
            row = conn.execute(read).one()
        return (row.seq, row.hash)

    async def _append_in_transaction(
        self, account_id: str, drafts: list[AuditDraft]
    ) -> list[AuditEvent]:
        """SQLite without a file (so without the fast writer): one transaction, which holds
        the database's write lock from its start."""
        heads = t.audit_heads

        def append(conn: Connection) -> list[AuditEvent]:
            events = _chain_after(self._stored_head(conn, account_id), drafts)
            conn.execute(insert(t.audit_events), [to_values(e) for e in events])
            conn.execute(
                update(heads)
                .where(heads.c.account_id == account_id)
                .values(seq=events[-1].seq, hash=events[-1].hash)
            )
            return events

        return await self._db.run_write(
            append,
            conflict="a concurrent audit append took this seq",
            missing=f"account {account_id!r} does not exist",
        )

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
