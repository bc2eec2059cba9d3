"""The Policies screen against a real server (uvicorn, SQLite): a rule moved with keys and
applied after the diff preview is the new active version, and a call now gets the decision of
the rule moved first; an invalid condition is shown inline and never applied; rollback from
the history restores a version; a viewer's apply ends in the error modal with the 403."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from hub.api_client import ApiClient
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.mcp.support import REPO, agent, agent_key, raw_call, text_of
from tests.tui.conftest import people_of, plain, until
from tui.app import PreloopApp
from tui.screens.modals import ConfirmModal, ErrorModal
from tui.screens.policies import PoliciesScreen
from tui.screens.policy_dialogs import DiffModal, HistoryModal

POLICY = """\
version: "1.0"
metadata: {name: tui policies}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
tools:
  - name: echo
    server: demo
    conditions:
      - expression: 'args.text == "hello"'
        action: allow
      - expression: 'args.text.size() > 0'
        action: deny
        message: no echoing
  - name: add
    server: demo
    action: allow
defaults:
  action: deny
"""


@pytest.fixture
def policy_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.chdir(REPO)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY % {"python": sys.executable})
    settings = make_settings(tmp_path, PRELOOP_POLICY_FILE=str(policy_file))
    with run_live(settings) as live:
        yield live


def _app(live: LiveServer, key: str) -> PreloopApp:
    return PreloopApp(ApiClient(live.url, key))


def _screen(app: PreloopApp) -> PoliciesScreen:
    screen = app.main_screens["policies"]
    assert isinstance(screen, PoliciesScreen)
    return screen


async def _open(pilot: Pilot[Any], app: PreloopApp) -> PoliciesScreen:
    await pilot.press("3")
    screen = _screen(app)
    await until(pilot, lambda: (app.screen is screen and screen.draft is not None) or None)
    return screen


def _rows(screen: PoliciesScreen) -> list[list[str]]:
    table = screen.query_one("#rules", DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def _rest(live: LiveServer, key: str, method: str, path: str, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        response = await http.request(method, f"/api/v1/policies/{path}", **kw)
    assert response.status_code == 200, response.text
    return response.json()


async def _evaluate(live: LiveServer, text: str) -> dict[str, Any]:
    body = {"tool": "echo", "server": "demo", "args": {"text": text}}
    decided: dict[str, Any] = await _rest(live, live.admin_key, "POST", "evaluate", json=body)
    return decided


async def test_a_rule_moved_with_keys_and_applied_is_the_new_active_order(
    policy_server: LiveServer,
) -> None:
    live = policy_server
    assert "allow" == (await _evaluate(live, "hello"))["action"]
    caller = await agent_key(live)
    async with agent(live, caller, "auto") as client:  # before: allowed, the upstream echoes
        before = await raw_call(client, "demo__echo", {"text": "hello"})
    assert before.get("isError") is not True
    assert "hello" in text_of(before)
    app = _app(live, live.admin_key)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(pilot, app)
        assert [r[1:5] for r in _rows(screen)[:2]] == [
            ["1", "on", "allow", 'args.text == "hello"'],
            ["2", "on", "deny", "args.text.size() > 0"],
        ]
        await pilot.press("down", "shift+up")  # the deny rule goes first
        assert [r[3] for r in _rows(screen)[:2]] == ["deny", "allow"]
        await until(pilot, lambda: screen.problems == [] or None)  # the server found it valid

        await pilot.press("a")
        modal = await until(
            pilot, lambda: app.screen if isinstance(app.screen, DiffModal) else None
        )
        diff = plain(modal.query_one("#policy-diff-text", Static))
        assert '-      - expression: args.text == "hello"' in diff.replace("'", "")
        await pilot.press("y")
        await until(pilot, lambda: (screen.draft and screen.draft.version == 2) or None)
        assert not isinstance(app.screen, ErrorModal)

    versions = await _rest(live, live.admin_key, "GET", "versions")
    assert [2, True] == [versions[0]["version"], versions[0]["active"]]
    exported = (await _rest(live, live.admin_key, "GET", "export"))["source"]
    assert exported.index("size() > 0") < exported.index('"hello"')
    decided = await _evaluate(live, "hello")  # the rule moved first decides now
    assert ["deny", "demo/echo#1"] == [decided["action"], decided["rule"]]
    async with agent(live, caller, "auto") as client:  # and a real call gets its decision
        after = await raw_call(client, "demo__echo", {"text": "hello"})
    assert after.get("isError") is True
    assert "no echoing" in text_of(after)


async def test_an_invalid_condition_is_shown_inline_and_never_applied(
    policy_server: LiveServer,
) -> None:
    live = policy_server
    app = _app(live, live.admin_key)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, app)
        await pilot.press("e", "end", *" && args.text ==")
        problems = screen.query_one("#expression-problems", Static)
        await until(pilot, lambda: "✕" in plain(problems) or None)
        assert "rule 1" in plain(problems)
        assert screen.draft is not None
        assert screen.draft.dirty

        await pilot.press("enter", "a")  # back to the rules, then apply
        await until(pilot, lambda: screen.problems or None)
        for _ in range(5):
            await pilot.pause()
        assert not isinstance(app.screen, DiffModal)
        assert "✕" in plain(problems)

    versions = await _rest(live, live.admin_key, "GET", "versions")
    assert [1] == [v["version"] for v in versions]


async def test_rollback_from_the_history_restores_a_version(policy_server: LiveServer) -> None:
    live = policy_server
    first = (await _rest(live, live.admin_key, "GET", "export"))["source"]
    second = first.replace("no echoing", "still no echoing")
    await _rest(live, live.admin_key, "POST", "apply", json={"source": second})
    app = _app(live, live.admin_key)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(pilot, app)
        assert screen.draft is not None
        assert screen.draft.version == 2
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, HistoryModal) or None)
        await pilot.press("down", "r")  # version 1
        confirm = await until(
            pilot, lambda: app.screen if isinstance(app.screen, ConfirmModal) else None
        )
        assert "version 1" in plain(confirm.query_one("#question", Static))
        await pilot.press("y")
        await until(pilot, lambda: (screen.draft and screen.draft.version == 3) or None)

    assert first == (await _rest(live, live.admin_key, "GET", "export"))["source"]
    versions = await _rest(live, live.admin_key, "GET", "versions")
    assert [3, 2, 1] == [v["version"] for v in versions]


async def test_a_viewer_may_look_but_applying_ends_in_the_error_modal(
    policy_server: LiveServer,
) -> None:
    live = policy_server
    people = await people_of(live)
    app = _app(live, people.viewer)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, app)
        await pilot.press("space")  # switch rule 1 off
        assert "off" == _rows(screen)[0][2]
        await until(pilot, lambda: screen.problems == [] or None)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, DiffModal) or None)
        await pilot.press("y")
        modal = await until(
            pilot, lambda: app.screen if isinstance(app.screen, ErrorModal) else None
        )
        message = plain(modal.query_one("#error-message", Static))
        assert "403" in message
        assert "Traceback" not in message

    versions = await _rest(live, live.admin_key, "GET", "versions")
    assert [1] == [v["version"] for v in versions]


async def test_the_preview_warns_when_another_version_was_applied_meanwhile(
    policy_server: LiveServer,
) -> None:
    live = policy_server
    app = _app(live, live.admin_key)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(pilot, app)
        await pilot.press("space")  # rule 1 off, in the working copy of version 1
        source = (await _rest(live, live.admin_key, "GET", "export"))["source"]
        elsewhere = source.replace("no echoing", "changed elsewhere")
        await _rest(live, live.admin_key, "POST", "apply", json={"source": elsewhere})

        await pilot.press("a")
        modal = await until(
            pilot, lambda: app.screen if isinstance(app.screen, DiffModal) else None
        )
        warning = plain(modal.query_one("#policy-stale", Static))
        assert "Version 2 was applied after you started from version 1" in warning
        diff = plain(modal.query_one("#policy-diff-text", Static))
        assert "-        message: changed elsewhere\n+        message: no echoing" in diff
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen or None)

    versions = await _rest(live, live.admin_key, "GET", "versions")
    assert [2, 1] == [v["version"] for v in versions]
