"""The help screen and the command palette are generated from the bindings: every binding
of the app and of the Approvals screen is listed in both, and the palette runs them."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable

from tests.tui.conftest import until
from tests.tui.scenes import scene_app
from tui.app import PreloopApp
from tui.screens.approvals import ApprovalsScreen
from tui.screens.help import HelpScreen
from tui.screens.modals import DenyModal


def _declared() -> list[Binding]:
    bindings = [*ApprovalsScreen.BINDINGS, *PreloopApp.BINDINGS]
    assert all(isinstance(b, Binding) for b in bindings)
    return bindings  # type: ignore[return-value]


async def test_the_help_lists_every_binding() -> None:
    app = scene_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(app.approvals.queue) or None)
        await pilot.press("question_mark")
        help_screen = await until(
            pilot, lambda: app.screen if isinstance(app.screen, HelpScreen) else None
        )
        table = help_screen.query_one(DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        listed = {(row[0], row[1]) for row in rows}
        for binding in _declared():
            keys = " / ".join(
                app.get_key_display(Binding(k, binding.action)) for k in binding.key.split(",")
            )
            assert (keys, binding.description) in listed
        assert len(_declared()) == len(rows)
        assert ("? / f1", "Help") in listed
        await pilot.press("escape")
        assert app.screen is app.approvals


async def test_the_palette_offers_every_binding_and_runs_it() -> None:
    app = scene_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: len(app.approvals.queue) or None)
        titles = [command.title for command in app.get_system_commands(app.approvals)]
        for binding in _declared():
            if binding.action != "command_palette":
                assert binding.description in titles
        await pilot.press("ctrl+p")
        await pilot.press(*"Deny")
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DenyModal) or None)
