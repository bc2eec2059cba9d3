"""Snapshots of the Policies screen at 80x24 and 120x40, the inline validation error and the
diff preview, from a fixed policy served through httpx's mock transport (the scenes' REST
seam, extended with the policy endpoints). Update with ``--snapshot-update``; look at the
SVGs."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from hub.api_client import ApiClient
from tests.tui import scenes
from tests.tui.conftest import until
from tui.app import PreloopApp
from tui.screens.help import HelpScreen
from tui.screens.modals import ErrorModal
from tui.screens.policies import PoliciesScreen
from tui.screens.policy_dialogs import DiffModal, HistoryModal

ACTIVE = """\
version: "1.0"
metadata:
  name: production safeguards
approval_workflows:
  - name: on-call
    approvers:
      - role:approver
tools:
  - name: push
    server: git
    conditions:
      - id: force-push
        expression: args.force == true
        action: deny
        message: no force pushes
      - expression: args.branch == "main"
        action: require_approval
        approval_workflow: on-call
      - expression: principal.role == "admin"
        action: allow
        enabled: false
  - name: drop_table
    server: postgres
    action: require_approval
    approval_workflow: on-call
  - name: send_email
    server: mail
    conditions:
      - expression: args.to.endsWith("@example.com")
        action: allow
    action: deny
"""
DIFF = """\
--- version 3
+++ working copy
@@ -11,9 +11,9 @@
   - name: push
     server: git
     conditions:
-      - id: force-push
-        expression: args.force == true
-        action: deny
-        message: no force pushes
       - expression: args.branch == "main"
         action: require_approval
         approval_workflow: on-call
