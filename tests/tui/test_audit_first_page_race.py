"""The Audit screen when a live event arrives before its first page (an approval, then ``2``
at once): the columns are drawn at their full widths whichever comes first, and the live
event stays in the table once the page, read before it was appended, arrives.

The race is made deterministic: the page is held until the test lets it go, and the screen
is drawn right after the live event is folded in, before the table is next idle (which is
when Textual measures new rows), as the screen's own refresh may draw it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
from textual.geometry import Region
from textual.widgets import DataTable

from hub.api_client import ApiClient
from tests.tui import audit_scene
from tests.tui.conftest import until
from tests.tui.scenes import NOW, URL, ConnectedFeed
from tui.app import PreloopApp
from tui.feed import ActivityEvent, ConnectionState, FeedStatus
from tui.screens.audit import AuditScreen

LIVE = ActivityEvent(
    seq=8,
    kind="approval.decided",
    actor="b0b0b0b0b0b0b0b0",
    at=NOW,
    data={"approval_id": "apr_0003", "server": "git", "tool": "push", "status": "approved"},
)


def _drawn(table: DataTable[Any]) -> list[str]:
    """The table's lines as a draw of the screen shows them now."""
    lines = table.render_lines(Region(0, 0, table.size.width, table.size.height))
    return [line.text for line in lines]


def _widths(table: DataTable[Any]) -> list[int]:
    return [column.get_render_width(table) for column in table.ordered_columns]


async def test_a_live_event_before_the_first_page_draws_full_columns_and_stays() -> None:
    page_held = asyncio.Event()
    go_live = asyncio.Event()
    seen: dict[str, Any] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/audit/":
            await page_held.wait()
        return audit_scene.handler(request)

    client = ApiClient(URL, "pl_test", transport=httpx.MockTransport(handler))
    app = PreloopApp(client, ConnectedFeed(), now=lambda: NOW)
    screen = app.main_screens["audit"]
    assert isinstance(screen, AuditScreen)

    class LiveBeforePage:
        async def updates(self) -> AsyncIterator[Any]:
            yield FeedStatus(state=ConnectionState.CONNECTED, detail=URL)
            await go_live.wait()
            yield LIVE
            # Resumed as soon as the screen has folded the event in: draw now.
            table = screen.query_one("#audit-table", DataTable)
            seen["drawn"], seen["widths"] = _drawn(table), _widths(table)
            page_held.set()
            await asyncio.Event().wait()

    screen.make_feed = LiveBeforePage
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        table = screen.query_one("#audit-table", DataTable)
        await until(pilot, lambda: table.size.width > 0 or None)
        go_live.set()
        await until(pilot, lambda: table.row_count >= 7 or None)  # the page is in
        await pilot.pause()

        live_row = next(line for line in seen["drawn"] if "│ 8 " in line)
        for whole in ("09:00:00", "approval.decided", "git/push", "approved"):
            assert whole in live_row, live_row
        assert seen["widths"] == _widths(table)
        assert [8, 7, 6, 5, 4, 3, 2, 1] == [
            int(table.get_row_at(row)[0]) for row in range(table.row_count)
        ]
        assert any("approval.decided" in line and "git/push" in line for line in _drawn(table))
