"""Two ``preloop serve`` replicas on one PostgreSQL: a call held on one is decided on the other.

The agent (the MCP SDK client) waits on replica A; the approver decides through replica B's
REST API; A's agent gets the result through PostgreSQL LISTEN/NOTIFY, nobody polling.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import LiveServer
from tests.integration.mcp.conftest import GATEWAY_POLICY
from tests.integration.mcp.support import REPO, agent, agent_key, raw_call, tool_calls
from tests.integration.replicas import serve_replica


@pytest.fixture
def two_replicas(tmp_path: Path, postgres_url: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(GATEWAY_POLICY % {"python": sys.executable})
    env = {
        "PRELOOP_POLICY_FILE": str(policy),
        "PRELOOP_MCP_ENV_ALLOW": "DEMO_TOOLSET",
        "DEMO_TOOLSET": "v1",
        # No heartbeat re-reads the request within the test: only the event can wake A.
        "PRELOOP_MCP_APPROVAL_HEARTBEAT_SECONDS": "3600",
    }
    with serve_replica(tmp_path / "a", postgres_url, cwd=REPO, **env) as a:  # noqa: SIM117
        # B starts once A made the first admin key: one installation, two replicas.
        with serve_replica(
            tmp_path / "b", postgres_url, cwd=REPO, admin_key=a.admin_key, **env
        ) as b:
            yield a, b


async def test_a_call_held_on_one_replica_is_approved_on_the_other(
    two_replicas: tuple[LiveServer, LiveServer],
) -> None:
    a, b = two_replicas
    key = await agent_key(a)
    headers = {"Authorization": f"Bearer {b.admin_key}"}
    async with (
        agent(a, key, "auto") as client,
        httpx.AsyncClient(base_url=b.url, headers=headers, timeout=30) as on_b,
    ):
        waiting = asyncio.create_task(raw_call(client, "demo__getenv", {"name": "HOME"}))
        async with asyncio.timeout(30):
            while True:  # the request appears once the call is held; B reads the shared DB
                pending = (
                    await on_b.get("/api/v1/approvals/", params={"status": "pending"})
                ).json()
                if pending:
                    break
                await asyncio.sleep(0.05)
        assert not waiting.done()
        approved = await on_b.post(f"/api/v1/approvals/{pending[0]['id']}/approve", json={})
        assert approved.status_code == 200, approved.text
        async with asyncio.timeout(30):  # the workflow's deadline is 60 s: no timeout wakes A
            result = await waiting
    assert result.get("isError") in (None, False), result
    assert result["structuredContent"]["name"] == "HOME"
    events = await tool_calls(a)
    assert [(e["tool"], e["decision"], e["status"]) for e in events] == [
        ("getenv", "require_approval", "ok")
    ]
