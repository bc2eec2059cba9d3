"""The Sessions screens on a fixed scene (:mod:`tests.tui.sessions_scene`): snapshots of the
list at 80x24 and 120x40, of a timeline for an approver and for a viewer, of a search's
matches, and of the empty state (update with ``pytest tests/tui/test_sessions_snapshots.py
--snapshot-update``)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui import sessions_scene
from tests.tui.conftest import until
from tui.screens.session_views import InteractionSearchScreen, SessionTimelineScreen
from tui.screens.sessions import SessionsScreen


async def shown(pilot: Pilot[Any]) -> SessionsScreen:
    await pilot.press("7")
    screen = await until(
        pilot, lambda: pilot.app.screen if isinstance(pilot.app.screen, SessionsScreen) else None
    )
    await until(pilot, lambda: screen.sessions is not None or None)
    await pilot.pause()
    return screen


async def timeline(pilot: Pilot[Any]) -> SessionTimelineScreen:
    await shown(pilot)
    await pilot.press("enter")  # the first (most recent) session
    screen = await until(
        pilot,
        lambda: pilot.app.screen if isinstance(pilot.app.screen, SessionTimelineScreen) else None,
    )
    await until(pilot, lambda: screen.detail is not None or None)
    await pilot.pause()
    return screen


async def typed_in(pilot: Pilot[Any], bar_id: str, text: str) -> None:
    """``/``, then ``text`` in the bar once it has the focus (keys pressed before would go to
    the table: ``r`` and ``s`` are its keys), as typed but in one step (no key is lost to a
    busy machine); the caller presses ``enter``."""
    await pilot.press("slash")
    bar = pilot.app.screen.query_one(bar_id, Input)
    await until(pilot, lambda: bar.has_focus or None)
    bar.value = text
    bar.cursor_position = len(text)
    await pilot.pause()


async def searched(pilot: Pilot[Any]) -> InteractionSearchScreen:
    await shown(pilot)
    await typed_in(pilot, "#sessions-search", "refund policy since:7d")
    await pilot.press("enter")
    screen = await until(
        pilot,
        lambda: pilot.app.screen if isinstance(pilot.app.screen, InteractionSearchScreen) else None,
    )
    await until(pilot, lambda: screen.found is not None or None)
    await pilot.pause()
    return screen


async def _shown(pilot: Pilot[Any]) -> None:
    await shown(pilot)


async def _timeline(pilot: Pilot[Any]) -> None:
    await timeline(pilot)


async def _searched(pilot: Pilot[Any]) -> None:
    await searched(pilot)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_sessions_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(sessions_scene.sessions_app(), terminal_size=size, run_before=_shown)


@pytest.mark.parametrize("role", ["approver", "viewer"])
def test_session_timeline(snap_compare: Any, role: str) -> None:
    app = sessions_scene.sessions_app(sessions_scene.Server(role))
    assert snap_compare(app, terminal_size=(120, 40), run_before=_timeline)


def test_interaction_search(snap_compare: Any) -> None:
    app = sessions_scene.sessions_app()
    assert snap_compare(app, terminal_size=(120, 40), run_before=_searched)


def test_no_sessions_says_how_to_turn_capture_on(snap_compare: Any) -> None:
    server = sessions_scene.Server()
    server.sessions = []
    app = sessions_scene.sessions_app(server)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_shown)
