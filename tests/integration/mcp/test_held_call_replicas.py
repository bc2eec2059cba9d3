"""An async call held on one replica runs once, on another replica or after a restart.

Its real arguments are kept sealed in PostgreSQL (docs/decisions/0048); the upstream's call
counter (one log shared by the replicas' upstream processes) shows it ran exactly once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx

from server.custody.local import new_key_entry
from tests.integration.conftest import LiveServer
from tests.integration.mcp.support import REPO, agent, agent_key, held_approval_id, raw_call
from tests.integration.replicas import serve_replica

POLICY = """\
version: "1.0"
metadata: {name: held calls}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
    env: {TEST_SERVER_CALL_LOG: "%(calls)s"}
approval_workflows:
  - {name: later, timeout_seconds: 600, async_approval: true}
tools:
  - {name: add, server: demo, action: require_approval, approval_workflow: later}
defaults: {action: deny, unknown_tools: deny}
"""


def replica_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    calls = tmp_path / "upstream-calls.jsonl"
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % {"python": sys.executable, "calls": calls})
    # One sealing key on every replica, as docs/configuration.md asks of PostgreSQL setups.
    return {"PRELOOP_POLICY_FILE": str(policy), "PRELOOP_SECRETS_KEYS": new_key_entry()}, calls


def upstream_calls(calls: Path) -> list[dict[str, Any]]:
    if not calls.exists():
        return []
    return [json.loads(line) for line in calls.read_text().splitlines()]


async def hold(live: LiveServer, key: str) -> str:
    async with agent(live, key, "auto") as client:
        held = await raw_call(client, "demo__add", {"a": 2, "b": 3})
    approval_id: str = held_approval_id(held)
    return approval_id


async def approve(live: LiveServer, approval_id: str) -> None:
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        approved = await http.post(f"/api/v1/approvals/{approval_id}/approve", json={})
    assert 200 == approved.status_code, approved.text


async def poll(live: LiveServer, key: str, approval_id: str) -> dict[str, Any]:
    async with agent(live, key, "auto") as client:
        return await raw_call(client, "get_approval_status", {"approval_id": approval_id})


async def test_a_call_held_on_one_replica_runs_once_on_another(
    tmp_path: Path, postgres_url: str
) -> None:
    env, calls = replica_env(tmp_path)
    with serve_replica(tmp_path / "a", postgres_url, cwd=REPO, **env) as a:  # noqa: SIM117
        with serve_replica(
            tmp_path / "b", postgres_url, cwd=REPO, admin_key=a.admin_key, **env
        ) as b:
            key = await agent_key(a)
            approval_id = await hold(a, key)
            await approve(a, approval_id)
            ran = await poll(b, key, approval_id)
            again = await poll(b, key, approval_id)
            on_a = await poll(a, key, approval_id)
    assert ran.get("isError") in (None, False), ran
    assert {"sum": 5} == ran["structuredContent"]
    assert ran == again == on_a
    assert [{"tool": "add", "arguments": {"a": 2, "b": 3}}] == upstream_calls(calls)


async def test_a_call_held_before_a_restart_runs_once_after_it(
    tmp_path: Path, postgres_url: str
) -> None:
    env, calls = replica_env(tmp_path)
    with serve_replica(tmp_path / "a", postgres_url, cwd=REPO, **env) as before:
        key = await agent_key(before)
        approval_id = await hold(before, key)
    with serve_replica(tmp_path / "a", postgres_url, cwd=REPO, **env) as after:
        await approve(after, approval_id)
        ran = await poll(after, key, approval_id)
        again = await poll(after, key, approval_id)
    assert ran.get("isError") in (None, False), ran
    assert {"sum": 5} == ran["structuredContent"]
    assert ran == again
    assert [{"tool": "add", "arguments": {"a": 2, "b": 3}}] == upstream_calls(calls)
