"""Audit appends on a SQLite file in one thread hop.

Through SQLAlchemy and aiosqlite, an append costs a thread hop and SQLAlchemy's statement
machinery for each of BEGIN, INSERT, UPDATE and COMMIT: most of the CPU Preloop spent per
proxied tool call (docs/performance.md). This writer owns one ``sqlite3`` connection to the
same file, used from one thread, and runs a whole batch there: read the head when it is not
known, chain, insert, compare-and-set the head, commit. Values are encoded by the columns' own
SQLAlchemy bind processors, so rows are byte-for-byte what the SQLAlchemy path writes.

Other writers of the file (this process's SQLAlchemy pool, the CLI, a worker) are kept apart by
SQLite's own write lock (``BEGIN IMMEDIATE`` and the busy timeout), as everywhere else.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Dialect

from hub.audit_chain import GENESIS_HASH, chain
from hub.errors import ConflictError, NotFoundError, StorageError
from hub.records import AuditDraft, AuditEvent
from server.db import tables as t
from server.db.engine import BUSY_TIMEOUT_MS
from server.db.stores._base import to_values

Head = tuple[int, str]  # (seq, hash)

_COLUMNS = [c.name for c in t.audit_events.columns]
_INSERT = (
    f"INSERT INTO audit_events ({', '.join(_COLUMNS)}) "  # noqa: S608 - column names, no input
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
_SEED = "INSERT INTO audit_heads (account_id, seq, hash) VALUES (?, 0, ?) ON CONFLICT DO NOTHING"
_READ_HEAD = "SELECT seq, hash FROM audit_heads WHERE account_id = ?"
_MOVE_HEAD = "UPDATE audit_heads SET seq = ?, hash = ? WHERE account_id = ? AND seq = ?"


class SqliteAuditWriter:
    def __init__(
        self, path: Path, dialect: Dialect, *, executor: ThreadPoolExecutor | None = None
    ) -> None:
        self._path = path
        processors: list[Callable[[Any], Any] | None] = [
            c.type.dialect_impl(dialect).bind_processor(dialect) for c in t.audit_events.columns
        ]
        self._processors = processors
        # One thread: the connection lives in it. A shared executor (``SqlStorage`` passes
        # the one ``_sqlite_sync`` uses) is shut down by its owner.
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="preloop-audit"
        )
        self._connection: sqlite3.Connection | None = None  # opened in the writer's thread

    async def append(
        self, drafts: Sequence[AuditDraft], heads: dict[str, Head]
    ) -> tuple[list[AuditEvent], dict[str, Head]]:
        """Chain and write ``drafts`` in one transaction, after ``heads`` where known (else
        the stored heads); returns the events and the new heads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._append, list(drafts), heads)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        if self._owns_executor:
            self._executor.shutdown(wait=True)

    # -- in the writer's thread ----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._connection = connection
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _row(self, event: AuditEvent) -> list[Any]:
        values = to_values(event)
        return [
            process(values[name]) if process is not None else values[name]
            for name, process in zip(_COLUMNS, self._processors, strict=True)
        ]

    def _append(
        self, drafts: list[AuditDraft], known: dict[str, Head]
    ) -> tuple[list[AuditEvent], dict[str, Head]]:
        try:
            connection = self._connect()
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"database error: {exc}") from exc
        try:
            result = self._write(connection, drafts, known)
            connection.execute("COMMIT")
        except BaseException as exc:
            connection.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                if "FOREIGN KEY" in str(exc):
                    raise NotFoundError(f"account {drafts[0].account_id!r} does not exist") from exc
                raise ConflictError("a concurrent audit append took this seq") from exc
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"database error: {exc}") from exc
            raise
        return result

    def _write(
        self, connection: sqlite3.Connection, drafts: list[AuditDraft], known: dict[str, Head]
    ) -> tuple[list[AuditEvent], dict[str, Head]]:
        events: list[AuditEvent] = []
        heads: dict[str, Head] = {}
        starts: dict[str, Head] = {}
        for draft in drafts:
            account_id = draft.account_id
            if account_id not in heads:
                start = known.get(account_id) or self._read_head(connection, account_id)
                starts[account_id] = heads[account_id] = start
            seq, prev_hash = heads[account_id]
            event = chain(draft, seq=seq + 1, prev_hash=prev_hash)
            events.append(event)
            heads[account_id] = (event.seq, event.hash)
        connection.executemany(_INSERT, [self._row(event) for event in events])
        for account_id, (seq, digest) in heads.items():
            moved = connection.execute(
                _MOVE_HEAD, (seq, digest, account_id, starts[account_id][0])
            ).rowcount
            if moved != 1:
                raise ConflictError("the audit head moved")
        return events, heads

    def _read_head(self, connection: sqlite3.Connection, account_id: str) -> Head:
        connection.execute(_SEED, (account_id, GENESIS_HASH))
        seq, digest = connection.execute(_READ_HEAD, (account_id,)).fetchone()
        return int(seq), str(digest)
