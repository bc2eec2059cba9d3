"""The Policies screen's dialogs: the diff preview before applying, and the version history.

Like the other confirmations, both start with the focus on the harmless choice, so a stray
Enter never applies or rolls back anything.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Label, Static

from hub.wire import PolicyVersionSummary
from tui.screens.base import row_key


def diff_text(diff: str) -> Text:
    """A unified diff with added lines green and removed lines red (and the +/- kept, so it
    reads without colour)."""
    text = Text()
    for line in diff.splitlines():
        style = ""
        if line.startswith("+") and not line.startswith("+++"):
            style = "green"
        elif line.startswith("-") and not line.startswith("---"):
            style = "red"
        elif line.startswith("@@"):
            style = "bold"
        text.append(line + "\n", style=style)
    return text


class DiffModal(ModalScreen[bool]):
    """What applying would change; ``y`` applies it as a new version."""

    CSS_PATH = "policy_dialogs.tcss"
    BINDINGS = [
        Binding("y", "answer(True)", "Apply"),
        Binding("n,escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, diff: str, active_version: int, *, started_from: int) -> None:
        super().__init__()
        self.diff, self.active_version, self.started_from = diff, active_version, started_from

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Label(
                f"Apply these changes to version {self.active_version} as a new version?",
                classes="dialog-title",
            )
            if self.active_version != self.started_from:
                yield Static(
                    f"Version {self.active_version} was applied after you started from version "
                    f"{self.started_from}: its changes show here as undone. Cancel and press r "
                    "to start again from it, or apply to replace it.",
                    id="policy-stale",
                    classes="-warning",
                )
            with VerticalScroll(id="policy-diff"):
                yield Static(diff_text(self.diff), id="policy-diff-text")
            with Horizontal(classes="buttons"):
                yield Button("Apply (y)", id="yes", variant="warning")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class HistoryModal(ModalScreen[int | None]):
    """Every applied version, newest first; ``r`` rolls back to the selected one."""

    CSS_PATH = "policy_dialogs.tcss"
    BINDINGS = [
        Binding("r", "rollback", "Roll back to the selected version"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, versions: list[PolicyVersionSummary]) -> None:
        super().__init__()
        self.versions = versions

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Label("Policy history  (r: roll back · esc: close)", classes="dialog-title")
            yield DataTable(id="policy-versions", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Version", "Applied (UTC)", "By", "Comment")
        for v in self.versions:
            label = f"{v.version} (active)" if v.active else str(v.version)
            when = v.created_at.strftime("%Y-%m-%d %H:%M")
            table.add_row(label, when, v.created_by, v.comment, key=str(v.version))
        table.focus()

    def action_rollback(self) -> None:
        key = row_key(self.query_one(DataTable))
        if key is not None:
            self.dismiss(int(key))

    def action_close(self) -> None:
        self.dismiss(None)
