"""Whole SQLite transactions in one thread hop.

Through SQLAlchemy's aiosqlite driver every step of a transaction is its own hop to the
driver's thread and back: a one-row read takes about nine (BEGIN, cursor, execute, fetch,
close, COMMIT, the pool's reset), a decision's vote some twenty. On a busy machine each hop
costs about as much as the SQL itself, and an approval's round trip is mostly such waits
(docs/performance.md). This runner takes a synchronous function of a SQLAlchemy
``Connection`` (the same Core statements, column types and JSON handling as the async path)
and runs it, with its whole transaction, in one call to a dedicated thread, on a
synchronous engine over the same file.

The thread is shared with the audit writer (``_sqlite_audit``), so the two never wait on
each other's SQLite write lock; other writers (the async pool, other processes) are kept
apart by ``BEGIN IMMEDIATE`` and the busy timeout as everywhere else, and this process's
writers also queue on the engine's ``asyncio.Lock`` (see ``_base``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from server.db.stores._base import translate

T = TypeVar("T")


class SqliteSync:
    def __init__(self, engine: Engine, executor: ThreadPoolExecutor) -> None:
        self._engine = engine
        self._executor = executor

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await self._run(work, write=False, conflict="conflict", missing="not found")

    async def write(self, work: Callable[[Connection], T], *, conflict: str, missing: str) -> T:
        """``work`` in a ``BEGIN IMMEDIATE`` transaction; a unique violation becomes
        ``ConflictError(conflict)``, a foreign-key violation ``NotFoundError(missing)``."""
        return await self._run(work, write=True, conflict=conflict, missing=missing)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._engine.dispose)

    async def _run(
        self, work: Callable[[Connection], T], *, write: bool, conflict: str, missing: str
    ) -> T:
        def transaction() -> T:
            try:
                with self._engine.connect() as conn:
                    if write:
                        conn.execution_options(sqlite_begin="IMMEDIATE")
                    with conn.begin():
                        return work(conn)
            except (SQLAlchemyError, OSError) as exc:
                raise translate(exc, conflict=conflict, missing=missing) from exc

        loop = asyncio.get_running_loop()
        # Shielded: a cancelled caller stops waiting, the transaction still ends in the thread.
        return await asyncio.shield(loop.run_in_executor(self._executor, transaction))
