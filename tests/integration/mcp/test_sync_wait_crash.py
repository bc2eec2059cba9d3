"""A server killed while a call waits for synchronous approval: the restarted server cancels
the request (the approver can no longer approve a call nothing would run) and records the
cut-off call (docs/decisions/0049)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from hub.clock import FrozenClock
from hub.memory import InMemoryStorage
from hub.sync_waits import CRASHED
from server.bootstrap import open_hub
from server.db.pg_bus import asyncpg_dsn
from tests.integration.conftest import LiveServer, make_settings
from tests.integration.mcp.support import REPO, agent, agent_key, eventually, raw_call, tool_calls
from tests.integration.replicas import (
    READY_LINE,
    Process,
    _wait_for_port,
    preloop_env,
    preloop_process,
)
from tests.integration.test_serve import free_port

POLICY = """\
version: "1.0"
metadata: {name: sync crash}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
    env: {TEST_SERVER_CALL_LOG: "%(calls)s"}
approval_workflows:
  - {name: now, timeout_seconds: 600}
tools:
  - {name: getenv, server: demo, action: require_approval, approval_workflow: now}
defaults: {action: deny, unknown_tools: deny}
"""


@contextmanager
def server(root: Path, url: str, env: dict[str, str]) -> Iterator[tuple[LiveServer, Process]]:
    port = free_port()
    environ = preloop_env(root, url, **env)
    with preloop_process(
        ["serve", "--port", str(port)], environ, cwd=REPO, ready=READY_LINE
    ) as process:
        _wait_for_port(port)
        key = (root / "data" / "initial-admin-key").read_text().strip()
        yield (
            LiveServer(url=f"http://127.0.0.1:{port}", admin_key=key, settings=make_settings(root)),
            process,
        )


async def request_of(live: LiveServer, status: str) -> dict[str, Any] | None:
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        found = (await http.get("/api/v1/approvals/", params={"status": status})).json()
    return found[0] if found else None


async def sync_wait_of(postgres_url: str, request_id: str) -> bool | None:
    connection = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        found = await connection.fetchval(
            "SELECT count(*) FROM sync_waits WHERE request_id = $1", request_id
        )
    finally:
        await connection.close()
    return True if found else None


async def test_a_killed_servers_held_call_is_cancelled_and_recorded_after_restart(
    tmp_path: Path, postgres_url: str
) -> None:
    calls = tmp_path / "upstream-calls.jsonl"
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % {"python": sys.executable, "calls": calls})
    env = {
        "PRELOOP_POLICY_FILE": str(policy),
        "PRELOOP_SERVER_LEASE_SECONDS": "2",
        "PRELOOP_SERVER_SCHEDULER_SECONDS": "0.2",
    }
    root = tmp_path / "a"
    with server(root, postgres_url, env) as (before, process):
        key = await agent_key(before)
        held: list[dict[str, Any]] = []
        with contextlib.suppress(Exception):  # the agent's connection dies with the server
            async with agent(before, key, "auto") as client:
                waiting = asyncio.create_task(raw_call(client, "demo__getenv", {"name": "HOME"}))
                held.append(await eventually(lambda: request_of(before, "pending")))
                # The request is listed as soon as it is opened; the wait is stored just
                # after: crash once it is (a crash in between leaves the request to expire).
                await eventually(lambda: sync_wait_of(postgres_url, held[0]["id"]))
                process.proc.kill()  # a crash: nothing withdraws the request
                await waiting
    [pending] = held
    with server(root, postgres_url, env) as (after, _):
        cancelled = await eventually(lambda: request_of(after, "cancelled"))
        headers = {"Authorization": f"Bearer {after.admin_key}"}
        async with httpx.AsyncClient(base_url=after.url, headers=headers, timeout=30) as http:
            late = await http.post(f"/api/v1/approvals/{pending['id']}/approve", json={})
        records = await tool_calls(after)
    assert (pending["id"], "system", CRASHED) == (
        cancelled["id"],
        cancelled["decided_by"],
        cancelled["comment"],
    )
    assert 409 == late.status_code, late.text
    assert [(pending["id"], "cancelled", CRASHED)] == [
        (r["approval_id"], r["status"], r["error"]) for r in records
    ]
    assert not calls.exists()  # the upstream never ran it


class CutoffRecordingWaits:
    """The in-memory sync-wait store, remembering the cut-off each sweep asked for."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.cutoffs: list[datetime] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def orphaned(self, stale_before: datetime, *, limit: int = 100) -> Any:
        self.cutoffs.append(stale_before)
        return await self._inner.orphaned(stale_before, limit=limit)


async def test_the_lease_setting_is_the_lease_the_sweep_uses(tmp_path: Path) -> None:
    """PRELOOP_SERVER_LEASE_SECONDS decides when a wait counts as cut off (not the default)."""
    storage = InMemoryStorage()
    recording = CutoffRecordingWaits(storage.sync_waits)
    storage.sync_waits = recording  # type: ignore[assignment]
    clock = FrozenClock()
    settings = make_settings(tmp_path, PRELOOP_SERVER_LEASE_SECONDS="2")
    hub = await open_hub(settings, clock=clock, storage=storage)
    try:
        await hub.scheduler.tick()
    finally:
        await hub.close()
    assert [clock.now() - timedelta(seconds=2)] == recording.cutoffs
