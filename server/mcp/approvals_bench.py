"""``preloop bench approvals``: from a REST decision to the waiting agent's result.

An agent (the MCP SDK client) calls a tool whose policy requires a synchronous approval and
waits; once the request is pending, the approver approves it through the REST API. One round
is timed from just before the ``POST .../approve`` to the agent receiving the tool's result:
the decision, the event that wakes the held call, the (trivial) upstream call and the answer.

Two setups, each ``python -m server serve`` subprocesses run from a repository checkout (the
upstream is the in-repo test server over stdio):

- ``one process``: one server on SQLite; the agent and the decision use the same server.
- ``two replicas``: two servers on one PostgreSQL; the agent waits on A, the decision goes to
  B, and the event crosses through LISTEN/NOTIFY. PostgreSQL is ``--postgres-url`` (an empty
  database the benchmark may migrate), else a throwaway local cluster when ``initdb`` and
  ``postgres`` are installed (``tests/pg.py``), else the setup is skipped.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import msgspec
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from server.mcp.bench import _free_port, _percentile, _stop, serve_subprocess

POLICY = """\
version: "1.0"
metadata: {name: approvals bench}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.upstream_server", "stdio"]
approval_workflows:
  - {name: bench-sync, timeout_seconds: 600, async_approval: false}
tools:
  - {name: echo, server: demo, action: require_approval, approval_workflow: bench-sync}
defaults: {action: deny, unknown_tools: deny}
"""


class SetupResult(msgspec.Struct):
    setup: str  # "one process" | "two replicas"
    database: str  # "sqlite" | "postgresql"
    rounds: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    # Part of it: until the REST call that decided returned (the decision's own cost).
    decide_p50_ms: float
    decide_p99_ms: float


class _Replica(msgspec.Struct):
    url: str
    admin_key: str


def _start(repo: Path, root: Path, database_url: str, admin_key: str) -> tuple[Any, _Replica]:
    root.mkdir(parents=True, exist_ok=True)
    policy = root / "policy.yaml"
    policy.write_text(POLICY % {"python": sys.executable})
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRELOOP_")}
    env |= {
        "PRELOOP_DATA_DIR": str(root / "data"),
        "PRELOOP_ENV_FILE": str(root / "no.env"),
        "PRELOOP_POLICY_FILE": str(policy),
        "PRELOOP_LOG_LEVEL": "WARNING",
        # The agent must wake on the decision's event, never on a heartbeat's re-read.
        "PRELOOP_MCP_APPROVAL_HEARTBEAT_SECONDS": "3600",
        "HOME": str(root),
    }
    if database_url:
        env["PRELOOP_DATABASE_URL"] = database_url
    process, url = serve_subprocess(repo, port, env)
    key_file = root / "data" / "initial-admin-key"
    key = key_file.read_text().strip() if key_file.exists() else admin_key
    return process, _Replica(url=url, admin_key=key)


@contextmanager
def _replicas(repo: Path, root: Path, database_url: str, count: int) -> Iterator[list[_Replica]]:
    """``count`` servers on one database, started one after another (the first migrates and
    makes the admin key)."""
    processes: list[Any] = []
    replicas: list[_Replica] = []
    try:
        for n in range(count):
            key = replicas[0].admin_key if replicas else ""
            process, replica = _start(repo, root / f"replica-{n}", database_url, key)
            processes.append(process)
            replicas.append(replica)
        yield replicas
    finally:
        for process in processes:
            _stop(process)


async def _rounds(
    agent_on: _Replica, decide_on: _Replica, rounds: int
) -> tuple[list[float], list[float]]:
    admin = {"Authorization": f"Bearer {agent_on.admin_key}"}
    async with httpx.AsyncClient(timeout=30) as http:
        created = await http.post(
            f"{agent_on.url}/api/v1/keys/",
            json={"name": "bench agent", "role": "agent"},
            headers=admin,
        )
        created.raise_for_status()
        secret = str(created.json()["secret"])
        latencies: list[float] = []
        deciding: list[float] = []
        async with _agent(agent_on.url, secret) as client:
            for n in range(rounds + 1):  # round 0 warms up, not measured
                call = asyncio.create_task(client.call_tool("demo__echo", {"text": f"r{n}"}))
                request_id = await _pending(http, decide_on, call)
                started = time.perf_counter()
                approved = await http.post(
                    f"{decide_on.url}/api/v1/approvals/{request_id}/approve",
                    json={},
                    headers={"Authorization": f"Bearer {decide_on.admin_key}"},
                )
                decided = time.perf_counter() - started
                approved.raise_for_status()
                result = await asyncio.wait_for(call, timeout=30)
                elapsed = time.perf_counter() - started
                if result.is_error:
                    raise RuntimeError(f"the approved call failed: {result.content}")
                if n:
                    latencies.append(elapsed)
                    deciding.append(decided)
    return latencies, deciding


async def _pending(http: httpx.AsyncClient, on: _Replica, call: asyncio.Task[Any]) -> str:
    """The id of the request the held call opened (not timed)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if call.done():
            raise RuntimeError(f"the call ended before its approval: {call.result()}")
        found = await http.get(
            f"{on.url}/api/v1/approvals/",
            params={"status": "pending"},
            headers={"Authorization": f"Bearer {on.admin_key}"},
        )
        found.raise_for_status()
        if found.json():
            return str(found.json()[0]["id"])
        await asyncio.sleep(0.005)
    raise RuntimeError("the held call never opened an approval request")


