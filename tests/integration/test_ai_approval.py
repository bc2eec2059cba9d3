"""AI approval end to end: a real MCP agent's call held by an ``approval_type: ai`` workflow on
the real server (uvicorn, SQLite), reviewed through the server's model gateway.

Without a gateway the workflow's fallback applies, with a note in the audit: ``deny`` refuses
the call, ``escalate`` hands it to people, whose approval runs it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.mcp.support import REPO, agent, agent_key, eventually, raw_call, text_of

POLICY = """\
version: "1.0"
metadata: {name: ai approval test}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.upstream_server", "stdio"]
approval_workflows:
  - name: ai-strict
    timeout_seconds: 120
    approval_type: ai
    ai: {model: gpt-4o-mini, fallback: deny}
  - name: ai-then-people
    timeout_seconds: 120
    approvers: ["role:admin"]
    approval_type: ai
    ai: {model: gpt-4o-mini, fallback: escalate, instructions: "Only echo greetings."}
  - name: ai-async
    timeout_seconds: 120
    async_approval: true
    approval_type: ai
    ai: {model: gpt-4o-mini, fallback: approve}
tools:
  - {name: echo, server: demo, action: require_approval, approval_workflow: ai-strict}
  - {name: image, server: demo, action: require_approval, approval_workflow: ai-async}
  - {name: add, server: demo, action: require_approval, approval_workflow: ai-then-people}
defaults:
  action: deny
  unknown_tools: deny
"""


@pytest.fixture
def ai_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.chdir(REPO)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY % {"python": sys.executable})
    with run_live(make_settings(tmp_path, PRELOOP_POLICY_FILE=str(policy_file))) as live:
        yield live


async def audit_of(live: LiveServer, kind: str | None) -> list[dict[str, Any]]:
    """The audit events of one kind (every kind: ``None``), oldest first."""
    params = {"order": "oldest", "limit": "1000", **({"kind": kind} if kind else {})}
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        response = await http.get(
            "/api/v1/audit/",
            params=params,
            headers={"Authorization": f"Bearer {live.admin_key}"},
        )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


async def test_without_a_gateway_fallback_deny_refuses_the_call(ai_server: LiveServer) -> None:
    key = await agent_key(ai_server)
    async with agent(ai_server, key, "auto") as client:
        result = await raw_call(client, "demo__echo", {"text": "hello"})
    assert result.get("isError") is True
    text = text_of(result)
    assert "denied by system" in text
    assert "AI review fallback (deny): no model gateway is configured on this server" in text
    (reviewed,) = await audit_of(ai_server, "approval.ai_reviewed")
    assert reviewed["actor"] == "system"
    assert reviewed["data"]["outcome"] == "deny"
    assert reviewed["data"]["by"] == "fallback"


async def test_fallback_escalate_hands_the_call_to_people(ai_server: LiveServer) -> None:
    key = await agent_key(ai_server)
    admin = {"Authorization": f"Bearer {ai_server.admin_key}"}
    async with (
        agent(ai_server, key, "auto") as client,
        httpx.AsyncClient(base_url=ai_server.url, headers=admin, timeout=30) as http,
    ):
        waiting = asyncio.create_task(raw_call(client, "demo__add", {"a": 2, "b": 3}))

        async def escalated() -> str | None:
            events = await audit_of(ai_server, "approval.ai_reviewed")
            return events[0]["data"]["request_id"] if events else None

        request_id = await eventually(escalated)
        pending = await http.get(f"/api/v1/approvals/{request_id}")
        assert pending.json()["request"]["status"] == "pending"
        approved = await http.post(f"/api/v1/approvals/{request_id}/approve", json={})
        assert approved.status_code == 200, approved.text
        result = await asyncio.wait_for(waiting, timeout=60)
    assert result.get("isError") is not True, result
    assert "5" in text_of(result)
    (reviewed,) = await audit_of(ai_server, "approval.ai_reviewed")
    assert reviewed["data"]["outcome"] == "escalate"


async def test_an_async_ai_workflow_says_so_and_its_outcome_is_polled(
    ai_server: LiveServer,
) -> None:
    key = await agent_key(ai_server)
    async with agent(ai_server, key, "auto") as client:
        held = await raw_call(client, "demo__image", {})
        assert "This call needs AI approval (workflow 'ai-async')" in text_of(held)
        approval_id = held["structuredContent"]["approval_id"]

        async def decided() -> dict[str, Any] | None:
            polled = await raw_call(client, "get_approval_status", {"approval_id": approval_id})
            structured = polled.get("structuredContent") or {}
            return None if structured.get("status") == "pending" else polled

        result = await eventually(decided)
    assert result.get("isError") is not True, result
    assert [c["type"] for c in result["content"]] == ["text", "image"]  # fallback approve: it ran
    (decided_event,) = await audit_of(ai_server, "approval.decided")
    assert (decided_event["actor"], decided_event["data"]["status"]) == ("system", "approved")
