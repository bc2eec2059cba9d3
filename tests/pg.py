"""PostgreSQL for tests: a throwaway cluster started from the server binaries, or the server
named by ``PRELOOP_TEST_DATABASE_URL``; one migrated template database per session and a
fresh database cloned from it per test.

The cluster runs as a direct child process. As root (CI), PostgreSQL refuses to start, so
``initdb`` and ``postgres`` run as the ``postgres`` OS user in a temporary directory it owns.
"""

from __future__ import annotations

import asyncio
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


def binaries_available() -> bool:
    return shutil.which("initdb") is not None and shutil.which("postgres") is not None


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

    @property
    def admin_url(self) -> URL:
        return make_url(f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres")

    @classmethod
    def start(cls) -> LocalCluster:
        root = Path(tempfile.mkdtemp(prefix=f"preloop-pg-{os.getpid()}-", dir=_scratch_parent()))
        os.chmod(root, 0o700)
        drop = _as_postgres_user()
        if drop:
            os.chown(root, drop["user"], drop["group"])
        try:
            subprocess.run(
                [
                    "initdb",
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
            return cls._launch(root, drop)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    @classmethod
    def _launch(cls, root: Path, drop: dict[str, Any]) -> LocalCluster:
        for _attempt in range(3):  # another worker may grab the port we picked
            port = _free_port()
            log = root / f"postgres-{port}.log"
            cluster = cls(root=root, port=port, process=_postgres(root, port, log, drop), log=log)
            if cluster._wait_ready():
                return cluster
            cluster._terminate()
        raise RuntimeError(f"PostgreSQL did not start; last log:\n{log.read_text()[-2000:]}")

    def restart(self) -> None:
        """Stop the server (a fast shutdown, which ends every client's connection) and start
        it again on the same port and data, as an operator's restart does."""
        self._terminate()
        self.process = _postgres(self.root, self.port, self.log, _as_postgres_user())
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


def _postgres(root: Path, port: int, log: Path, drop: dict[str, Any]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                "postgres",
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
