"""The screens the Sessions screen opens: one session's timeline, and a search over the
captured gateway interactions. Both are pushed over the Sessions screen; ``esc`` goes back.

:class:`SessionTimelineScreen`: the session's facts, its gateway calls oldest first (time,
endpoint, model, HTTP status, outcome, tokens, cost, latency, capture mode) and the selected
call's request and response when they were captured and the key may read them (admins and
approvers); otherwise the pane says why there is none: capture off, metadata only, or not for
this key (``GET /api/v1/runtime/sessions/{id}``). While the session is active it is fetched
again every ``refresh_seconds`` as long as the timeline is shown.

:class:`InteractionSearchScreen`: the matches of an :class:`~tui.sessions.InteractionFilter`,
best first, with their score and highlighted snippet; the pane shows the selected one in full.
``/`` edits the search in place; Enter opens the match's session at that call
(``GET /api/v1/gateway/interactions``; the server audits every search and refuses it, with
its own message in the error modal, to a key that may not read content).
"""

from __future__ import annotations

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
from hub.wire import InteractionSearch, InteractionView, RuntimeSessionDetail
from hub.wire.sessions import TURN_CAPTURE_ON, content_note, readable, score_text
from tui.audit_log import FilterError
from tui.screens.base import DashboardScreen, row_key
from tui.screens.usage import money
from tui.sessions import InteractionFilter, ago, snippet_text, state_text

REFRESH_SECONDS = 10.0
CALLS = 500  # a session's latest calls the timeline shows (the API's most)
SEARCH_LIMIT = 50
SPEND_PLACES = 4
TIMELINE_COLUMNS = (("at", "Time"), ("endpoint", "Endpoint"), ("model", "Model"),
                    ("status", "HTTP"), ("outcome", "Outcome"), ("tokens", "Tokens in/out"),
                    ("cost", "Cost"), ("latency", "Latency"), ("captured", "Captured"))  # fmt: skip
SEARCH_COLUMNS = (("at", "Time"), ("score", "Score"), ("session", "Session"),
                  ("model", "Model"), ("snippet", "Snippet"))  # fmt: skip


def _pane(body_id: str, pane_id: str, title: str) -> VerticalScroll:
    pane = VerticalScroll(Static(id=body_id), id=pane_id)
    pane.can_focus = True
    pane.border_title = title
    return pane


def content(call: InteractionView) -> RenderableType:
    """One call in full: its facts, then its request and response (as the server gave them:
    redacted and capped), or why there is none."""
    facts = Table.grid(padding=(0, 1))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row("Call", f"{call.id}  {call.endpoint}  {call.model}")
    facts.add_row("At", call.created_at.isoformat(timespec="seconds"))
    facts.add_row(
        "Answer",
        f"HTTP {call.status} {call.outcome} · {call.latency_ms:,.0f} ms · tokens "
        f"{call.input_tokens:,} in / {call.output_tokens:,} out · "
        f"{money(call.cost, SPEND_PLACES)}",
    )
    facts.add_row("Captured", call.captured or "no")
    parts: list[RenderableType] = [facts]
    if call.score is not None:  # a search's match
        parts += [Text(""), Text(f"Match (score {score_text(call.score)})", style="bold")]
        parts.append(snippet_text(call.snippet, one_line=False) if call.snippet else Text("-"))
    for label, text in (("Request", call.request), ("Response", call.response)):
        if text is not None:
            parts += [Text(""), Text(label, style="bold"), Text(readable(text))]
    if call.truncated:
        parts += [Text(""), Text("(cut at the capture's size limit)", style="italic")]
    note = content_note([call])
    if note and call.score is None:
        parts += [Text(""), Text(note, style="italic")]
    return Group(*parts)


