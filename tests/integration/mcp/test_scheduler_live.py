"""The scheduler in a running server: requests end at their deadline with nobody polling,
and escalate once; an agent held for a synchronous approval is told it expired."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.mcp.support import (
    REPO,
    agent,
    agent_key,
    held_approval_id,
    raw_call,
    tool_calls,
)

POLICY = """\
version: "1.0"
metadata: {name: scheduler test}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
approval_workflows:
  - {name: quick-sync, timeout_seconds: 1, on_timeout: expire}
  - name: quick-async
    timeout_seconds: 2
    async_approval: true
    approvers: ["role:admin"]
    escalation: {after_seconds: 1, approvers: ["team:leads"]}
tools:
  - {name: getenv, server: demo, action: require_approval, approval_workflow: quick-sync}
  - {name: add, server: demo, action: require_approval, approval_workflow: quick-async}
defaults: {action: deny, unknown_tools: deny}
"""


@pytest.fixture
def scheduled_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % {"python": sys.executable})
    monkeypatch.chdir(REPO)  # the upstream runs `-m tests.servers...` from the repo root
    settings = make_settings(
        tmp_path,
        PRELOOP_POLICY_FILE=str(policy),
        PRELOOP_SERVER_SCHEDULER_SECONDS="0.05",
        # No heartbeat re-reads the request: the agent wakes on the scheduler's event.
        PRELOOP_MCP_APPROVAL_HEARTBEAT_SECONDS="3600",
    )
    with run_live(settings) as live:
        yield live


async def audit_of(live: LiveServer, kind: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        response = await http.get(
            "/api/v1/audit/",
            params={"kind": kind, "order": "oldest"},
            headers={"Authorization": f"Bearer {live.admin_key}"},
        )
    response.raise_for_status()
    return [{"actor": e["actor"], **e["data"]} for e in response.json()]


async def test_a_sync_waiting_agent_is_told_its_request_expired(
    scheduled_server: LiveServer,
) -> None:
    key = await agent_key(scheduled_server)
    async with agent(scheduled_server, key, "auto") as client, asyncio.timeout(30):
        result = await raw_call(client, "demo__getenv", {"name": "HOME"})
    assert result["isError"] is True
    assert "expired by system" in result["content"][0]["text"]
    events = await tool_calls(scheduled_server)
    assert [(e["tool"], e["status"]) for e in events] == [("getenv", "expired")]


async def test_an_unwatched_request_escalates_once_then_ends(scheduled_server: LiveServer) -> None:
    key = await agent_key(scheduled_server)
    async with agent(scheduled_server, key, "auto") as client:
        held = await raw_call(client, "demo__add", {"a": 1, "b": 2})
    approval_id = held_approval_id(held)
    # The agent is gone: nothing but the scheduler can end the request now.
    headers = {"Authorization": f"Bearer {scheduled_server.admin_key}"}
    async with (
        httpx.AsyncClient(base_url=scheduled_server.url, headers=headers, timeout=30) as http,
        asyncio.timeout(30),
    ):
        while True:
            current = (await http.get(f"/api/v1/approvals/{approval_id}")).json()["request"]
            if current["status"] != "pending":
                break
            await asyncio.sleep(0.05)
    assert (current["status"], current["decided_by"]) == ("denied", "system")
    escalated = await audit_of(scheduled_server, "approval.escalated")
    assert [(e["actor"], e["request_id"], e["added"]) for e in escalated] == [
        ("system", approval_id, ["team:leads"])
    ]
