"""Database URLs and engines: SQLite (aiosqlite) embedded, PostgreSQL (asyncpg) in production.

SQLite connections get WAL, foreign keys and a busy timeout, and SQLAlchemy takes over BEGIN
from the ``sqlite3`` module: its legacy mode starts no transaction before a SELECT, which would
let a read-then-write (an audit append) read outside its own transaction. A connection given
the execution option ``sqlite_begin="IMMEDIATE"`` starts its transactions with
``BEGIN IMMEDIATE``: the write lock is taken up front, so two writers (even in two processes)
queue on ``busy_timeout`` instead of failing half-way through.

PostgreSQL connections are not pinged when they leave the pool: SQLAlchemy's asyncpg ping is
three round trips (BEGIN, an empty statement, ROLLBACK) before every transaction. A pooled
connection the server has closed (a restart, ``pg_terminate_backend``, an idle timeout) is
known to asyncpg already, since its socket saw the end: the checkout hook below looks at that,
without a round trip, and the pool replaces such a connection with a new one. The stores retry
once what a connection lost under them may safely be retried for (``server.db.stores._base``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from hub.errors import ConfigError, StorageError
from hub.private_files import create_private_file, make_private_dir

BUSY_TIMEOUT_MS = 30_000
_json_encoder = msgspec.json.Encoder()


def normalize_database_url(url: str) -> str:
    """Map ``sqlite:///path``, ``postgres://…`` and ``postgresql://…`` to the async drivers
    Preloop uses (``sqlite+aiosqlite``, ``postgresql+asyncpg``); other databases are a
    ``ConfigError``."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        raise ConfigError(f"not a database URL (expected scheme://...): {scheme[:20]!r}")
    backend, _, driver = scheme.lower().partition("+")
    if backend in ("postgres", "postgresql") and driver in ("", "asyncpg"):
        return f"postgresql+asyncpg://{rest}"
    if backend == "sqlite" and driver in ("", "aiosqlite"):
        return f"sqlite+aiosqlite://{rest}"
    raise ConfigError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///path/to/file.db "
        "or postgresql://user:password@host/database"
    )


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL, or ``None`` for in-memory and URI databases."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def _json_dumps(value: Any) -> str:
    return _json_encoder.encode(value).decode()


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough with WAL, much faster
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


def _drop_closed_connection(
    dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: Any
) -> None:
    """Refuse a pooled connection whose socket the server closed: the pool then opens a new
    one (``DisconnectionError`` from a checkout hook). Local state only, no round trip."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def make_engine(url: str, **engine_options: Any) -> AsyncEngine:
    """An async engine for ``url`` (any form ``normalize_database_url`` accepts). A SQLite file
    is created when missing, readable only by its owner (0600, its directory 0700), so the
    audit trail, approvals and key hashes are not readable by other local users
    (``StorageError`` when it cannot be)."""
    sa_url = make_url(normalize_database_url(url))
    options: dict[str, Any] = {
        "json_serializer": _json_dumps,
        "json_deserializer": msgspec.json.decode,
    }
    if sa_url.get_backend_name() == "sqlite":
        path = sqlite_path(sa_url)
        if path is not None:
            try:
                make_private_dir(path.parent)
            except OSError as exc:
                raise StorageError(f"cannot create the database directory: {exc}") from exc
            try:
                create_private_file(path)
            except OSError as exc:
                raise StorageError(f"cannot create the database file: {exc}") from exc
        engine = create_async_engine(sa_url, **(options | engine_options))
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    options |= {"connect_args": {"server_settings": {"application_name": "preloop"}}}
    engine = create_async_engine(sa_url, **(options | engine_options))
    event.listen(engine.sync_engine, "checkout", _drop_closed_connection)
    return engine


def make_sqlite_sync_engine(url: URL) -> Engine:
    """A synchronous engine (the ``sqlite3`` module) on the same SQLite file as an async
    ``url``, with the same connection settings: for work that runs a whole transaction in one
    thread hop (``server.db.stores._sqlite_sync``)."""
    engine = create_engine(
        url.set(drivername="sqlite+pysqlite"),
        json_serializer=_json_dumps,
        json_deserializer=msgspec.json.decode,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine
