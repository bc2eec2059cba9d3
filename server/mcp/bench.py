"""``preloop bench mcp``: a trivial upstream tool called directly and through Preloop.

Both paths use the same upstream: the in-repo test server (``tests.servers.upstream_server``)
on streamable HTTP, as a subprocess; the benchmark therefore runs from a repository checkout
(its working directory must be the repo root). Preloop runs as a subprocess too
(``python -m server serve``) with a temporary data dir and a policy that allows ``echo``, so
its CPU time can be read from ``/proc/<pid>/stat`` apart from the client's. The client (the
MCP SDK's) runs in this process for both paths. Concurrency C means C concurrent sessions,
each making its share of the calls one after another.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import msgspec
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

SERVER_MODULE = "tests.servers.upstream_server"
START_TIMEOUT = 60.0

POLICY = """\
version: "1.0"
metadata: {name: mcp bench}
mcp_servers:
  - {name: demo, transport: streamable-http, url: "%(url)s"}
tools:
  - {name: echo, server: demo, action: allow}
defaults:
  action: deny
  unknown_tools: deny
"""


class PathResult(msgspec.Struct):
    concurrency: int
    path: str  # "direct" or "proxied"
    calls: int
    p50_ms: float
    p99_ms: float
    calls_per_s: float
    server_cpu_ms_per_call: float | None = None  # Preloop's CPU, proxied path only
    # The upstream's CPU (the MCP SDK's own server answering ``echo``): the baseline for what
    # one MCP hop costs a Python process.
    upstream_cpu_ms_per_call: float | None = None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (Linux), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _start_upstream(repo: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", SERVER_MODULE, "http", "--port", "0"],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT)
    line = lines[0].strip() if lines else ""
    if not line.startswith("READY "):
        _stop(process)
        raise RuntimeError(
            f"the test MCP server did not start (said {line!r}); run from a Preloop checkout"
        )
    return process, line.split()[1]


def serve_subprocess(
    repo: Path, port: int, env: dict[str, str]
) -> tuple[subprocess.Popen[str], str]:
    """``preloop serve`` on 127.0.0.1:``port`` as a subprocess, once ``/healthz`` answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"preloop serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError("preloop serve did not become healthy")
        time.sleep(0.1)


def _start_preloop(
    repo: Path, data: Path, upstream_url: str, engine: str
) -> tuple[subprocess.Popen[str], str, str]:
    policy = data / "policy.yaml"
    policy.write_text(POLICY % {"url": upstream_url})
    port = _free_port()
    env = {
        **os.environ,
        "PRELOOP_DATA_DIR": str(data / "data"),
        "PRELOOP_POLICY_FILE": str(policy),
        "PRELOOP_POLICY_CEL_ENGINE": engine,
        "PRELOOP_LOG_LEVEL": "WARNING",
        "HOME": str(data),
    }
    process, url = serve_subprocess(repo, port, env)
    admin = (data / "data" / "initial-admin-key").read_text().strip()
    created = httpx.post(
        f"{url}/api/v1/keys/",
        json={"name": "bench agent", "role": "agent"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    created.raise_for_status()
    return process, url, str(created.json()["secret"])


async def _measure(
    connect: Callable[[AsyncExitStack], Any],
    tool: str,
    calls: int,
    concurrency: int,
    pids: tuple[int, ...],
) -> tuple[list[float], float, list[float]]:
    """Latencies (s) of ``calls`` calls of ``tool`` over ``concurrency`` sessions, the wall
    time of the calls, and the CPU time each of ``pids`` spent meanwhile (sessions and warm-up
    calls excluded)."""
    latencies: list[float] = []
    async with AsyncExitStack() as stack:
        clients: list[Client] = [await connect(stack) for _ in range(concurrency)]
        for client in clients:  # warm-up: one call per session, not measured
            await client.call_tool(tool, {"text": "warm"})
        shares = [calls // concurrency + (i < calls % concurrency) for i in range(concurrency)]

        async def worker(client: Client, count: int) -> None:
            for _ in range(count):
                started = time.perf_counter()
                result = await client.call_tool(tool, {"text": "ping"})
                latencies.append(time.perf_counter() - started)
                if result.is_error:
                    raise RuntimeError(f"{tool} failed: {result.content}")

        cpu_before = [_cpu_seconds(pid) for pid in pids]
        began = time.perf_counter()
        async with anyio.create_task_group() as group:
            for client, count in zip(clients, shares, strict=True):
                group.start_soon(worker, client, count)
        wall = time.perf_counter() - began
        cpu = [_cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
    return latencies, wall, cpu


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> None:
    """``kill PID`` stops the benchmark like Ctrl-C: the ``finally`` blocks stop the upstream
    and Preloop subprocesses instead of leaving them running."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def run_mcp_bench(
    *,
    calls: int,
    concurrencies: tuple[int, ...],
    engine: str,
    progress: Callable[[str], None],
    repo: Path | None = None,
) -> list[PathResult]:
    repo = repo or Path.cwd()
    results: list[PathResult] = []
    _stop_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="preloop-bench-") as tmp:
        progress("starting the test MCP server (streamable HTTP)...")
        upstream, upstream_url = _start_upstream(repo)
        try:
            progress(f"starting preloop serve (engine {engine})...")
            preloop, url, key = _start_preloop(repo, Path(tmp), upstream_url, engine)
            try:

                async def direct(stack: AsyncExitStack) -> Client:
                    return await stack.enter_async_context(Client(upstream_url, cache=None))

                async def proxied(stack: AsyncExitStack) -> Client:
                    http = await stack.enter_async_context(
                        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"})
                    )
                    transport = streamable_http_client(f"{url}/mcp", http_client=http)
                    client = Client(transport, cache=None)
                    return await stack.enter_async_context(client)

                for concurrency in concurrencies:
                    for path, connect, tool in (
                        ("direct", direct, "echo"),
                        ("proxied", proxied, "demo__echo"),
                    ):
                        progress(f"{path}, concurrency {concurrency}: {calls} calls...")
                        latencies, wall, cpu = anyio.run(
                            _measure,
                            connect,
                            tool,
                            calls,
                            concurrency,
                            (preloop.pid, upstream.pid),
                        )
                        per_call = [seconds * 1000 / len(latencies) for seconds in cpu]
                        results.append(
                            PathResult(
                                concurrency=concurrency,
                                path=path,
                                calls=len(latencies),
                                p50_ms=_percentile(latencies, 0.50) * 1000,
                                p99_ms=_percentile(latencies, 0.99) * 1000,
                                calls_per_s=len(latencies) / wall,
                                server_cpu_ms_per_call=per_call[0] if path == "proxied" else None,
                                upstream_cpu_ms_per_call=per_call[1],
                            )
                        )
            finally:
                _stop(preloop)
        finally:
            _stop(upstream)
    return results
