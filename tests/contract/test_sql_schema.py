"""SQL only: migrations produce exactly ``server.db.tables``; URLs and engines."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from hub.errors import ConfigError, StorageError
from server.db import (
    SqlStorage,
    current_revision,
    head_revision,
    make_engine,
    normalize_database_url,
    open_storage,
    upgrade_database,
)
from server.db import tables as t

from .records import new_account


def _schema_differences(connection: Connection) -> list[Any]:
    # what depends on the server (pgvector's column and indexes, full-text tables) is left out
    opts = {"compare_type": True, "include_name": t.declared}
    context = MigrationContext.configure(connection, opts=opts)
    return list(compare_metadata(context, t.metadata))


def _tables(connection: Connection) -> set[str]:
    return {name for name in inspect(connection).get_table_names() if t.declared(name, "table", {})}


async def test_migrations_produce_exactly_the_declared_schema(empty_url: str) -> None:
    await upgrade_database(empty_url)

    engine = make_engine(empty_url)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_schema_differences)
            tables = await conn.run_sync(_tables)
    finally:
        await engine.dispose()

    assert differences == []
    assert set(t.metadata.tables) | {"alembic_version"} == tables
    assert head_revision() == await current_revision(empty_url)


async def test_upgrading_twice_changes_nothing(empty_url: str) -> None:
    assert await current_revision(empty_url) is None

    await upgrade_database(empty_url)
    await upgrade_database(empty_url)

    assert head_revision() == await current_revision(empty_url)


async def test_open_storage_migrates_by_default(empty_url: str) -> None:
    storage = await open_storage(empty_url)
    try:
        account_id = await new_account(storage, "acme")
        found = await storage.accounts.get(account_id)
    finally:
        await storage.close()

    assert found is not None
    assert found.name == "acme"


async def test_open_storage_refuses_an_unmigrated_database(empty_url: str) -> None:
    with pytest.raises(StorageError, match="preloop db upgrade"):
        await open_storage(empty_url, migrate=False)


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()

    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30000}


async def test_sqlite_reads_run_inside_a_real_transaction(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        async with engine.connect() as conn, conn.begin():
            await conn.execute(select(t.accounts.c.id))
            raw = await conn.get_raw_connection()
            in_transaction = raw.driver_connection.in_transaction
    finally:
        await engine.dispose()

    assert in_transaction is True  # sqlite3's legacy mode would have begun nothing yet


async def test_stores_on_an_unmigrated_database_say_how_to_fix_it(empty_url: str) -> None:
    storage = SqlStorage(make_engine(empty_url))
    try:
        with pytest.raises(StorageError, match="preloop db upgrade"):
            await storage.accounts.list()
    finally:
        await storage.close()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/preloop.db", "sqlite+aiosqlite:///data/preloop.db"),
        ("sqlite:////var/lib/preloop.db", "sqlite+aiosqlite:////var/lib/preloop.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgres://u:p@db:5432/preloop", "postgresql+asyncpg://u:p@db:5432/preloop"),
        ("postgresql://u@db/preloop?ssl=require", "postgresql+asyncpg://u@db/preloop?ssl=require"),
        ("postgresql+asyncpg://u@db/preloop", "postgresql+asyncpg://u@db/preloop"),
        ("PostgreSQL://u@db/p", "postgresql+asyncpg://u@db/p"),
    ],
)
def test_normalize_database_url(given: str, expected: str) -> None:
    assert expected == normalize_database_url(given)


@pytest.mark.parametrize(
    "given", ["mysql://u@db/x", "postgresql+psycopg2://u@db/x", "preloop.db", ""]
)
def test_unsupported_database_urls_are_config_errors(given: str) -> None:
    with pytest.raises(ConfigError):
        normalize_database_url(given)


async def test_make_engine_creates_the_sqlite_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "preloop.db"

    engine = make_engine(f"sqlite:///{path}")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
    finally:
        await engine.dispose()

    assert path.is_file()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket closes


async def test_an_unreachable_server_is_a_storage_error() -> None:
    storage = SqlStorage(make_engine(f"postgresql://preloop@127.0.0.1:{_closed_port()}/preloop"))
    try:
        with pytest.raises(StorageError, match="cannot reach the database"):
            await storage.accounts.list()
    finally:
        await storage.close()


def test_an_uncreatable_sqlite_directory_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    with pytest.raises(StorageError, match="cannot create the database directory"):
        make_engine(f"sqlite:///{blocker / 'sub' / 'preloop.db'}")
