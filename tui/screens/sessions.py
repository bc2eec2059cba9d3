"""The Sessions screen: recent runtime sessions, live; Enter opens one's timeline, ``/``
searches the captured gateway interactions.

A session is a flow execution, or the requests an agent sent with one
``X-Preloop-Session-Id`` header; the server builds them from the usage ledger, so they list
whether or not content capture is on (``GET /api/v1/runtime/sessions``). Each row: the
session, its flow, principal, models, calls, spend, last activity and state (``● active``,
``○ ended``); the pane below shows the highlighted one in full. ``s`` cycles which sessions
are listed (all, active, ended).

Live: there is no session event on the WebSocket, so the list is fetched again every
``refresh_seconds`` (10 s) while this screen is the one shown (a hidden screen asks nothing),
at once when it is shown again, on ``r``, and when the live connection comes back; the
highlighted session stays highlighted. Decision 0111.

``/`` focuses the search bar (:class:`tui.sessions.InteractionFilter`); ``enter`` runs the
search in :class:`~tui.screens.session_views.InteractionSearchScreen`, Enter on a session opens
:class:`~tui.screens.session_views.SessionTimelineScreen`. Every REST call runs in a worker
through the app's one client; errors go to the app's one error modal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static

from hub.errors import PreloopError
from hub.wire import RuntimeSessionView
from hub.wire.sessions import TURN_CAPTURE_ON
from tui.audit_log import FilterError
from tui.screens.base import DashboardScreen, row_key
from tui.screens.session_views import InteractionSearchScreen, SessionTimelineScreen
from tui.screens.usage import money
from tui.sessions import InteractionFilter, ago, cut, state_text

REFRESH_SECONDS = 10.0
LIMIT = 200
STATUSES = ("all", "active", "ended")
# (key, label, width): fixed widths, longer values cut with "…" (the pane has them whole).
# At 120 columns and more every column; narrower, flow and principal share one column (the
# flow, else the principal) and the models are in the pane only, so 80 columns fit.
WIDE = 120
WIDE_COLUMNS = (("state", "State", 8), ("id", "Session", 19), ("flow", "Flow", 14),
                ("principal", "Principal", 18), ("models", "Models", 20),
                ("calls", "Calls", 5), ("cost", "Spend", 8), ("last", "Last", 8))  # fmt: skip
NARROW_COLUMNS = (("state", "State", 8), ("id", "Session", 19), ("who", "Flow / principal", 16),
                  ("calls", "Calls", 5), ("cost", "Spend", 8), ("last", "Last", 8))  # fmt: skip
SPEND_PLACES = 4
NO_SESSIONS = (
    "No runtime sessions yet. A session is a flow execution, or the model requests an agent "
    "sends through the gateway with one X-Preloop-Session-Id header; each lists here from its "
    "first model call, whether or not content is captured."
)


class SessionsScreen(DashboardScreen):
    HELP_SECTION = "Sessions"
    CSS_PATH = "sessions.tcss"
    BINDINGS = [
        Binding("enter", "open", "Open the selected session's timeline", show=False),
        Binding(
            "slash", "search", "Search", tooltip="Search captured interactions (the search bar)"
        ),
        Binding("escape", "focus_table", "Back to the table", show=False),
        Binding("s", "status", "Show: all/active/ended"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.status = "all"
        self.sessions: list[RuntimeSessionView] | None = None  # None: not loaded yet
        self.loaded_at: datetime | None = None
        self.refresh_seconds = REFRESH_SECONDS  # tests lower it before the screen is shown
        self.wide: bool | None = None  # which columns the table has (None: none yet)

    def compose_body(self) -> ComposeResult:
        with Vertical(id="sessions"):
            yield Input(
                placeholder="/ search captured calls: words  model:… flow:… session:… "
                "since:2h type:similarity",
                id="sessions-search",
            )
            table: DataTable[Any] = DataTable(id="sessions-table", cursor_type="row")
            table.border_title = "Sessions"
            yield table
            pane = VerticalScroll(Static(id="session-summary"), id="session-pane")
            pane.can_focus = True
            pane.border_title = "Session"
            yield pane

    def on_mount(self) -> None:
        self.query_one("#sessions-table", DataTable).focus()
        self.set_interval(self.refresh_seconds, self._tick)
        self._redraw()
        self.reload()

    def on_screen_resume(self) -> None:
        if self.loaded_at is not None:  # shown again: what changed while it was hidden
            self.reload()

    def on_resize(self) -> None:
        if self.wide is not None and self.wide != (self.app.size.width >= WIDE):
            self._redraw()

    def _tick(self) -> None:
        if self.is_current:
            self.reload()

    def reconnected(self) -> None:
        self.reload()

    # -- workers (all I/O) ----------------------------------------------------------------

    @work(group="sessions-reload", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        try:
            found = await self.preloop.client.runtime_sessions(status=self.status, limit=LIMIT)
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.sessions, self.loaded_at = found.sessions, self.preloop.now()
        self._redraw()

    # -- actions --------------------------------------------------------------------------

    def action_open(self) -> None:
        session = self.selected()
        if session is not None:
            self.app.push_screen(SessionTimelineScreen(session.id))

    def action_search(self) -> None:
        self.query_one("#sessions-search", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one("#sessions-table", DataTable).focus()

    def action_status(self) -> None:
        self.status = STATUSES[(STATUSES.index(self.status) + 1) % len(STATUSES)]
        self.sessions = None
        self._redraw()
        self.reload()

    @on(DataTable.RowSelected, "#sessions-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    @on(Input.Submitted, "#sessions-search")
    def _search(self, event: Input.Submitted) -> None:
        try:
            wanted = InteractionFilter.parse(event.value, self.preloop.now())
        except FilterError as exc:
            self.preloop.show_error(exc)
            return
        self.action_focus_table()
        self.app.push_screen(InteractionSearchScreen(wanted))

    # -- rendering ------------------------------------------------------------------------

    def selected(self) -> RuntimeSessionView | None:
        key = row_key(self.query_one("#sessions-table", DataTable))
        return next((s for s in self.sessions or [] if s.id == key), None)

    def _redraw(self) -> None:
        table = self.query_one("#sessions-table", DataTable)
        keep = row_key(table)
        wide = self.app.size.width >= WIDE
        table.clear(columns=wide != self.wide)
        if wide != self.wide:
            for key, label, width in WIDE_COLUMNS if wide else NARROW_COLUMNS:
                table.add_column(label, key=key, width=width)
            self.wide = wide
        now = self.preloop.now()
        for session in self.sessions or []:
            table.add_row(*_cells(session, now, wide=wide), key=session.id)
        if keep is not None and any(s.id == keep for s in self.sessions or []):
            table.move_cursor(row=table.get_row_index(keep), animate=False)
        shown = "" if self.status == "all" else f" · {self.status}"
        table.border_title = f"Sessions{shown}"
        if self.sessions is None:
            table.border_subtitle = "loading…"
        else:
            active = sum(s.status == "active" for s in self.sessions)
            loaded = self.loaded_at.strftime("%H:%M:%S") if self.loaded_at else ""
            table.border_subtitle = f"{len(self.sessions)} sessions · {active} active · {loaded}"
        self._show_summary()

    def _show_summary(self) -> None:
        body = self.query_one("#session-summary", Static)
        if self.sessions is None:
            body.update(Text("Loading sessions…", style="italic"))
            return
        if not self.sessions:
            empty = NO_SESSIONS if self.status == "all" else f"No {self.status} sessions."
            body.update(Group(Text(empty), Text(""), Text(TURN_CAPTURE_ON, style="italic")))
            return
        session = self.selected()
        body.update(summary(session, self.preloop.now()) if session else "")

    @on(DataTable.RowHighlighted, "#sessions-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_summary()


def _cells(session: RuntimeSessionView, now: datetime, *, wide: bool) -> tuple[Any, ...]:
    widths = {key: width for key, _, width in WIDE_COLUMNS + NARROW_COLUMNS}
    who = (
        (cut(session.flow or "-", widths["flow"]), cut(session.principal, widths["principal"]),
         cut(", ".join(session.models) or "-", widths["models"]))
        if wide
        else (cut(session.flow or session.principal, widths["who"]),)
    )  # fmt: skip
    return (
        state_text(session.status),
        cut(session.id, widths["id"]),
        *who,
        Text(f"{session.calls:,}", justify="right"),
        Text(money(session.cost, SPEND_PLACES), justify="right"),
        ago(session.last_at, now),
    )


def summary(session: RuntimeSessionView, now: datetime) -> RenderableType:
    """The pane under the table: the highlighted session in full."""
    facts = Table.grid(padding=(0, 1))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row("Session", Text.assemble(session.id, "  ", state_text(session.status)))
    if session.flow or session.execution_id:
        execution = f"  (execution {session.execution_id})" if session.execution_id else ""
        facts.add_row("Flow", f"{session.flow or '-'}{execution}")
    facts.add_row("Principal", session.principal)
    facts.add_row("Models", ", ".join(session.models) or "-")
    facts.add_row(
        "Calls",
        f"{session.calls:,} · tokens {session.input_tokens:,} in / {session.output_tokens:,} "
        f"out · {money(session.cost, SPEND_PLACES)}",
    )
    started = session.started_at.isoformat(timespec="seconds") if session.started_at else "-"
    last = session.last_at.isoformat(timespec="seconds") if session.last_at else "-"
    facts.add_row("Active", f"{started} → {last} ({ago(session.last_at, now)})")
    hint = Text("enter: the timeline of its calls · /: search captured calls", style="italic")
    return Group(facts, Text(""), hint)