@asynccontextmanager
async def _agent(url: str, key: str) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(30.0, read=300.0)
    ) as http:
        transport = streamable_http_client(f"{url}/mcp", http_client=http)
        async with Client(transport, cache=None) as client:
            yield client


def _result(setup: str, database: str, measured: tuple[list[float], list[float]]) -> SetupResult:
    latencies, deciding = measured
    return SetupResult(
        setup=setup,
        database=database,
        rounds=len(latencies),
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        max_ms=max(latencies) * 1000,
        decide_p50_ms=_percentile(deciding, 0.50) * 1000,
        decide_p99_ms=_percentile(deciding, 0.99) * 1000,
    )


@contextmanager
def _postgres(postgres_url: str, progress: Callable[[str], None]) -> Iterator[str | None]:
    """The PostgreSQL URL to use: the given one, or a throwaway cluster, or ``None``."""
    if postgres_url:
        yield postgres_url
        return
    try:
        from tests.pg import LocalCluster, binaries_available  # a repository checkout
    except ImportError:
        progress("no --postgres-url and no tests/pg.py: skipping two replicas")
        yield None
        return
    if not binaries_available():
        progress("no --postgres-url and no PostgreSQL binaries: skipping two replicas")
        yield None
        return
    progress("starting a throwaway PostgreSQL cluster...")
    cluster = LocalCluster.start()
    try:
        yield cluster.admin_url.render_as_string(hide_password=False)
    finally:
        cluster.stop()


def run_approvals_bench(
    *,
    rounds: int,
    postgres_url: str,
    progress: Callable[[str], None],
    repo: Path | None = None,
) -> list[SetupResult]:
    repo = repo or Path.cwd()
    results: list[SetupResult] = []
    with tempfile.TemporaryDirectory(prefix="preloop-bench-") as tmp:
        progress("one process (SQLite)...")
        with _replicas(repo, Path(tmp) / "sqlite", "", 1) as (only,):
            results.append(
                _result("one process", "sqlite", asyncio.run(_rounds(only, only, rounds)))
            )
        with _postgres(postgres_url, progress) as url:
            if url is not None:
                progress("two replicas (PostgreSQL)...")
                with _replicas(repo, Path(tmp) / "pg", url, 2) as (a, b):
                    measured = asyncio.run(_rounds(a, b, rounds))
                results.append(_result("two replicas", "postgresql", measured))
    return results
