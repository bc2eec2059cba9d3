"""``preloop serve`` replicas and ``preloop bots`` workers as subprocesses on one database,
for tests across processes."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.conftest import LiveServer, make_settings
from tests.integration.test_serve import free_port

READY_LINE = "docs/mcp.md"  # the banner's last line: the server is up
WORKER_READY = "preloop bots is running"  # server/worker.py READY
START_TIMEOUT = 60


@dataclass
class Process:
    """A running ``python -m server ...``: what it printed so far, its exit status once done."""

    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    returncode: int | None = None

    @property
    def text(self) -> str:
        return "".join(self.output)


def preloop_env(root: Path, database_url: str, **env: str) -> dict[str, str]:
    """This environment without PRELOOP_* variables, plus a data directory in ``root``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PRELOOP_")}
    return base | {
        "PRELOOP_DATA_DIR": str(root / "data"),
        "PRELOOP_ENV_FILE": str(root / "no.env"),
        "PRELOOP_DATABASE_URL": database_url,
        **env,
    }


@contextmanager
def preloop_process(
    args: list[str], env: dict[str, str], *, cwd: Path, ready: str
) -> Iterator[Process]:
    """``python -m server *args``; yields once it printed ``ready``, terminates it (SIGTERM)
    on the way out and records its exit status."""
    with subprocess.Popen(
        [sys.executable, "-m", "server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=cwd,
    ) as proc:
        lines: queue.Queue[str] = queue.Queue()
        running = Process(proc)

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            while not any(ready in line for line in running.output):
                try:
                    running.output.append(lines.get(timeout=START_TIMEOUT))
                except queue.Empty:
                    raise RuntimeError(f"{args[0]} did not start:\n{running.text}") from None
            yield running
        finally:
            proc.terminate()
            running.returncode = proc.wait(timeout=30)
            reader.join(timeout=30)
            while not lines.empty():
                running.output.append(lines.get())


@contextmanager
def serve_replica(
    root: Path, database_url: str, *, cwd: Path, admin_key: str = "", **env: str
) -> Iterator[LiveServer]:
    """``python -m server serve`` on a free port with its own data directory in ``root``;
    yields once its banner is printed. The admin key is read from the data directory when
    this replica created the first key, else ``admin_key`` is used."""
    port = free_port()
    environ = preloop_env(root, database_url, **env)
    with preloop_process(["serve", "--port", str(port)], environ, cwd=cwd, ready=READY_LINE):
        # The banner is printed during startup, before uvicorn binds: wait for the port.
        _wait_for_port(port)
        key_file = root / "data" / "initial-admin-key"
        key = key_file.read_text().strip() if key_file.exists() else admin_key
        settings = make_settings(root, PRELOOP_DATABASE_URL=database_url)
        yield LiveServer(url=f"http://127.0.0.1:{port}", admin_key=key, settings=settings)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} after the banner") from None
            time.sleep(0.05)


@contextmanager
def bots_worker(root: Path, database_url: str, *, cwd: Path, **env: str) -> Iterator[Process]:
    """``python -m server bots`` with its own data directory in ``root`` (unless ``env`` names
    one); yields once it says it is running."""
    environ = preloop_env(root, database_url, **env)
    with preloop_process(["bots"], environ, cwd=cwd, ready=WORKER_READY) as worker:
        yield worker
