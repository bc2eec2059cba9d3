"""The Audit screen against a real server (uvicorn, SQLite) and a real MCP agent: a held call
that another approver approves appears live, its detail shows the arguments, the decision's
explanation, the approval history and the result; the filter bar narrows the table and the
export writes exactly the filtered events. With 100,000 events in the store, the screen opens
and pages while fetching only the pages the cursor reached."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.dialects import sqlite as sqlite_dialect
from textual.widgets import DataTable, Input, Static

from hub.api_client import ApiClient
from hub.records import AuditDraft
from server.db.stores._sqlite_audit import SqliteAuditWriter
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.mcp.support import REPO, agent, raw_call, text_of
from tests.tui.conftest import people_of, plain, until, write_policy
from tui.app import PreloopApp
from tui.audit_log import PAGE
from tui.feed import ConnectionState
from tui.screens.audit import AuditScreen, ExportModal
from tui.screens.modals import ErrorModal

M = TypeVar("M", bound=Any)


def _audit(app: PreloopApp) -> AuditScreen:
    screen = app.main_screens["audit"]
    assert isinstance(screen, AuditScreen)
    return screen


def _modal(app: PreloopApp, kind: type[M]) -> M | None:
    return app.screen if isinstance(app.screen, kind) else None


def _kinds(screen: AuditScreen) -> list[str]:
    table = screen.query_one("#audit-table", DataTable)
    return [str(table.get_row_at(row)[2]) for row in range(table.row_count)]


async def test_a_held_call_appears_live_with_its_story_then_filters_and_exports(
    tui_server: LiveServer, tmp_path: Path
) -> None:
    people = await people_of(tui_server)
    app = PreloopApp(ApiClient(tui_server.url, people.approver))
    headers = {"Authorization": f"Bearer {people.other}"}
    async with (
        app.run_test(size=(120, 40)) as pilot,
        agent(tui_server, people.agent, "auto") as client,
        httpx.AsyncClient(base_url=tui_server.url, headers=headers, timeout=30) as http,
    ):
        await until(pilot, lambda: app.connection.state == ConnectionState.CONNECTED or None)
        await pilot.press("2")
        screen = _audit(app)
        assert app.screen is screen
        await until(pilot, lambda: "key.created" in _kinds(screen) or None)  # the first page

        waiting = asyncio.create_task(
            raw_call(client, "demo__echo", {"text": "hello", "justification": "audit test"})
        )
        pending = await until(pilot, lambda: app.approvals.queue.items() or None)
        request_id = pending[0].request.id
        voted = await http.post(f"/api/v1/approvals/{request_id}/approve", json={"comment": "ok"})
        assert 200 == voted.status_code, voted.text
        async with asyncio.timeout(30):
            assert "hello" == text_of(await waiting)

        # Followed live (no key pressed); the cursor on the top row stays on the newest.
        await until(pilot, lambda: "tool.call" in _kinds(screen) or None)
        table = screen.query_one("#audit-table", DataTable)
        body = screen.query_one("#audit-detail-body", Static)

        def call_detail() -> str | None:
            # Selected again on each try: a later event on top would take a top-row cursor.
            row = _kinds(screen).index("tool.call")
            if table.cursor_row != row:
                table.move_cursor(row=row, animate=False)
                return None
            text = plain(body, 120)
            return text if "decided by other" in text else None

        detail = await until(pilot, call_detail)
        assert "demo/echo" in detail
        assert '"text": "hello"' in detail  # the full arguments
        assert "require_approval" in detail  # the decision ...
        assert "Why" in detail  # ... and its explanation
        assert "other approve via api: ok" in detail  # the approval history, by key name
        assert "Result    ok" in detail

        # The filter bar: only tool calls.
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        app.focused.value = f"kind:tool.call principal:{_agent_id(screen)} HELLO"
        await pilot.press("enter")
        await until(pilot, lambda: _kinds(screen) == ["tool.call"] or None)
        assert "kind:tool.call" in str(table.border_subtitle)

        # Export the filter to a file named in the modal.
        out = tmp_path / "calls.jsonl"
        await pilot.press("e")
        modal = await until(pilot, lambda: _modal(app, ExportModal))
        field = modal.query_one("#export-path", Input)
        assert field.value.startswith(str(Path.cwd() / "preloop-audit-"))  # the default
        field.value = str(out)
        await pilot.press("enter")
        await until(pilot, lambda: out.exists() or None)
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert ["tool.call"] == [line["kind"] for line in lines]
        assert {"text": "hello"} == lines[0]["data"]["args"]
        assert not isinstance(app.screen, ErrorModal)


def _agent_id(screen: AuditScreen) -> str:
    calls = [e for e in screen.audit.events.values() if e.kind == "tool.call"]
    return calls[0].actor


async def test_a_filter_the_bar_cannot_read_ends_in_the_error_modal(
    tui_server: LiveServer,
) -> None:
    people = await people_of(tui_server)
    app = PreloopApp(ApiClient(tui_server.url, people.viewer))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        screen = _audit(app)
        await until(pilot, lambda: len(screen.audit) or None)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        app.focused.value = "since:yesterday"
        await pilot.press("enter")
        modal = await until(pilot, lambda: _modal(app, ErrorModal))
        assert "age like 30m" in modal.message


EVENTS = 100_000
_BULK = {"server": "demo", "tool": "echo", "decision": "allow", "status": "ok"}


def _fill(settings_db: Path, count: int) -> None:
    """``count`` tool-call events for the default account, written through the storage
    layer's SQLite audit writer in batches (chained and hashed as the server would)."""
    with sqlite3.connect(settings_db) as db:
        (account_id,) = db.execute("SELECT id FROM accounts ORDER BY created_at").fetchone()
    start = datetime(2026, 1, 1, tzinfo=UTC)

    async def write() -> None:
        writer = SqliteAuditWriter(settings_db, sqlite_dialect.dialect())
        heads: dict[str, tuple[int, str]] = {}
        try:
            for first in range(0, count, 10_000):
                drafts = [
                    AuditDraft(
                        account_id=account_id,
                        kind="tool.call",
                        actor="bulk-agent",
                        at=start + timedelta(seconds=n),
                        data=_BULK | {"args": {"n": n}},
                    )
                    for n in range(first, min(first + 10_000, count))
                ]
                _, heads = await writer.append(drafts, heads)
        finally:
            await writer.close()

    asyncio.run(write())


