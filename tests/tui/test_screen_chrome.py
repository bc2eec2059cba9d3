"""What every screen keeps around its content at 80x24: the footer shows the screen's own
keys (not pushed off the edge or covered by the app's), and ``q`` quits even while the
error modal says the server cannot be reached."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # the footer's entries: read, never changed

from hub.api_client import ApiClient
from tests.integration.conftest import LiveServer
from tests.tui.conftest import until
from tui.app import PreloopApp
from tui.feed import ConnectionState
from tui.screens import MAIN_SCREENS
from tui.screens.modals import ErrorModal

WIDTH = 80


def _hidden_keys(app: PreloopApp, name: str) -> list[str]:
    """The screen's footer keys that are not wholly visible: past the right edge, or under
    another entry of the footer."""
    screen = app.main_screens[name]
    entries = list(screen.query_one(Footer).query(FooterKey))
    hidden = []
    for binding in type(screen).BINDINGS:
        assert isinstance(binding, Binding)
        if not binding.show:
            continue
        mine = [e for e in entries if e.action == binding.action]
        if not mine:
            hidden.append(binding.key)
            continue
        region = mine[0].region
        covered = any(e is not mine[0] and e.region.overlaps(region) for e in entries)
        if region.width == 0 or region.right > WIDTH or covered:
            hidden.append(binding.key)
    return hidden


async def test_every_main_screen_shows_its_keys_in_the_footer_at_80_columns(
    tui_server: LiveServer,
) -> None:
    app = PreloopApp(ApiClient(tui_server.url, tui_server.admin_key))
    async with app.run_test(size=(WIDTH, 24)) as pilot:
        await until(pilot, lambda: app.connection.state == ConnectionState.CONNECTED or None)
        hidden: dict[str, list[str]] = {}
        for main in MAIN_SCREENS:
            await pilot.press(main.key)
            shown = app.main_screens[main.name]
            await until(pilot, lambda shown=shown: app.screen is shown or None)
            await pilot.pause()
            hidden[main.name] = _hidden_keys(app, main.name)
        assert {main.name: [] for main in MAIN_SCREENS} == hidden


async def test_q_quits_while_the_server_is_unreachable() -> None:
    # The discard port: nothing listens, so the first REST call fails.
    app = PreloopApp(ApiClient("http://127.0.0.1:9", "pl_x"))
    async with app.run_test(size=(WIDTH, 24)) as pilot:
        modal = await until(
            pilot, lambda: app.screen if isinstance(app.screen, ErrorModal) else None
        )
        assert "Server unreachable" == modal.error_title
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
    assert 0 == app.return_code