class SessionTimelineScreen(DashboardScreen):
    HELP_SECTION = "Session timeline"
    CSS_PATH = "sessions.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back to the sessions"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, session_id: str, at_call: str | None = None) -> None:
        super().__init__()
        self.session_id = session_id
        self.at_call = at_call  # the call to select once loaded (opened from a search)
        self.detail: RuntimeSessionDetail | None = None
        self.refresh_seconds = REFRESH_SECONDS

    def compose_body(self) -> ComposeResult:
        with Vertical(id="timeline"):
            yield Static(id="timeline-facts")
            table: DataTable[Any] = DataTable(id="timeline-table", cursor_type="row")
            table.border_title = f"Timeline of {self.session_id}"
            yield table
            yield _pane("timeline-body", "timeline-content", "Call")

    def on_mount(self) -> None:
        table = self.query_one("#timeline-table", DataTable)
        for key, label in TIMELINE_COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self.set_interval(self.refresh_seconds, self._tick)
        self._redraw()
        self.reload()

    def _tick(self) -> None:
        if self.is_current and self.detail is not None and self.detail.session.status == "active":
            self.reload()

    def reconnected(self) -> None:
        self.reload()

    @work(group="timeline-reload", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        try:
            found = await self.preloop.client.runtime_session(self.session_id, limit=CALLS)
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.detail = found
        self._redraw()

    def action_back(self) -> None:
        self.dismiss()

    def calls(self) -> list[InteractionView]:
        found = self.detail.interactions if self.detail else []
        return sorted(found, key=lambda call: (call.created_at, call.id))

    def selected(self) -> InteractionView | None:
        key = row_key(self.query_one("#timeline-table", DataTable))
        return next((call for call in self.calls() if call.id == key), None)

    def _redraw(self) -> None:
        facts = self.query_one("#timeline-facts", Static)
        table = self.query_one("#timeline-table", DataTable)
        if self.detail is None:
            facts.update(Text(f"Loading session {self.session_id}…", style="italic"))
            table.border_subtitle = "loading…"
            self._show_call()
            return
        session, now = self.detail.session, self.preloop.now()
        facts.update(
            Text.assemble(
                state_text(session.status),
                f"  {session.flow or 'no flow'} · {session.principal} · "
                f"{session.calls:,} calls · {money(session.cost, SPEND_PLACES)} · "
                f"last {ago(session.last_at, now)}",
            )
        )
        keep = self.at_call or row_key(table)
        self.at_call = None
        table.clear()
        for call in self.calls():
            table.add_row(*_timeline_cells(call), key=call.id)
        if keep is not None and any(call.id == keep for call in self.calls()):
            table.move_cursor(row=table.get_row_index(keep), animate=False)
        table.border_subtitle = f"{table.row_count} calls"
        self._show_call()

    def _show_call(self) -> None:
        body = self.query_one("#timeline-body", Static)
        if self.detail is None:
            body.update("")
            return
        call = self.selected()
        if call is None:
            body.update(Text("No gateway calls recorded in this session.", style="italic"))
            return
        body.update(content(call))

    @on(DataTable.RowHighlighted, "#timeline-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_call()


def _timeline_cells(call: InteractionView) -> tuple[Any, ...]:
    return (
        call.created_at.strftime("%H:%M:%S"),
        call.endpoint,
        call.model,
        str(call.status),
        call.outcome,
        Text(f"{call.input_tokens:,}/{call.output_tokens:,}", justify="right"),
        Text(money(call.cost, SPEND_PLACES), justify="right"),
        Text(f"{call.latency_ms:,.0f} ms", justify="right"),
        call.captured or "-",
    )


class InteractionSearchScreen(DashboardScreen):
    HELP_SECTION = "Search"
    CSS_PATH = "sessions.tcss"
    BINDINGS = [
        Binding("enter", "open", "Open its session", show=False),
        Binding("slash", "edit", "Search again"),
        Binding("escape", "back", "Back to the sessions"),
        Binding("r", "reload", "Run again"),
    ]

    def __init__(self, wanted: InteractionFilter) -> None:
        super().__init__()
        self.wanted = wanted
        self.found: InteractionSearch | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="search"):
            yield Input(value=self.wanted.text, id="search-bar")
            table: DataTable[Any] = DataTable(id="search-table", cursor_type="row")
            table.border_title = "Captured calls"
            yield table
            yield _pane("search-body", "search-hit", "Match")

    def on_mount(self) -> None:
        table = self.query_one("#search-table", DataTable)
        for key, label in SEARCH_COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self._redraw()
        self.reload()

    @work(group="search-run", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        self.found = None
        self._redraw()
        try:
            found = await self.preloop.client.search_interactions(
                self.wanted.q, **self.wanted.filters(), limit=SEARCH_LIMIT
            )
        except PreloopError as exc:
            self.query_one("#search-table", DataTable).border_subtitle = "refused"
            self.query_one("#search-body", Static).update(Text(exc.message, style="italic"))
            self.preloop.show_error(exc)
            return
        self.found = found
        self._redraw()

    def action_back(self) -> None:
        focused = self.focused
        if isinstance(focused, Input):
            self.query_one("#search-table", DataTable).focus()
            return
        self.dismiss()

    def action_edit(self) -> None:
        self.query_one("#search-bar", Input).focus()

    def action_open(self) -> None:
        hit = self.selected()
        if hit is None:
            return
        if not hit.session:
            self.notify("This call belongs to no session.", title="No session")
            return
        self.app.push_screen(SessionTimelineScreen(hit.session, at_call=hit.id))

    @on(DataTable.RowSelected, "#search-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    @on(Input.Submitted, "#search-bar")
    def _search(self, event: Input.Submitted) -> None:
        try:
            self.wanted = InteractionFilter.parse(event.value, self.preloop.now())
        except FilterError as exc:
            self.preloop.show_error(exc)
            return
        self.query_one("#search-table", DataTable).focus()
        self.reload()

    def selected(self) -> InteractionView | None:
        key = row_key(self.query_one("#search-table", DataTable))
        hits = self.found.interactions if self.found else []
        return next((hit for hit in hits if hit.id == key), None)

    def _redraw(self) -> None:
        table = self.query_one("#search-table", DataTable)
        table.clear()
        if self.found is None:
            table.border_subtitle = "searching…"
            self.query_one("#search-body", Static).update("")
            return
        for hit in self.found.interactions:
            table.add_row(*_search_cells(hit), key=hit.id)
        served = " · ".join(part for part in (self.found.engine, self.found.model) if part)
        count = len(self.found.interactions)
        table.border_subtitle = (
            f"{count} match{'es' if count != 1 else ''} · {self.wanted.search_type} · {served}"
        )
        self._show_hit()

    def _show_hit(self) -> None:
        body = self.query_one("#search-body", Static)
        if self.found is None:
            return
        hit = self.selected()
        if hit is None:
            nothing = Text(f"No captured call matches {self.wanted.q!r}.")
            body.update(Group(nothing, Text(""), Text(TURN_CAPTURE_ON, style="italic")))
            return
        body.update(content(hit))

    @on(DataTable.RowHighlighted, "#search-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_hit()


def _search_cells(hit: InteractionView) -> tuple[Any, ...]:
    snippet = snippet_text(hit.snippet) if hit.snippet else Text("-")
    snippet.truncate(60, overflow="ellipsis")
    return (
        hit.created_at.strftime("%m-%d %H:%M"),
        Text(score_text(hit.score), justify="right"),
        hit.session or "-",
        hit.model,
        snippet,
    )