+      - id: force-push
+        expression: args.force == true
+        action: deny
+        message: no force pushes
"""
VERSIONS = [
    {
        "version": n,
        "name": "production safeguards",
        "digest": f"{n}" * 64,
        "created_at": f"2026-11-2{n}T08:3{n}:00Z",
        "created_by": by,
        "comment": comment,
        "active": n == 3,
    }
    for n, by, comment in [
        (3, "b0b0b0b0b0b0b0b0", "applied from the dashboard"),
        (2, "9f3c2a1b7d6e5f40", "force pushes denied"),
        (1, "9f3c2a1b7d6e5f40", "first policy"),
    ]
]
_DANGLING = re.compile(r"&&\s*'?\n")


def handler(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/api/v1/policies/export":
        return httpx.Response(200, json={"version": 3, "source": ACTIVE})
    if path == "/api/v1/policies/validate":
        source = json.loads(request.content)["source"]
        if _DANGLING.search(source):
            problem = {
                "message": "Syntax error: unexpected end of expression (tool 'git/push', rule 2)",
                "line": 16,
                "key": "tools[0].conditions[1].expression",
            }
            return httpx.Response(200, json={"valid": False, "problems": [problem]})
        return httpx.Response(200, json={"valid": True, "name": "production safeguards"})
    if path == "/api/v1/policies/versions":
        return httpx.Response(200, json=VERSIONS)
    if path == "/api/v1/policies/diff":
        return httpx.Response(200, json={"changed": True, "diff": DIFF})
    return scenes.handler(request)


def policies_app(theme: str = "textual-dark") -> PreloopApp:
    client = ApiClient(scenes.URL, "pl_test", transport=httpx.MockTransport(handler))
    return PreloopApp(client, scenes.ConnectedFeed(), now=lambda: scenes.NOW, theme=theme)


async def _loaded(pilot: Pilot[Any]) -> None:
    app: PreloopApp = pilot.app  # type: ignore[assignment]
    await until(pilot, lambda: len(app.approvals.queue) == 3 or None)
    await pilot.press("3")
    screen = app.main_screens["policies"]
    assert isinstance(screen, PoliciesScreen)
    await until(pilot, lambda: (app.screen is screen and screen.draft is not None) or None)
    await pilot.press("down")  # rule 2 of git/push
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_policies_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(policies_app(), terminal_size=size, run_before=_loaded)


def test_policies_screen_light(snap_compare: Any) -> None:
    assert snap_compare(policies_app("textual-light"), terminal_size=(80, 24), run_before=_loaded)


async def _invalid(pilot: Pilot[Any]) -> None:
    await _loaded(pilot)
    await pilot.press("e", "end", "space", "ampersand", "ampersand", "enter")
    screen = pilot.app.main_screens["policies"]  # type: ignore[attr-defined]
    await until(pilot, lambda: screen.problems or None)
    await pilot.pause()


def test_policies_inline_error(snap_compare: Any) -> None:
    assert snap_compare(policies_app(), terminal_size=(80, 24), run_before=_invalid)


async def _diff(pilot: Pilot[Any]) -> None:
    await _loaded(pilot)
    await pilot.press("shift+down", "a")  # rule 2 moves to 3, then the preview
    await until(pilot, lambda: isinstance(pilot.app.screen, DiffModal) or None)
    await pilot.pause()


def test_policies_diff_preview(snap_compare: Any) -> None:
    assert snap_compare(policies_app(), terminal_size=(120, 40), run_before=_diff)


async def _history(pilot: Pilot[Any]) -> None:
    await _loaded(pilot)
    await pilot.press("h")
    await until(pilot, lambda: isinstance(pilot.app.screen, HistoryModal) or None)
    await pilot.press("down")
    await pilot.pause()


def test_policies_history(snap_compare: Any) -> None:
    assert snap_compare(policies_app(), terminal_size=(80, 24), run_before=_history)


async def test_the_help_on_policies_lists_every_binding() -> None:
    app = policies_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot)
        await pilot.press("question_mark")
        shown = await until(
            pilot, lambda: app.screen if isinstance(app.screen, HelpScreen) else None
        )
        table = shown.query_one(DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        declared = [*PoliciesScreen.BINDINGS, *PreloopApp.BINDINGS]
        for binding in declared:
            assert isinstance(binding, Binding)
            keys = " / ".join(
                app.get_key_display(Binding(k, binding.action)) for k in binding.key.split(",")
            )
            assert [keys, binding.tooltip or binding.description] in [row[:2] for row in rows]
        assert len(declared) == len(rows)
        assert ["shift+↑ / ^↑", "Move rule up", "Policies"] in rows


async def test_an_active_policy_the_dashboard_cannot_read_ends_in_the_error_modal() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/policies/export":
            return httpx.Response(200, json={"version": 7, "source": "version: '9.9'\n"})
        return handler(request)

    client = ApiClient(scenes.URL, "pl_test", transport=httpx.MockTransport(broken))
    app = PreloopApp(client, scenes.ConnectedFeed(), now=lambda: scenes.NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        modal = await until(
            pilot, lambda: app.screen if isinstance(app.screen, ErrorModal) else None
        )
        message = str(modal.query_one("#error-message", Static).content)
        assert message.startswith("The active policy could not be read: ")
        assert "Traceback" not in message
        screen = app.main_screens["policies"]
        assert isinstance(screen, PoliciesScreen)
        assert screen.draft is None
        await pilot.press("escape", "a", "space", "shift+up")  # nothing to act on: no crash
        assert screen.draft is None
        assert app.screen is screen


async def test_a_server_out_of_reach_while_typing_is_said_under_the_field() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/policies/validate":
            raise httpx.ConnectError("connection refused")
        return handler(request)

    client = ApiClient(scenes.URL, "pl_test", transport=httpx.MockTransport(unreachable))
    app = PreloopApp(client, scenes.ConnectedFeed(), now=lambda: scenes.NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot)
        await pilot.press("e", "end", "space", "ampersand")
        line = app.main_screens["policies"].query_one("#expression-problems", Static)
        await until(pilot, lambda: "not checked" in str(line.content) or None)
        assert "? not checked: server unreachable" in str(line.content)
        assert not isinstance(app.screen, ErrorModal)
