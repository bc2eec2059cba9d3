"""The dashboard issue's "done when", in one run against a real server (uvicorn, SQLite) and a
real MCP agent: ``preloop login`` saves the profile, the dashboard starts from it, and with
keys only the on-call engineer approves a held call, reads its audit event and moves a rule,
applying it as a new policy version."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from textual.widgets import DataTable, Static

from hub.api_client import ApiClient, resolve_target
from server.cli.main import cli
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.mcp.support import REPO, agent, agent_key, raw_call, text_of
from tests.tui.conftest import plain, until
from tui.app import PreloopApp
from tui.feed import ConnectionState
from tui.screens.audit import AuditScreen
from tui.screens.modals import ConfirmModal, ErrorModal
from tui.screens.policies import PoliciesScreen
from tui.screens.policy_dialogs import DiffModal

POLICY = """\
version: "1.0"
metadata: {name: on-call journey}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
approval_workflows:
  - name: on-call
    timeout_seconds: 600
    approvers: ["role:admin"]
tools:
  - name: echo
    server: demo
    action: require_approval
    approval_workflow: on-call
  - name: add
    server: demo
    conditions:
      - expression: 'args.a == 1'
        action: allow
      - expression: 'args.a > 100'
        action: deny
        message: too big
defaults:
  action: deny
"""


@pytest.fixture
def journey_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.chdir(REPO)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY % {"python": sys.executable})
    with run_live(make_settings(tmp_path, PRELOOP_POLICY_FILE=str(policy_file))) as live:
        yield live


def _rules(screen: PoliciesScreen) -> list[list[str]]:
    table = screen.query_one("#rules", DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def _kinds(screen: AuditScreen) -> list[str]:
    table = screen.query_one("#audit-table", DataTable)
    return [str(table.get_row_at(row)[2]) for row in range(table.row_count)]


async def test_login_approve_read_the_audit_and_move_a_rule_with_keys_only(
    journey_server: LiveServer,
) -> None:
    live = journey_server
    logged_in = CliRunner().invoke(cli, ["login", live.url, "--key", live.admin_key])
    assert 0 == logged_in.exit_code, logged_in.output
    target = resolve_target(None, None)  # no flags, no env: the saved profile
    assert (live.url, live.admin_key) == (target.url, target.api_key)

    caller = await agent_key(live)
    app = PreloopApp(ApiClient(target.url, target.api_key))
    async with app.run_test(size=(120, 40)) as pilot, agent(live, caller, "auto") as client:
        await until(pilot, lambda: app.connection.state == ConnectionState.CONNECTED or None)

        # 1. A held call shows up without a key press; a, then y, approves it.
        waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": "on call"}))
        item = await until(pilot, lambda: next(iter(app.approvals.queue.items()), None))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal) or None)
        await pilot.press("y")
        async with asyncio.timeout(30):
            assert "on call" == text_of(await waiting)

        # 2. Its audit event, with the decision and who approved it.
        await pilot.press("2")
        audit = app.main_screens["audit"]
        assert isinstance(audit, AuditScreen)
        assert app.screen is audit
        await until(pilot, lambda: "tool.call" in _kinds(audit) or None)
        body = audit.query_one("#audit-detail-body", Static)
        for _ in range(_kinds(audit).index("tool.call")):
            await pilot.press("down")
        detail = await until(
            pilot, lambda: plain(body, 120) if "demo/echo" in plain(body, 120) else None
        )
        assert item.request.id in detail or "on call" in detail
        assert "approve" in detail

        # 3. The deny rule of demo/add moved above the allow rule, applied after the preview.
        await pilot.press("3")
        policies = app.main_screens["policies"]
        assert isinstance(policies, PoliciesScreen)
        await until(pilot, lambda: policies.draft is not None or None)
        rows = _rules(policies)
        deny_row = next(i for i, row in enumerate(rows) if row[4] == "args.a > 100")
        assert "allow" == rows[deny_row - 1][3]
        table = policies.query_one("#rules", DataTable)
        for _ in range(deny_row - table.cursor_row):
            await pilot.press("down")
        await pilot.press("shift+up")
        await until(pilot, lambda: policies.problems == [] or None)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, DiffModal) or None)
        await pilot.press("y")
        await until(pilot, lambda: (policies.draft and policies.draft.version == 2) or None)
        assert not isinstance(app.screen, ErrorModal)

    headers = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        exported = (await http.get("/api/v1/policies/export")).json()["source"]
        decided = await http.post(
            "/api/v1/policies/evaluate",
            json={"tool": "add", "server": "demo", "args": {"a": 1000, "b": 1}},
        )
    assert exported.index("args.a > 100") < exported.index("args.a == 1")
    assert ["deny", "demo/add#1"] == [decided.json()["action"], decided.json()["rule"]]
