"""``preloop bench start``: how fast ``preloop serve`` answers, and how much memory it holds.

Each run starts ``python -m server serve`` (SQLite) twice: on a new data directory (migrations
and the first start included), then again on the same one (a restart). Measured per start,
from process start: ``/healthz`` 200 and the server's CPU time by then (``/proc/<pid>/stat``:
less sensitive than the wall clock to a busy machine), then the first REST answer (an admin
key's ``GET /api/v1/policies/versions``: the Litestar app is up), then, after a quiet
``IDLE_SECONDS``, the idle RSS (``/proc/<pid>/status``), then how long the first MCP request
takes (an ``initialize`` POSTed to ``/mcp``: the MCP endpoint is built on first use) and the
RSS after it. Medians over the runs, with the load average before and after, since this
machine is shared.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from server.model_gateway.bench import _cpu_seconds, _free_ports, _rss_mb

START_TIMEOUT = 60.0
IDLE_SECONDS = 2.0
TARGET_START_S = 1.5  # issue 13, both for a new data directory and a restart
TARGET_RSS_MB = 120.0
INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-03-26",
            "capabilities": {},
            "clientInfo": {"name": "preloop-bench", "version": "1"},
        },
    }
).encode()


class Start(msgspec.Struct):
    data_dir: str  # "new" | "restart"
    healthz_s: float  # process start → /healthz 200
    healthz_cpu_s: float  # the server's CPU time by then (less sensitive to a busy machine)
    api_s: float  # process start → the first REST answer
    idle_rss_mb: float
    mcp_s: float  # the first /mcp request (after the idle pause) → its answer
    mcp_rss_mb: float


class StartBench(msgspec.Struct):
    runs: list[Start]
    load_before: float
    load_after: float


def _request(url: str, **options: Any) -> urllib.request.Request:
    return urllib.request.Request(url, **options)  # noqa: S310 - http://127.0.0.1 only


def _answers(request: urllib.request.Request) -> bool:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our URL
            response.read()
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait(
    request: urllib.request.Request, process: subprocess.Popen[bytes], started: float
) -> float:
    """Seconds from ``started`` until ``request`` is answered with a 200."""
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(request):
        if process.poll() is not None:
            raise RuntimeError(f"preloop serve exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"preloop serve did not answer {request.full_url}")
        time.sleep(0.005)
    return time.perf_counter() - started


def _start(data: str, port: int, admin_key: str, kind: str) -> Start:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PRELOOP_")},
        "PRELOOP_DATA_DIR": data,
        "PRELOOP_ADMIN_KEY": admin_key,
        "PRELOOP_LOG_LEVEL": "WARNING",
        "PRELOOP_ENV_FILE": str(Path(data) / "none.env"),
    }
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {admin_key}"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        healthz = _wait(_request(f"{url}/healthz"), process, started)
        healthz_cpu = _cpu_seconds(process.pid)
        versions = _request(f"{url}/api/v1/policies/versions", headers=auth)
        api = _wait(versions, process, started)
        time.sleep(IDLE_SECONDS)
        idle = _rss_mb(process.pid)
        mcp_started = time.perf_counter()
        initialize = _request(
            f"{url}/mcp",
            data=INITIALIZE,
            method="POST",
            headers={
                **auth,
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
        )
        mcp = _wait(initialize, process, mcp_started)
        return Start(
            data_dir=kind,
            healthz_s=healthz,
            healthz_cpu_s=healthz_cpu,
            api_s=api,
            idle_rss_mb=idle,
            mcp_s=mcp,
            mcp_rss_mb=_rss_mb(process.pid),
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_start_bench(runs: int, progress: Callable[[str], None]) -> StartBench:
    load_before = os.getloadavg()[0]
    (port,) = _free_ports(1)
    admin_key = "pl_bench_" + secrets.token_hex(24)
    measured: list[Start] = []
    for run in range(1, runs + 1):
        with tempfile.TemporaryDirectory(prefix="preloop-bench-start-") as data:
            for kind in ("new", "restart"):
                progress(f"run {run}/{runs}: {kind} data directory...")
                measured.append(_start(data, port, admin_key, kind))
    return StartBench(runs=measured, load_before=load_before, load_after=os.getloadavg()[0])


def medians(result: StartBench, kind: str) -> Start:
    rows = [r for r in result.runs if r.data_dir == kind]
    return Start(
        data_dir=kind,
        healthz_s=statistics.median(r.healthz_s for r in rows),
        healthz_cpu_s=statistics.median(r.healthz_cpu_s for r in rows),
        api_s=statistics.median(r.api_s for r in rows),
        idle_rss_mb=statistics.median(r.idle_rss_mb for r in rows),
        mcp_s=statistics.median(r.mcp_s for r in rows),
        mcp_rss_mb=statistics.median(r.mcp_rss_mb for r in rows),
    )
