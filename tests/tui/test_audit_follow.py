"""The Audit screen's live follow, with a scripted ``activity`` feed over the fixed audit
scene (REST through httpx's mock transport): events passing the filter join the table at the
top, others do not; a reconnection fetches what was appended while the feed was down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from textual.widgets import DataTable, Input

from tests.tui import audit_scene
from tests.tui.audit_scene import audit_app
from tests.tui.conftest import until
from tests.tui.scenes import NOW
from tui.feed import ActivityEvent, ConnectionState, FeedStatus
from tui.screens.audit import AuditScreen


class ScriptedFeed:
    """A feed whose items the test puts in ``items``."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[Any] = asyncio.Queue()

    async def updates(self) -> AsyncIterator[Any]:
        while True:
            yield await self.items.get()


def _live(seq: int, kind: str, **data: Any) -> ActivityEvent:
    return ActivityEvent(seq=seq, kind=kind, actor="key_x", at=NOW, data=data)


def _seqs(screen: AuditScreen) -> list[int]:
    table = screen.query_one("#audit-table", DataTable)
    return [int(table.get_row_at(row)[0]) for row in range(table.row_count)]


async def test_live_events_join_at_the_top_and_a_reconnection_catches_up(
    monkeypatch: Any,
) -> None:
    app = audit_app()
    screen = app.main_screens["audit"]
    assert isinstance(screen, AuditScreen)
    feed = ScriptedFeed()
    screen.make_feed = lambda: feed
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: len(screen.audit) == 7 or None)
        feed.items.put_nowait(FeedStatus(state=ConnectionState.CONNECTED))
        feed.items.put_nowait(_live(8, "tool.call", server="demo", tool="echo"))
        await until(pilot, lambda: _seqs(screen)[0] == 8 or None)
        assert 0 == screen.query_one("#audit-table", DataTable).cursor_row  # on the newest
        # The server has it now, as a real one would: the next page includes it.
        appended = audit_scene._event(8, "tool.call", "key_x", 0, server="demo", tool="echo")
        monkeypatch.setattr(audit_scene, "EVENTS", [*audit_scene.EVENTS, appended])

        # Only events passing the filter join (the scene's server filters by kind).
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        app.focused.value = "kind:tool.call"
        await pilot.press("enter")
        await until(pilot, lambda: _seqs(screen) == [8, 7, 4, 3] or None)
        feed.items.put_nowait(_live(9, "key.created"))
        feed.items.put_nowait(_live(10, "tool.call", server="demo", tool="echo"))
        await until(pilot, lambda: _seqs(screen)[0] == 10 or None)
        assert 9 not in _seqs(screen)

        # Down, then back: what was appended meanwhile is fetched (after_seq, oldest first).
        missed = audit_scene._event(11, "tool.call", "key_x", 1, server="db", tool="q")
        monkeypatch.setattr(audit_scene, "EVENTS", [*audit_scene.EVENTS, missed])
        feed.items.put_nowait(FeedStatus(state=ConnectionState.DISCONNECTED, retry_in=0.5))
        feed.items.put_nowait(FeedStatus(state=ConnectionState.CONNECTED))
        await until(pilot, lambda: _seqs(screen)[0] == 11 or None)
        assert [11, 10, 8, 7, 4, 3] == _seqs(screen)
        assert NOW + timedelta(minutes=1) == screen.audit.events[11].at
