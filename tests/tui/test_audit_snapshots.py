"""Snapshots of the Audit screen at 80x24 and 120x40, from the fixed audit scene, with the
held and approved call selected (its decision, explanation and approval history showing)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.audit_scene import audit_app
from tests.tui.conftest import until
from tui.screens.audit import AuditScreen


async def _audit(pilot: Pilot[Any]) -> None:
    await pilot.press("2")
    screen = pilot.app.screen
    assert isinstance(screen, AuditScreen)
    await until(pilot, lambda: len(screen.audit) == 7 or None)
    await until(pilot, lambda: "apr_0003" in screen.approvals or None)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_audit_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(audit_app(), terminal_size=size, run_before=_audit)


def test_audit_screen_light(snap_compare: Any) -> None:
    assert snap_compare(audit_app("textual-light"), terminal_size=(80, 24), run_before=_audit)
