"""The Sessions screens against a real server (uvicorn, SQLite) with s-capture's REST and
store, seeded by :mod:`tests.integration.sessions_seed`: ``7`` lists the sessions from the
ledger, Enter shows a timeline with the captured content for an approver and without it for
a viewer, ``/`` finds the captured text with its matches highlighted, and a viewer's search
gets the server's refusal in the error modal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from hub.api_client import ApiClient
from hub.wire.sessions import CONTENT_WITHHELD
from server.hub_services import Hub
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.sessions_seed import ANSWER, seed
from tests.tui.conftest import plain, until
from tests.tui.test_sessions_snapshots import shown, typed_in
from tui.app import PreloopApp
from tui.screens.modals import ErrorModal
from tui.screens.session_views import InteractionSearchScreen, SessionTimelineScreen

KEYS: dict[str, str] = {}


@pytest.fixture
def sessions_server(tmp_path: Path) -> Iterator[LiveServer]:
    async def on_ready(hub: Hub) -> None:
        KEYS.update(await seed(hub))

    with run_live(make_settings(tmp_path), on_ready=on_ready) as live:
        yield live


async def _timeline(pilot: Pilot[Any]) -> SessionTimelineScreen:
    screen = await shown(pilot)
    table = screen.query_one("#sessions-table", DataTable)
    assert [str(table.get_row_at(i)[1]) for i in range(table.row_count)] == [
        "fx_triage1",
        "cli-ada-1",
    ]
    await pilot.press("enter")
    timeline = await until(
        pilot,
        lambda: pilot.app.screen if isinstance(pilot.app.screen, SessionTimelineScreen) else None,
    )
    await until(pilot, lambda: timeline.detail is not None or None)
    await pilot.pause()
    return timeline


async def test_an_approver_reads_a_timeline_and_searches(sessions_server: LiveServer) -> None:
    app = PreloopApp(ApiClient(sessions_server.url, KEYS["approver"]))
    async with app.run_test(size=(120, 40)) as pilot:
        timeline = await _timeline(pilot)
        rows = timeline.query_one("#timeline-table", DataTable)
        assert [str(rows.get_row_at(i)[8]) for i in range(rows.row_count)] == ["full", "metadata"]
        body = plain(timeline.query_one("#timeline-body", Static), width=200)
        assert ANSWER in body
        await pilot.press("escape")
        await typed_in(pilot, "#sessions-search", "refund flow:triage")
        await pilot.press("enter")
        search = await until(
            pilot,
            lambda: app.screen if isinstance(app.screen, InteractionSearchScreen) else None,
        )
        await until(pilot, lambda: search.found is not None or None)
        await pilot.pause()
        table = search.query_one("#search-table", DataTable)
        assert 1 == table.row_count  # the flow's one captured call with content
        snippet = table.get_row_at(0)[4]
        assert isinstance(snippet, Text)
        assert {snippet.plain[s.start : s.end].lower() for s in snippet.spans} == {"refund"}


async def test_a_viewer_sees_metadata_and_its_search_is_refused(
    sessions_server: LiveServer,
) -> None:
    app = PreloopApp(ApiClient(sessions_server.url, KEYS["viewer"]))
    async with app.run_test(size=(120, 40)) as pilot:
        timeline = await _timeline(pilot)
        body = plain(timeline.query_one("#timeline-body", Static), width=200)
        assert CONTENT_WITHHELD in body
        assert "refund" not in body
        await pilot.press("escape")
        await typed_in(pilot, "#sessions-search", "refund")
        await pilot.press("enter")
        modal = await until(
            pilot, lambda: app.screen if isinstance(app.screen, ErrorModal) else None
        )
        assert "Not allowed" == modal.error_title
        assert "needs the admin or approver role" in modal.message
