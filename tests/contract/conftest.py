"""The contract suite runs every test against each ``Storage``: in memory, SQLite, PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.memory import InMemoryStorage
from hub.ports import Storage
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.ports import TrackerStorage
from server.db import SqlStorage, make_engine, open_storage
from server.db.stores.trackers import SqlTrackerStorage

BACKENDS = [
    pytest.param("memory"),
    pytest.param("sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
]
SQL_BACKENDS = [
    pytest.param("sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> str | None:
    """``None`` for the in-memory backend, else a fresh migrated database's URL."""
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
async def storage(backend_url: str | None) -> AsyncIterator[Storage]:
    if backend_url is None:
        store: Storage = InMemoryStorage()
    else:
        store = await open_storage(backend_url, migrate=False)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def trackers(storage: Storage) -> TrackerStorage:
    """The tracker storage beside ``storage`` (on its engine, or in memory with it)."""
    if isinstance(storage, SqlStorage):
        return SqlTrackerStorage.beside(storage)
    assert isinstance(storage, InMemoryStorage)
    return InMemoryTrackerStorage(storage.require_account)


@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, migrated database of each SQL kind."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
async def sql_storage(sql_url: str) -> AsyncIterator[SqlStorage]:
    store = SqlStorage(make_engine(sql_url))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=SQL_BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that was never migrated (for SQLite, not even its directory exists)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'not' / 'yet' / 'preloop.db'}"
    url: str = request.getfixturevalue("empty_postgres_url")
    return url
