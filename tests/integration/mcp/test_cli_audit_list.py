"""``preloop audit list`` against a live server after real MCP calls: the table leads with
who called what and what was decided; ``--json`` is the API's answer unchanged."""

from __future__ import annotations

import json
import re

import httpx
from click.testing import CliRunner

from server.cli.main import cli
from tests.integration.conftest import LiveServer
from tests.integration.mcp.support import agent, held_approval_id, new_agent_key, raw_call

HEADER = ["TIME", "KIND", "ACTOR", "TARGET", "DECISION", "RULE", "STATUS", "DETAILS"]


def audit_list(live: LiveServer, *args: str) -> str:
    argv = ["audit", "list", *args, "--url", live.url, "--key", live.admin_key]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert 0 == result.exit_code, result.stderr
    return result.stdout


def cells(out: str) -> list[list[str]]:
    """The table's lines split into cells (columns are two or more spaces apart)."""
    return [re.split(r" {2,}", line) for line in out.splitlines()]


async def test_tool_calls_show_target_decision_rule_and_status_first(
    gateway_server: LiveServer,
) -> None:
    secret, key_id = await new_agent_key(gateway_server, "laptop")
    admin = {"Authorization": f"Bearer {gateway_server.admin_key}"}
    async with (
        agent(gateway_server, secret, "legacy") as client,
        httpx.AsyncClient(base_url=gateway_server.url, headers=admin, timeout=30) as http,
    ):
        await raw_call(client, "demo__echo", {"text": "hi"})
        await raw_call(client, "demo__add_tool", {"name": "sneaky"})
        held = await raw_call(client, "demo__add", {"a": 2, "b": 3})
        approval_id = held_approval_id(held)
        approved = await http.post(f"/api/v1/approvals/{approval_id}/approve", json={})
        assert 200 == approved.status_code, approved.text
        approver = approved.json()["decided_by_name"]
        await raw_call(client, "get_approval_status", {"approval_id": approval_id})

    table = cells(audit_list(gateway_server, "--kind", "tool.call", "--oldest-first"))

    assert HEADER == table[0]
    rows = [row[1:7] for row in table[1:]]  # kind .. status: what a reader looks for
    assert [
        ["tool.call", key_id, "demo/echo", "allow", "tools.demo/echo.action", "ok"],
        ["tool.call", key_id, "demo/add_tool", "deny", "demo/add_tool#1", "denied"],
        ["tool.call", key_id, "demo/add", "require_approval", "tools.demo/add.action", "pending"],
        ["tool.call", key_id, "demo/add", "require_approval", "-", "ok"],  # run once approved
    ] == rows
    details = [row[7] for row in table[1:]]
    assert details[0].startswith('args={"text":"hi"}')  # what was asked, before the rest
    assert approver  # the admin key's name: a key with no user is its own person
    assert details[3].startswith(f"decided_by_name={approver}, ")  # who approved, by name
    assert "decided_by=" not in details[3]  # the id stands in --json

    decided = cells(audit_list(gateway_server, "--kind", "approval.decided"))
    assert [approver] == [row[2] for row in decided[1:]]  # the actor, named


async def test_json_is_the_api_answer_unchanged(gateway_server: LiveServer) -> None:
    async with agent(gateway_server, gateway_server.admin_key, "legacy") as client:
        await raw_call(client, "demo__echo", {"text": "hi"})
    async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
        answer = await http.get(
            "/api/v1/audit/",
            params={"kind": "tool.call"},
            headers={"Authorization": f"Bearer {gateway_server.admin_key}"},
        )
    assert answer.json() == json.loads(audit_list(gateway_server, "--kind", "tool.call", "--json"))


async def test_columns_no_listed_event_has_are_left_out(gateway_server: LiveServer) -> None:
    await new_agent_key(gateway_server, "laptop")
    table = cells(audit_list(gateway_server, "--kind", "key."))
    assert ["TIME", "KIND", "ACTOR", "DETAILS"] == table[0]
    assert "key.created" == table[1][1]