@pytest.fixture
def big_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.chdir(REPO)
    settings = make_settings(tmp_path, PRELOOP_POLICY_FILE=str(write_policy(tmp_path)))
    with run_live(settings):
        pass  # the first start: the database, the default account, the admin key
    _fill(settings.data_path / "preloop.db", EVENTS)
    with run_live(settings) as live:
        yield live


async def test_a_hundred_thousand_events_open_and_page_in_bounded_requests(
    big_server: LiveServer,
) -> None:
    headers = {"Authorization": f"Bearer {big_server.admin_key}"}
    async with httpx.AsyncClient(base_url=big_server.url, headers=headers, timeout=30) as http:
        head = (await http.get("/api/v1/audit/", params={"limit": 1})).json()[0]["seq"]
    assert head > EVENTS
    app = PreloopApp(ApiClient(big_server.url, big_server.admin_key))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        screen = _audit(app)
        await until(pilot, lambda: len(screen.audit) == PAGE or None)
        assert PAGE == screen.audit.fetched
        assert [head] == [max(screen.audit.events)]

        # Down to the end of the first page: the second is fetched, by keyset, and no more.
        table = screen.query_one("#audit-table", DataTable)
        table.focus()
        table.move_cursor(row=PAGE - 1, animate=False)
        await until(pilot, lambda: len(screen.audit) == 2 * PAGE or None)
        await pilot.pause()
        assert 2 * PAGE == screen.audit.fetched
        assert list(range(head, head - 2 * PAGE, -1)) == sorted(screen.audit.events, reverse=True)
        assert "400+ events" in str(table.border_subtitle)
        assert not isinstance(app.screen, ErrorModal)
