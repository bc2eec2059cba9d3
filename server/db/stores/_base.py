"""What every SQL store shares: transactions, error translation, rows to records.

Writes on SQLite are serialised twice over: an ``asyncio.Lock`` per engine queues writers of
this process without polling, and ``BEGIN IMMEDIATE`` (see ``server.db.engine``) takes the
database's write lock at the start of the transaction, which keeps other processes sharing
the file (a bot worker, the CLI) safe too. PostgreSQL needs neither: its stores rely on row
locks, unique constraints and compare-and-set ``UPDATE`` statements.

Round trips on PostgreSQL (every one is a network hop, the cost that matters there): reads run
in autocommit, and so do writes that are one statement (``run_single``), since a single
statement is atomic by itself and a transaction around it only adds BEGIN and COMMIT. A
connection lost under a read is retried once on a new one (the pool has dropped the connections
opened before the loss); so is a write transaction lost before its COMMIT was sent, which the
server has rolled back. A write lost during its COMMIT, or a single-statement write lost while
it ran, may have committed: it is reported, never repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from sqlalchemy import Executable, Row, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.errors import ConflictError, NotFoundError, PreloopError, StorageError, ValidationError

R = TypeVar("R", bound=msgspec.Struct)
T = TypeVar("T")

if TYPE_CHECKING:
    from server.db.stores._sqlite_sync import SqliteSync

_FOREIGN_KEY_VIOLATION = "23503"  # PostgreSQL's SQLSTATE
_UNSTORABLE_TEXT = "a text value holds a character the database cannot store (NUL, \\u0000)"
# PostgreSQL's data exceptions (SQLSTATE class 22) are the request's values, not the database:
# SQLite stores what PostgreSQL refuses here, so the API checks what it can first.
_DATA_EXCEPTIONS = {
    "22021": _UNSTORABLE_TEXT,  # character_not_in_repertoire: NUL in text
    "22P05": _UNSTORABLE_TEXT,  # untranslatable_character: \u0000 in JSON
    "22001": "a text value is longer than the database stores",
    "22003": "a number is outside the range the database stores",
}
_sqlite_write_locks: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def _is_foreign_key_violation(exc: IntegrityError) -> bool:
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return sqlstate == _FOREIGN_KEY_VIOLATION or "FOREIGN KEY constraint failed" in str(orig)


def connection_lost(exc: BaseException | None) -> bool:
    """Whether a database error (or the error tree's translation of one) says the connection
    was lost: SQLAlchemy then has invalidated it, and the pool every connection opened before."""
    if isinstance(exc, PreloopError):
        exc = exc.__cause__
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


async def once_more_if_lost(run: Callable[[], Awaitable[T]], *, retry: Callable[[], bool]) -> T:
    """``run()``, and once more when its connection was lost and ``retry()`` still allows it."""
    try:
        return await run()
    except PreloopError as exc:
        if not (connection_lost(exc) and retry()):
            raise
    return await run()


def translate(exc: SQLAlchemyError | OSError, *, conflict: str, missing: str) -> PreloopError:
    """The error tree's name for a database failure."""
    if isinstance(exc, OSError):  # drivers let connection failures through untranslated
        return StorageError(f"cannot reach the database: {exc}")
    orig = getattr(exc, "orig", None)
    if isinstance(exc, StatementError) and isinstance(orig, PreloopError):
        return orig  # raised by one of our column types while binding a value
    if isinstance(exc, IntegrityError):
        return NotFoundError(missing) if _is_foreign_key_violation(exc) else ConflictError(conflict)
    sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    if sqlstate.startswith("22"):
        return ValidationError(
            _DATA_EXCEPTIONS.get(sqlstate, f"invalid value (SQLSTATE {sqlstate})")
        )
    detail = str(orig if orig is not None else exc).strip().splitlines()[0]
    if "no such table" in detail or ("relation" in detail and "does not exist" in detail):
        return StorageError(
            f"the database schema is missing or out of date ({detail}); run `preloop db upgrade`"
        )
    return StorageError(f"database error: {detail}")


class Database:
    """One engine plus the transaction discipline the stores follow. ``sync``, on a SQLite
    file, runs whole transactions in one thread hop (``_sqlite_sync``)."""

    def __init__(self, engine: AsyncEngine, *, sync: SqliteSync | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.sync = sync
        self._lock: asyncio.Lock | None = None
        self._upserts: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Executable] = {}
        if self.dialect == "sqlite":
            self._lock = _sqlite_write_locks.setdefault(engine.sync_engine, asyncio.Lock())

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading. On PostgreSQL it runs in autocommit: under READ COMMITTED
        every statement takes its own snapshot inside a transaction too, so a transaction
        would add nothing but its BEGIN and COMMIT round trips."""
        try:
            async with self.engine.connect() as conn:
                if self.dialect == "postgresql":
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    yield conn
                else:
                    async with conn.begin():
                        yield conn
        except (SQLAlchemyError, OSError) as exc:
            raise translate(exc, conflict="conflict", missing="not found") from exc

    @contextlib.asynccontextmanager
    async def write(
        self, *, conflict: str = "the record already exists", missing: str = "not found"
    ) -> AsyncIterator[AsyncConnection]:
        """A write transaction; a unique violation becomes ``ConflictError(conflict)``, a
        foreign-key violation ``NotFoundError(missing)``."""
        async with self._lock if self._lock is not None else contextlib.nullcontext():
            try:
                async with self.engine.connect() as conn:
                    if self._lock is not None:
                        await conn.execution_options(sqlite_begin="IMMEDIATE")
                    async with conn.begin():
                        yield conn
            except (SQLAlchemyError, OSError) as exc:
                raise translate(exc, conflict=conflict, missing=missing) from exc

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """``work`` (synchronous SQLAlchemy Core) in a read transaction: one thread hop on a
        SQLite file, else on the async connection through ``run_sync`` (retried once on a new
        connection when the first was lost)."""
        if self.sync is not None:
            return await self.sync.read(work)

        async def once() -> T:
            async with self.read() as conn:
                return await conn.run_sync(work)

        return await once_more_if_lost(once, retry=lambda: True)

    async def run_write(
        self,
        work: Callable[[Connection], T],
        *,
        conflict: str = "the record already exists",
        missing: str = "not found",
    ) -> T:
        """``work`` in a write transaction, errors translated as by :meth:`write`. A
        transaction whose connection was lost before its COMMIT was sent is run once more."""
        if self.sync is not None:
            async with self._lock if self._lock is not None else contextlib.nullcontext():
                return await self.sync.write(work, conflict=conflict, missing=missing)
        committing = False

        async def once() -> T:
            nonlocal committing
            async with self.write(conflict=conflict, missing=missing) as conn:
                done = await conn.run_sync(work)
                committing = True  # leaving the block commits
            return done

        return await once_more_if_lost(once, retry=lambda: not committing)

    async def run_single(
        self,
        work: Callable[[Connection], T],
        *,
        conflict: str = "the record already exists",
        missing: str = "not found",
    ) -> T:
        """``work`` whose only write is one statement (a compare-and-set ``UPDATE``, say;
        reads may follow it). On PostgreSQL it runs in autocommit, the statement its own
        transaction: no BEGIN and COMMIT round trips. A connection lost while it ran is not
        retried (the statement may have committed). Elsewhere as :meth:`run_write`."""
        if self.dialect != "postgresql":
            return await self.run_write(work, conflict=conflict, missing=missing)
        try:
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await conn.run_sync(work)
        except (SQLAlchemyError, OSError) as exc:
            raise translate(exc, conflict=conflict, missing=missing) from exc

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def upsert(
        self, table: Table, values: Mapping[str, Any], *, key: Sequence[str], keep: Iterable[str]
    ) -> Executable:
        """INSERT, or UPDATE the row with the same ``key`` except the ``keep`` columns."""
        stmt = self._insert(table).values(dict(values))
        unchanged = set(key) | set(keep)
        changed = {c: stmt.excluded[c] for c in values if c not in unchanged}
        return stmt.on_conflict_do_update(index_elements=list(key), set_=changed)

    def upsert_all(self, table: Table, *, key: Sequence[str], keep: Iterable[str]) -> Executable:
        """:meth:`upsert` of every column of ``table`` as one statement built once and executed
        with the row as parameters (``conn.execute(stmt, values)``): building an upsert (its
        ``excluded`` alias) costs more than running it, on a path that writes row after row."""
        cache_key = (table.name, tuple(key), tuple(keep))
        stmt = self._upserts.get(cache_key)
        if stmt is None:
            insert = self._insert(table)
            unchanged = set(key) | set(keep)
            changed = {c.name: insert.excluded[c.name] for c in table.c if c.name not in unchanged}
            stmt = insert.on_conflict_do_update(index_elements=list(key), set_=changed)
            self._upserts[cache_key] = stmt
        return stmt

    def insert_missing(
        self, table: Table, values: Mapping[str, Any], *, key: Sequence[str]
    ) -> Executable:
        """INSERT unless a row with the same ``key`` exists."""
        stmt = self._insert(table).values(dict(values))
        return stmt.on_conflict_do_nothing(index_elements=list(key))


def executes(stmt: Executable) -> Callable[[Connection], None]:
    """Work (for ``run_write``, ``run_single``) that executes ``stmt`` and nothing else."""

    def work(conn: Connection) -> None:
        conn.execute(stmt)

    return work


def to_record(row: Row[Any], cls: type[R]) -> R:
    # Column names are ``quoted_name`` (a str subclass) and msgspec wants exact str keys.
    return msgspec.convert({str(k): v for k, v in row._mapping.items()}, type=cls)


def to_values(record: msgspec.Struct) -> dict[str, Any]:
    return msgspec.structs.asdict(record)


class SqlStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _first(self, stmt: Executable, cls: type[R]) -> R | None:
        def first(conn: Connection) -> R | None:
            row = conn.execute(stmt).first()
            return None if row is None else to_record(row, cls)

        return await self._db.run_read(first)

    async def _all(self, stmt: Executable, cls: type[R]) -> list[R]:
        def every(conn: Connection) -> list[R]:
            return [to_record(row, cls) for row in conn.execute(stmt).all()]

        return await self._db.run_read(every)
