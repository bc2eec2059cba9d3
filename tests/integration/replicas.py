"""``preloop serve`` replicas as subprocesses on one database, for tests across processes."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.conftest import LiveServer, make_settings
from tests.integration.test_serve import free_port

READY_LINE = "docs/mcp.md"  # the banner's last line: the server is up
START_TIMEOUT = 60


@contextmanager
def serve_replica(
    root: Path, database_url: str, *, cwd: Path, admin_key: str = "", **env: str
) -> Iterator[LiveServer]:
    """``python -m server serve`` on a free port with its own data directory in ``root``;
    yields once its banner is printed. The admin key is read from the data directory when
    this replica created the first key, else ``admin_key`` is used."""
    port = free_port()
    data = root / "data"
    base = {k: v for k, v in os.environ.items() if not k.startswith("PRELOOP_")}
    base |= {
        "PRELOOP_DATA_DIR": str(data),
        "PRELOOP_ENV_FILE": str(root / "no.env"),
        "PRELOOP_DATABASE_URL": database_url,
        **env,
    }
    command = [sys.executable, "-m", "server", "serve", "--port", str(port)]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=base,
        cwd=cwd,
    ) as proc:
        lines: queue.Queue[str] = queue.Queue()
        output: list[str] = []

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            while not any(READY_LINE in line for line in output):
                try:
                    output.append(lines.get(timeout=START_TIMEOUT))
                except queue.Empty:
                    raise RuntimeError("replica did not start:\n" + "".join(output)) from None
            key_file = data / "initial-admin-key"
            key = key_file.read_text().strip() if key_file.exists() else admin_key
            yield LiveServer(
                url=f"http://127.0.0.1:{port}", admin_key=key, settings=make_settings(root)
            )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            reader.join(timeout=30)
