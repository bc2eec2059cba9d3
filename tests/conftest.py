"""Shared fixtures: databases. SQLite and PostgreSQL each get one migrated template per
session (per xdist worker); every test gets its own copy."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from server.db import upgrade_database
from tests.pg import (
    ENV_URL,
    LocalCluster,
    PostgresDatabases,
    binaries_available,
    external_admin_url,
    run_in_thread,
)

NO_POSTGRES = f"PostgreSQL: no server binaries (initdb/postgres) on PATH and {ENV_URL} unset"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """A PostgreSQL server with a migrated template database. Skips when none is available,
    except in CI (``CI=true``), where that is a failure."""
    cluster: LocalCluster | None = None
    admin_url = external_admin_url()
    if admin_url is None:
        if not binaries_available():
            if _in_ci():
                pytest.fail(f"{NO_POSTGRES}; CI must run the PostgreSQL tests")
            pytest.skip(NO_POSTGRES)
        cluster = LocalCluster.start()
        admin_url = cluster.admin_url
    databases = PostgresDatabases(admin_url)
    try:
        run_in_thread(databases.create_template)
        yield databases
    finally:
        try:
            if cluster is None:
                run_in_thread(databases.drop_template)
        finally:
            if cluster is not None:
                cluster.stop()


@pytest.fixture
async def postgres_url(postgres_databases: PostgresDatabases) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for this test alone."""
    url = await postgres_databases.create()
    yield url
    await postgres_databases.drop(url)


@pytest.fixture
async def empty_postgres_url(postgres_databases: PostgresDatabases) -> AsyncIterator[str]:
    """A fresh PostgreSQL database that was never migrated."""
    url = await postgres_databases.create(migrated=False)
    yield url
    await postgres_databases.drop(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "preloop.db"
    run_in_thread(lambda: upgrade_database(f"sqlite:///{path}"))
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite database file for this test alone."""
    path = tmp_path / "db" / "preloop.db"
    path.parent.mkdir()
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"
