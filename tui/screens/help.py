"""The help screen: every key binding of the screen it was opened from, and the app's.

Built from :func:`tui.keys.documented`, the same list the command palette uses.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from tui.keys import KeyHelp


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close the help")]

    def __init__(self, keys: list[KeyHelp]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -help"):
            yield Label("Keys  (ctrl+p: command palette · esc: close)", classes="dialog-title")
            yield DataTable(id="help-keys", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Key", "Action", "Where")
        for row in self.keys:
            table.add_row(row.key, row.description, row.section)
        table.focus()
