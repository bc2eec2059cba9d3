"""The modals: the one error modal, the confirmation, and the deny comment.

Every server error the dashboard meets is shown by :class:`ErrorModal` (a title and a message,
never a traceback). Confirmations put focus on the harmless choice, so a stray Enter never
decides anything; ``y`` / ``n`` answer directly.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ErrorModal(ModalScreen[None]):
    # A modal stops the app's bindings; ``q`` still quits, so an unreachable server never
    # traps the person in a dashboard they cannot leave.
    BINDINGS = [Binding("escape,enter", "dismiss", "Close"), Binding("q", "app.quit", "Quit")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.error_title, self.message = title, message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -error"):
            yield Label(self.error_title, classes="dialog-title")
            yield Static(self.message, id="error-message")
            with Horizontal(classes="buttons"):
                yield Button("Close", id="close", variant="primary")

    def add(self, title: str, message: str) -> None:
        """Another error while this one is shown: listed below it, still one modal."""
        self.message += f"\n\n{title}: {message}"
        self.query_one("#error-message", Static).update(self.message)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)


class ConfirmModal(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str) -> None:
        super().__init__()
        self.question, self.yes = question, yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, id="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="warning")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class DenyModal(ModalScreen[str | None]):
    """Deny with an optional comment (shown to the agent). Enter in the field denies."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Deny {self.what}?", id="question")
            yield Input(placeholder="comment for the agent (optional)", id="comment")
            with Horizontal(classes="buttons"):
                yield Button("Deny", id="deny", variant="error")
                yield Button("Cancel (esc)", id="cancel")

    def _comment(self) -> str:
        return self.query_one("#comment", Input).value.strip()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(self._comment())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self._comment() if event.button.id == "deny" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
