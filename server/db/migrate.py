"""Alembic, driven from code: no ``alembic.ini`` is needed, the scripts ship in the package.

Migrations run in one transaction on a connection of the async engine
(``connection.run_sync``). Two processes migrating at once queue: PostgreSQL through an
advisory lock, SQLite through ``BEGIN IMMEDIATE``.

Alembic is imported only when there is something to migrate: a start on an up-to-date
database reads ``alembic_version`` with plain SQL and compares it with the newest script's
file name (``NNNN_name.py`` carries revision ``NNNN``; tests/contract keeps the two equal),
which saves about a third of a second of every start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.errors import StorageError
from server.db.engine import make_engine, normalize_database_url
from server.db.stores import SqlStorage

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x5052454C4F4F50  # "PRELOOP": the PostgreSQL advisory lock key


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration pointing at the packaged scripts (and at ``url`` if given, for
    Alembic's own command line use)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", normalize_database_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration this code ships, as Alembic reads the scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations are packaged"
    return head


def shipped_head() -> str:
    """The newest migration this code ships, from the scripts' file names (no Alembic)."""
    names = (p.name for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return max(name.split("_", 1)[0] for name in names)


def _upgrade(connection: Connection) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return rows[0][0] if len(rows) == 1 else None


async def upgrade_database(url: str) -> None:
    """Apply every pending migration to the database at ``url``."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                if engine.dialect.name == "postgresql":
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                    )
                await conn.run_sync(_upgrade)
    except (SQLAlchemyError, OSError) as exc:
        raise StorageError(f"migrating the database failed: {exc}") from exc
    finally:
        await engine.dispose()


async def _revision_of(engine: AsyncEngine) -> str | None:
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_revision)
    except (SQLAlchemyError, OSError) as exc:
        raise StorageError(f"reading the database's migration revision failed: {exc}") from exc


async def current_revision(url: str) -> str | None:
    """The migration the database at ``url`` is at (``None`` when it was never migrated)."""
    engine = make_engine(url)
    try:
        return await _revision_of(engine)
    finally:
        await engine.dispose()


async def open_storage(url: str, *, migrate: bool = True) -> SqlStorage:
    """Open the database at ``url``; migrate it first unless ``migrate`` is false, in which
    case it must already be at the newest migration (else ``StorageError``)."""
    engine = make_engine(url)
    try:
        revision = await _revision_of(engine)
        if migrate and revision != shipped_head():
            await upgrade_database(url)
            revision = await _revision_of(engine)
        if revision != shipped_head():
            raise StorageError(
                f"the database is at migration {revision or '(none)'} but this Preloop needs "
                f"{shipped_head()}: run `preloop db upgrade`"
            )
    except BaseException:
        await engine.dispose()
        raise
    return SqlStorage(engine)
