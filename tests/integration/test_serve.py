"""`preloop serve` as `make run` starts it: a subprocess on SQLite, printing how to use it."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_starts_on_sqlite_and_prints_the_admin_key(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRELOOP_")}
    env |= {"PRELOOP_DATA_DIR": str(tmp_path / "data"), "PRELOOP_ENV_FILE": str(tmp_path / "x")}
    command = [sys.executable, "-m", "server", "serve", "--port", str(port)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        _check_running_server(proc, port, tmp_path / "data")
    assert (tmp_path / "data" / "initial-admin-key").stat().st_mode & 0o777 == 0o600


def test_first_start_makes_the_data_directory_and_database_private(tmp_path: Path) -> None:
    """Other local users cannot read the audit trail, approvals or key hashes: what the first
    start creates is the owner's alone, even under the usual umask 022."""
    port = free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRELOOP_")}
    env |= {"PRELOOP_DATA_DIR": str(data), "PRELOOP_ENV_FILE": str(tmp_path / "x")}
    command = [sys.executable, "-m", "server", "serve", "--port", str(port)]

    def modes() -> dict[str, str]:
        names = ["preloop.db", "preloop.db-wal", "preloop.db-shm", "link-secret"]
        return {"data": oct(data.stat().st_mode & 0o777)} | {
            name: oct((data / name).stat().st_mode & 0o777) for name in names
        }

    seen: dict[str, str] = {}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, umask=0o022
    ) as proc:
        # while it runs, so that SQLite's -wal and -shm files exist
        _check_running_server(proc, port, data, also=lambda: seen.update(modes()))
    expected = {"data": "0o700"} | dict.fromkeys(
        ["preloop.db", "preloop.db-wal", "preloop.db-shm", "link-secret"], "0o600"
    )
    assert expected == seen


def _check_running_server(
    proc: subprocess.Popen[str], port: int, data: Path, also: Callable[[], None] = lambda: None
) -> None:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    output: list[str] = []
    try:
        while not any("docs/mcp.md" in line for line in output):
            output.append(lines.get(timeout=60))
        text = "".join(output)
        key = (data / "initial-admin-key").read_text().strip()
        assert key in text
        assert f"http://127.0.0.1:{port}" in text
        assert f"claude mcp add --transport http preloop http://127.0.0.1:{port}/mcp" in text
        assert "preloop tui" in text  # and how to open the on-call dashboard
        assert (data / "preloop.db").exists()
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.json()["status"] == "ok"
        versions = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/policies/versions",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert versions.json()[0]["version"] == 1
        also()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=30)
