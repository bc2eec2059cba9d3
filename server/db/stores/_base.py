"""What every SQL store shares: transactions, error translation, rows to records.

Writes on SQLite are serialised twice over: an ``asyncio.Lock`` per engine queues writers of
this process without polling, and ``BEGIN IMMEDIATE`` (see ``server.db.engine``) takes the
database's write lock at the start of the transaction, which keeps other processes sharing
the file (a bot worker, the CLI) safe too. PostgreSQL needs neither: its stores rely on row
locks, unique constraints and compare-and-set ``UPDATE`` statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from sqlalchemy import Executable, Row, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError, StatementError
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
        SQLite file, else on the async connection through ``run_sync``."""
        if self.sync is not None:
            return await self.sync.read(work)
        async with self.read() as conn:
            return await conn.run_sync(work)

    async def run_write(
        self,
        work: Callable[[Connection], T],
        *,
        conflict: str = "the record already exists",
        missing: str = "not found",
    ) -> T:
        """``work`` in a write transaction, errors translated as by :meth:`write`."""
        if self.sync is None:
            async with self.write(conflict=conflict, missing=missing) as conn:
                return await conn.run_sync(work)
        async with self._lock if self._lock is not None else contextlib.nullcontext():
            return await self.sync.write(work, conflict=conflict, missing=missing)

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

    def insert_missing(
        self, table: Table, values: Mapping[str, Any], *, key: Sequence[str]
    ) -> Executable:
        """INSERT unless a row with the same ``key`` exists."""
        stmt = self._insert(table).values(dict(values))
        return stmt.on_conflict_do_nothing(index_elements=list(key))


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
