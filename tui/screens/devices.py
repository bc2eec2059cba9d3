"""The Devices screen: pair a phone by showing a one-time QR code with its expiry; list and
revoke paired devices. Admin keys only (the server's rule): anything else gets the server's
refusal in the error modal.

``p`` asks for the person to pair a phone for (an email or user id, completed from the
account's users) and asks the server for a pairing token (``POST /api/v1/pairing-tokens/``).
Its ``uri`` is drawn as a QR code in half-block characters (:func:`hub.qr.qr_terminal`, the
CLI's rendering), white on black whatever the theme, beside a countdown to the token's expiry.
The server keeps only a hash of the token, so an expired code cannot be shown again: the pane
says so and ``p`` makes a new one. When a reload finds a new device of that person, the code
has been used: the pane says which phone paired and drops the code.

The list is loaded when the screen is first shown, on ``r``, and again whenever the live
connection comes back after an outage (the screen keeps its state meanwhile).

``x`` revokes the selected device after a confirmation (its credential stops working at once,
on every replica). Every REST call runs in a worker through the app's one client; its errors go
to the app's one error modal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, DataTable, Input, Static

from hub.errors import PreloopError
from hub.qr import qr_terminal
from hub.wire import DeviceView, PairingCreated, UserView
from tui.queue import countdown
from tui.screens.base import DashboardScreen, row_key

if TYPE_CHECKING:
    from datetime import datetime

COLUMNS = (("name", "Name"), ("user", "User"), ("platform", "Platform"), ("push", "Push"),
           ("status", "Status"), ("paired", "Paired at (UTC)"))  # fmt: skip

PAIRING_SECONDS = 600  # the server's default; at most 3600
QR_BORDER = 2  # quiet zone in modules: the code fits 120x40 and still scans
QR_STYLE = "#ffffff on #000000"  # light modules drawn on black, in light and dark themes

IDLE = "Press p to pair a phone: it shows a one-time QR code for the Preloop app."


class PairModal(ModalScreen[str | None]):
    """Whom to pair a phone for: an email or user id, completed from the account's users."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, emails: list[str]) -> None:
        super().__init__()
        self.emails = emails

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Pair a phone for (email or user id):", id="question")
            yield Input(
                placeholder="ann@example.com",
                id="pair-user",
                suggester=SuggestFromList(self.emails, case_sensitive=False),
            )
            if self.emails:
                yield Static(f"Users: {', '.join(self.emails)}", id="pair-users")
            with Horizontal(classes="buttons"):
                yield Button("Show code (enter)", id="pair", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def _user(self) -> str | None:
        return self.query_one("#pair-user", Input).value.strip() or None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(self._user())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self._user() if event.button.id == "pair" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DevicesScreen(DashboardScreen):
    HELP_SECTION = "Devices"
    CSS_PATH = "devices.tcss"
    BINDINGS = [
        Binding("p", "pair", "Pair", tooltip="Pair a phone (QR code)"),
        Binding("x", "revoke", "Revoke", tooltip="Revoke the selected device"),
        Binding("r", "reload", "Reload", tooltip="Reload the devices"),
        Binding("c", "clear_code", "Hide code", tooltip="Hide the pairing code"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.devices: dict[str, DeviceView] = {}
        self.emails: dict[str, str] = {}  # user id -> email
        self.pairing: PairingCreated | None = None
        self.pairing_for = ""  # what was typed: shown in the pane
        self.known_before: set[str] = set()  # device ids when the code was made
        self.paired: DeviceView | None = None  # the device that used the code
        self.code_lines: list[str] = []  # the QR code's half-block rows

    def compose_body(self) -> ComposeResult:
        with Vertical(id="devices-body"):
            table: DataTable[str] = DataTable(id="devices", cursor_type="row", zebra_stripes=True)
            table.border_title = "Devices"
            yield table
            with VerticalScroll(id="pairing") as pane:
                pane.border_title = "Pairing"
                with Horizontal(id="pairing-body"):
                    yield Static(id="qr", classes="-hidden")
                    yield Static(IDLE, id="pairing-note")

    def on_mount(self) -> None:
        table = self.query_one("#devices", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self.set_interval(1.0, self._show_pairing)
        self.reload()

    def reconnected(self) -> None:
        self.reload()  # the server is back: what changed meanwhile is listed

    # -- workers (all I/O) ----------------------------------------------------------------

    @work(group="devices-reload", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        client = self.preloop.client
        try:
            devices = await client.devices()
            users = await client.users()
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.emails = {user.id: user.email for user in users}
        self.devices = {device.id: device for device in devices}
        if self.pairing is not None and self.paired is None:
            self.paired = next(
                (
                    device
                    for device in devices
                    if device.user_id == self.pairing.user_id and device.id not in self.known_before
                ),
                None,
            )
        self._render_devices()
        self._show_pairing()

    @work(group="devices-pair", exclusive=True, exit_on_error=False)
    async def choose_user(self) -> None:
        """Ask whom to pair for, offering the account's users (if the key may list them)."""
        try:
            users: list[UserView] = await self.preloop.client.users()
        except PreloopError:
            users = []  # no completion; the pairing itself reports the refusal
        self.app.push_screen(PairModal(sorted(u.email for u in users)), self._chosen)

    def _chosen(self, user: str | None) -> None:
        if user:
            self.start_pairing(user)

    @work(group="devices-pair", exclusive=True, exit_on_error=False)
    async def start_pairing(self, user: str) -> None:
        try:
            pairing = await self.preloop.client.start_pairing(user, PAIRING_SECONDS)
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.pairing, self.pairing_for, self.paired = pairing, user, None
        self.known_before = set(self.devices)
        self.code_lines = qr_terminal(pairing.uri, border=QR_BORDER).rstrip("\n").splitlines()
        self.query_one("#qr", Static).update(Text("\n".join(self.code_lines), style=QR_STYLE))
        self._show_pairing()

    @work(exit_on_error=False)
    async def revoke(self, device_id: str) -> None:
        try:
            revoked = await self.preloop.client.revoke_device(device_id)
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.devices[revoked.id] = revoked
        self._render_devices()
        self.notify(f"{revoked.name} revoked: its credential no longer works.")

    # -- actions --------------------------------------------------------------------------

    def action_pair(self) -> None:
        self.choose_user()

    def action_clear_code(self) -> None:
        self.pairing, self.paired = None, None
        self._show_pairing()

    def action_revoke(self) -> None:
        device = self._selected()
        if device is None:
            self.notify("No device selected.", severity="warning")
            return
        if device.revoked_at is not None:
            self.notify(f"{device.name} is already revoked.", severity="warning")
            return
        device_id = device.id
        question = (
            f"Revoke {device.name} ({device.platform}) of {self._user(device.user_id)}? "
            "Its credential stops working at once."
        )
        self.confirm(question, "Revoke", lambda: self.revoke(device_id))

    # -- rendering ------------------------------------------------------------------------

    def _user(self, user_id: str) -> str:
        return self.emails.get(user_id, user_id)

    def _selected(self) -> DeviceView | None:
        key = row_key(self.query_one("#devices", DataTable))
        return self.devices.get(key) if key is not None else None

    def _render_devices(self) -> None:
        table = self.query_one("#devices", DataTable)
        selected = self._selected()
        table.clear()
        for device in self.devices.values():
            table.add_row(
                device.name,
                self._user(device.user_id),
                device.platform,
                "yes" if device.has_push_token else "no",
                device.status,
                device.created_at.strftime("%Y-%m-%d %H:%M"),
                key=device.id,
            )
        if selected is not None and selected.id in self.devices:
            table.move_cursor(row=table.get_row_index(selected.id), animate=False)
        active = sum(device.revoked_at is None for device in self.devices.values())
        table.border_subtitle = f"{active} active, {len(self.devices) - active} revoked"

    def _show_pairing(self) -> None:
        """The pairing pane: the code and its countdown, or what to do next (every second)."""
        pane = self.query_one("#pairing", VerticalScroll)
        qr = self.query_one("#qr", Static)
        note = self.query_one("#pairing-note", Static)
        pairing, now = self.pairing, self.preloop.now()
        showing = pairing is not None and self.paired is None and pairing.expires_at > now
        qr.set_class(not showing, "-hidden")
        if pairing is None:
            pane.border_title, pane.border_subtitle = "Pairing", ""
            note.update(IDLE)
            return
        pane.border_title = f"Pairing a phone for {self.pairing_for}"
        if self.paired is not None:
            pane.border_subtitle = "paired"
            note.update(
                f"Paired: {self.paired.name} ({self.paired.platform}) for "
                f"{self._user(self.paired.user_id)}. The code is used up; "
                "press p to pair another phone."
            )
        elif not showing:
            pane.border_subtitle = "expired"
            note.update(
                f"The code expired at {_clock(pairing.expires_at)} UTC without being used. "
                "Press p for a new one."
            )
        else:
            left = countdown(pairing.expires_at, now)
            pane.border_subtitle = f"expires in {left}"
            rows = len(self.code_lines)
            fits = pane.size.height >= rows
            scan = (
                "Scan with the Preloop app."
                if fits
                else (
                    f"The code needs {rows} rows: enlarge the terminal (or tab here and scroll) "
                    "to scan it."
                )
            )
            note.update(
                f"{scan}\n\nExpires in {left} "
                f"(at {_clock(pairing.expires_at)} UTC); it works once.\n\n"
                f"Or enter it by hand:\n{pairing.uri}\n\n"
                "Press r once the phone is paired; c hides the code."
            )


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S")
