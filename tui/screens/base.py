"""``DashboardScreen``: what every main screen of the dashboard has around its own content.

Each main screen (one per number key, listed in :data:`tui.screens.MAIN_SCREENS`) subclasses it
and writes only what is its own: ``compose_body`` (between the connection bar at the top and
the footer at the bottom), its bindings, its ``reload`` worker and its rendering. The base
holds the rest, once:

- the connection bar, redrawn whenever the app's ``connection`` changes (who the dashboard is
  signed in as, where, and whether it is live); ``reconnected`` is called when the live
  connection comes back after an outage, for the screens that load again then;
- ``r``'s action (``action_reload`` calls the screen's ``reload`` worker), and ``confirm``:
  a question whose yes runs a step (the confirmation's focus is on the harmless choice);
- the app's typed handle (``preloop``), and every worker's state change handed to the app
  (which stops workers on exit and shows an unexpected failure in its error modal).

Textual calls every class's ``on_mount`` (the screen's first, then this one), so a screen's own
``on_mount`` does not call ``super()``.

Styles: each screen's rules live in the ``.tcss`` file of the same name beside its module
(its ``CSS_PATH``), nested under the screen's class name so they reach that screen only
(Textual adds a screen's ``CSS_PATH`` to the app-wide stylesheet). What every screen shares
(the connection bar, the dialogs) is in ``tui/app.tcss``. Decision 0083.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable
from textual.worker import Worker

from tui.feed import ConnectionState, FeedStatus
from tui.screens.modals import ConfirmModal
from tui.widgets.footer import ScreenFooter
from tui.widgets.status import ConnectionBar

if TYPE_CHECKING:
    from tui.app import PreloopApp


class DashboardScreen(Screen[None]):
    HELP_SECTION: ClassVar[str] = "Screen"  # the help's heading for the screen's own keys

    def __init__(self) -> None:
        super().__init__()
        self._last_state: ConnectionState | None = None  # as the connection bar last showed it

    @property
    def preloop(self) -> PreloopApp:
        return self.app  # type: ignore[return-value]  # a dashboard screen only runs in it

    def compose(self) -> ComposeResult:
        yield ConnectionBar(id="connection")
        yield from self.compose_body()
        yield ScreenFooter()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets, between the connection bar and the footer."""
        raise NotImplementedError(f"{type(self).__name__} composes no body")

    def on_mount(self) -> None:
        self.watch(self.app, "connection", self._show_connection)

    def _show_connection(self, status: FeedStatus) -> None:
        self.query_one(ConnectionBar).show(status, self.preloop.client.url, self.preloop.who)
        back = status.state == ConnectionState.CONNECTED != self._last_state
        if back and self._last_state is not None:
            self.reconnected()
        self._last_state = status.state

    def reconnected(self) -> None:
        """The live connection is back after an outage (not called for the first connection).
        Screens that show what may have changed meanwhile load it again here."""

    # -- r --------------------------------------------------------------------------------

    def reload(self) -> Any:
        """Load what the screen shows from the server again: each screen's worker."""
        raise NotImplementedError(f"{type(self).__name__} has no reload")

    def action_reload(self) -> None:
        self.reload()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.preloop.worker_changed(event)

    def confirm(self, question: str, yes: str, then: Callable[[], object]) -> None:
        """Ask ``question`` (``yes`` labels the button that agrees); ``then`` runs only on yes."""

        def answered(answer: bool | None) -> None:
            if answer:
                then()

        self.app.push_screen(ConfirmModal(question, yes), answered)


def row_key(table: DataTable[Any]) -> str | None:
    """The key of the table's highlighted row, ``None`` when the table is empty."""
    if table.row_count == 0:
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
