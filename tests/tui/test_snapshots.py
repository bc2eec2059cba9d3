"""Snapshots of the main screens at 80x24 and 120x40 (dark and light), from a fixed scene
with a frozen clock. Update with ``pytest tests/tui --snapshot-update`` and look at the SVGs."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.conftest import until
from tests.tui.scenes import scene_app


async def _loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await until(pilot, lambda: len(app.approvals.queue) == 3 or None)  # type: ignore[attr-defined]
    first = app.approvals.queue.get("apr_0003")  # type: ignore[attr-defined]
    await until(pilot, lambda: first.detailed or None)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_approvals_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(scene_app(), terminal_size=size, run_before=_loaded)


def test_approvals_screen_light(snap_compare: Any) -> None:
    assert snap_compare(scene_app("textual-light"), terminal_size=(80, 24), run_before=_loaded)


async def _help(pilot: Pilot[Any]) -> None:
    await _loaded(pilot)
    await pilot.press("question_mark")
    await pilot.pause()


def test_help_screen(snap_compare: Any) -> None:
    assert snap_compare(scene_app(), terminal_size=(80, 24), run_before=_help)


async def _confirm(pilot: Pilot[Any]) -> None:
    await _loaded(pilot)
    await pilot.press("a")
    await pilot.pause()


def test_approve_confirmation(snap_compare: Any) -> None:
    """(The deny modal is not snapshotted: its text field's blinking cursor is not stable.)"""
    assert snap_compare(scene_app(), terminal_size=(80, 24), run_before=_confirm)
