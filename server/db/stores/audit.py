"""The hash-chained audit log in SQL.

An append runs in one transaction: make sure the account's head row exists (seq 0, genesis
hash), lock it (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the transaction already
holds the write lock, see ``_base``), chain the draft after it, insert the event and move the
head. Concurrent appends therefore queue on the head row. Should one still lose a race for a
``seq`` (the primary key refuses the duplicate), it is retried from a fresh head a bounded
number of times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, String, and_, cast, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB

from hub.audit import GENESIS_HASH, chain
from hub.errors import ConflictError, StorageError
from hub.ports import AuditQuery
from hub.records import AuditDraft, AuditEvent
from hub.store_rules import aware_utc, check_audit_query
from server.db import tables as t
from server.db.stores._base import SqlStore, to_values

MAX_APPEND_ATTEMPTS = 5


class SqlAuditStore(SqlStore):
    async def append(self, draft: AuditDraft) -> AuditEvent:
        aware_utc(draft.at, "audit event time")
        for _attempt in range(MAX_APPEND_ATTEMPTS):
            try:
                return await self._append_once(draft)
            except ConflictError:
                continue  # a concurrent append took this seq: chain after the new head
        raise StorageError(
            f"audit append for account {draft.account_id!r} collided "
            f"{MAX_APPEND_ATTEMPTS} times with concurrent appends"
        )

    async def _append_once(self, draft: AuditDraft) -> AuditEvent:
        heads = t.audit_heads
        genesis = {"account_id": draft.account_id, "seq": 0, "hash": GENESIS_HASH}
        seed = self._db.insert_missing(heads, genesis, key=("account_id",))
        read_head = (
            select(heads.c.seq, heads.c.hash)
            .where(heads.c.account_id == draft.account_id)
            .with_for_update()
        )
        async with self._db.write(
            conflict="a concurrent audit append took this seq",
            missing=f"account {draft.account_id!r} does not exist",
        ) as conn:
            await conn.execute(seed)
            head = (await conn.execute(read_head)).one()
            event = chain(draft, seq=head.seq + 1, prev_hash=head.hash)
            await conn.execute(insert(t.audit_events).values(to_values(event)))
            await conn.execute(
                update(heads)
                .where(heads.c.account_id == draft.account_id)
                .values(seq=event.seq, hash=event.hash)
            )
        return event

    async def query(self, account_id: str, query: AuditQuery) -> Sequence[AuditEvent]:
        check_audit_query(query)
        c = t.audit_events.c
        stmt = select(t.audit_events).where(c.account_id == account_id, c.seq > query.after_seq)
        if query.kind is not None and query.kind.endswith("."):
            # substr, not LIKE: LIKE ignores case on SQLite and treats "_" as a wildcard.
            stmt = stmt.where(func.substr(c.kind, 1, len(query.kind)) == query.kind)
        elif query.kind is not None:
            stmt = stmt.where(c.kind == query.kind)
        if query.actor is not None:
            stmt = stmt.where(c.actor == query.actor)
        if query.since is not None:
            stmt = stmt.where(c.at >= query.since)
        if query.until is not None:
            stmt = stmt.where(c.at < query.until)
        for key, value in query.match.items():
            stmt = stmt.where(self._data_equals(key, value))
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
