"""A PostgreSQL outage mid-run: no tool runs without its audit record (docs/decisions/0047).

The live server's database refuses connections for a while (its connections are terminated
and new ones are not allowed); the upstream counts the calls it ran. Once the database is back,
every call the upstream ran has its ``tool.call`` record, and calls made during the outage were
refused, never forwarded, including an approved asynchronous call (it runs once, afterwards).
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.mcp.support import (
    REPO,
    agent,
    agent_key,
    held_approval_id,
    raw_call,
    text_of,
    tool_calls,
)
from tests.pg import PostgresDatabases

POLICY = """\
version: "1.0"
metadata: {name: audit outage}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
    env: {TEST_SERVER_CALL_LOG: "%(calls)s"}
approval_workflows:
  - {name: later, timeout_seconds: 600, async_approval: true}
tools:
  - {name: echo, server: demo, action: allow}
  - {name: add, server: demo, action: require_approval, approval_workflow: later}
defaults: {action: deny, unknown_tools: deny}
"""


@pytest.fixture
def served(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveServer, Path]]:
    calls = tmp_path / "upstream-calls.jsonl"
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % {"python": sys.executable, "calls": calls})
    monkeypatch.chdir(REPO)  # the upstream runs `-m tests.servers...` from the repo root
    settings = make_settings(
        tmp_path,
        PRELOOP_POLICY_FILE=str(policy),
        PRELOOP_DATABASE_URL=postgres_url,
        # The key and the policy stay cached through the outage, so calls reach the firewall.
        PRELOOP_SERVER_CACHE_SECONDS="3600",
    )
    with run_live(settings) as live:
        yield live, calls


@asynccontextmanager
async def outage(databases: PostgresDatabases, url: str) -> AsyncIterator[None]:
    """The database refuses connections and drops the ones it has, until the block ends."""
    name = make_url(url).database
    admin = await asyncpg.connect(str(databases.admin_url.set(drivername="postgresql")))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        await admin.close()


def upstream_calls(calls: Path) -> list[dict[str, Any]]:
    if not calls.exists():
        return []
    return [json.loads(line) for line in calls.read_text().splitlines()]


async def test_no_call_runs_without_its_record_through_an_outage(
    served: tuple[LiveServer, Path], postgres_databases: PostgresDatabases, postgres_url: str
) -> None:
    live, calls = served
    key = await agent_key(live)
    admin = {"Authorization": f"Bearer {live.admin_key}"}
    async with (
        agent(live, key, "auto") as client,
        httpx.AsyncClient(base_url=live.url, headers=admin, timeout=30) as http,
    ):
        before = await raw_call(client, "demo__echo", {"text": "before"})
        assert "before" == text_of(before)
        held = await raw_call(client, "demo__add", {"a": 2, "b": 3})
        approval_id = held_approval_id(held)
        approved = await http.post(f"/api/v1/approvals/{approval_id}/approve", json={})
        assert 200 == approved.status_code, approved.text

        async with outage(postgres_databases, postgres_url):
            during = [
                await raw_call(client, "demo__echo", {"text": f"during {n}"}) for n in range(5)
            ]
            polled = await raw_call(client, "get_approval_status", {"approval_id": approval_id})
        for refused in during:
            assert refused["isError"] is True, refused
            assert text_of(refused).startswith("Not run: Preloop cannot write its audit log")
        assert polled["isError"] is True, polled
        assert f"Approval {approval_id} could not be checked" in text_of(polled)
        assert "Nothing was run" in text_of(polled)
        assert ["echo"] == [c["tool"] for c in upstream_calls(calls)]  # "before" alone

        after = await raw_call(client, "demo__echo", {"text": "after"})
        assert "after" == text_of(after)
        ran = await raw_call(client, "get_approval_status", {"approval_id": approval_id})
        again = await raw_call(client, "get_approval_status", {"approval_id": approval_id})
        assert {"sum": 5} == ran["structuredContent"]
        assert ran == again

    ran_upstream = [(c["tool"], c["arguments"]) for c in upstream_calls(calls)]
    assert [
        ("echo", {"text": "before"}),
        ("echo", {"text": "after"}),
        ("add", {"a": 2, "b": 3}),
    ] == ran_upstream
    recorded = [
        (e["tool"], e["args"])
        for e in await tool_calls(live)
        if e.get("status") == "ok" and "call_id" in e
    ]
    assert ran_upstream == recorded
