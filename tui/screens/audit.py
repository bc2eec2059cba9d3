"""The Audit screen: the account's audit events, newest first, narrowed by a filter bar, with
one event's details; it follows new events live and exports the current filter to JSON Lines.

Paging: the first page (``PAGE`` events) is loaded when the screen opens or the filter
changes; the next one (keyset, ``before_seq``) when the cursor comes within ``NEAR_END`` rows
of the end. So the screen stays as quick with 100,000 events in the store as with ten.

Live: the screen runs its own follower of the WebSocket's ``activity`` topic (the app's feed
serves the approvals). Events that pass the filter are added at the top; a cursor on the top
row stays on the newest event. Each time the follower (re)connects, the events appended since
the newest one loaded are fetched, so nothing appended while it was down is missed.

Export (``e``) asks for a file name (default: a timestamped one in the current directory),
streams the current filter's events from ``/api/v1/audit/export`` into it with progress, and
says where it wrote. Every REST call runs in a worker; errors go to the app's error modal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Static

from hub.errors import NotFoundError, PreloopError
from hub.wire import ApprovalDetail, AuditEventView
from tui.audit_log import PAGE, AuditFilter, AuditLog, FilterError
from tui.feed import ActivityEvent, ConnectionState, FeedStatus, LiveFeed
from tui.screens.base import DashboardScreen, row_key
from tui.widgets.audit_detail import AuditDetailView, actor_name_in

NEAR_END = 20  # rows from the end at which the next page is fetched
# (key, label, width). Fixed widths, not measured from the rows: Textual measures new rows
# when the table is next idle, and a draw before that (a live event and the first page
# arriving in either order, while the screen is first shown) cached every cell cut at its
# header's width ("appr", "16:5"). Longer values are cut at the width; the detail pane has
# them whole.
COLUMNS = (("seq", "#", 7), ("at", "Time", 8), ("kind", "Kind", 22), ("tool", "Tool", 22),
           ("decision", "Decision", 16), ("result", "Result", 9),
           ("actor", "Principal", 20))  # fmt: skip


class AuditScreen(DashboardScreen):
    HELP_SECTION = "Audit"
    CSS_PATH = "audit.tcss"
    BINDINGS = [
        Binding("slash", "edit_filter", "Filter / search"),
        Binding("escape", "focus_table", "Back to the table", show=False),
        Binding("e", "export", "Export to JSONL"),
        Binding("g", "newest", "Newest event"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.audit = AuditLog()
        self.audit_filter = AuditFilter()
        self.approvals: dict[str, ApprovalDetail] = {}
        self.paging = False
        # What the screen follows; tests replace it before the screen is first shown.
        self.make_feed: Callable[[], Any] = self._activity_feed

    def _activity_feed(self) -> Any:
        client = self.preloop.client
        return LiveFeed(client.url, client.api_key, topic="activity")

    def compose_body(self) -> ComposeResult:
        with Vertical(id="audit"):
            yield Input(
                placeholder="/ search text, tool:… server:… principal:… decision:… since:2h",
                id="audit-filter",
            )
            table: DataTable[Any] = DataTable(id="audit-table", cursor_type="row")
            table.border_title = "Audit"
            yield table
            detail = AuditDetailView(id="audit-detail")
            detail.border_title = "Event"
            yield detail

    def on_mount(self) -> None:
        table = self.query_one("#audit-table", DataTable)
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        table.focus()
        self._show_detail()
        self.reload()
        self.follow()

    # -- workers (all I/O) ----------------------------------------------------------------

    @work(group="audit-follow", exclusive=True, exit_on_error=False)
    async def follow(self) -> None:
        async for item in self.make_feed().updates():
            if isinstance(item, FeedStatus):
                if item.state != ConnectionState.CONNECTED:
                    continue
                # Fill the gap since the newest event shown (or load, if nothing is yet).
                if len(self.audit):
                    self.catch_up()
                elif not self.paging:
                    self.reload()
            elif (
                isinstance(item, ActivityEvent)
                and self.audit_filter.admits(item)
                and self.audit.add_live(item)
            ):
                self._add_rows([item])

    @work(group="audit-page", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        """The first page of the current filter, replacing what was loaded."""
        self.paging = True
        try:
            params = self.audit_filter.params() | {"limit": PAGE}
            page = await self.preloop.client.audit_page(params)
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        finally:
            self.paging = False
        # Live events that arrived while the page loaded and are newer than it stay: the page
        # was read before they were appended.
        newest = max((event.seq for event in page), default=0)
        late = [
            event
            for event in self.audit.events.values()
            if event.seq > newest and self.audit_filter.admits(event)
        ]
        self.audit.reset(keep=late)
        self.audit.add_page(page)
        table = self.query_one("#audit-table", DataTable)
        table.clear()
        self._add_rows([*late, *page])
        self._summary()

    @work(group="audit-page", exclusive=True, exit_on_error=False)
    async def next_page(self) -> None:
        self.paging = True
        try:
            page = await self.preloop.client.audit_page(
                self.audit_filter.params() | self.audit.next_page()
            )
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        finally:
            self.paging = False
        self._add_rows(self.audit.add_page(page))

    @work(group="audit-page", exit_on_error=False)
    async def catch_up(self) -> None:
        """Events appended since the newest loaded (the follower was down): oldest first."""
        params = self.audit_filter.params() | {"after_seq": self.audit.newest, "limit": 1000}
        try:
            page = await self.preloop.client.audit_page(params | {"order": "oldest"})
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        if len(page) == 1000:  # too many to fold in: start again from the newest page
            self.reload()
            return
        self._add_rows([event for event in page if self.audit.add_live(event)])

    @work(exit_on_error=False)
    async def fetch_approval(self, approval_id: str) -> None:
        try:
            found = await self.preloop.client.approval(approval_id)
        except NotFoundError:
            return
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.approvals[approval_id] = found
        self._show_detail()

    @work(group="audit-export", exclusive=True, exit_on_error=False)
    async def export(self, into: Path) -> None:
        table = self.query_one("#audit-table", DataTable)

        def progress(count: int) -> None:
            table.border_subtitle = f"exporting: {count} events"

        try:
            params = self.audit_filter.params()
            count = await self.preloop.client.export_audit(params, into, progress)
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        finally:
            self._summary()
        self.notify(f"Wrote {count} events to {into}", title="Exported", timeout=10)

    # -- actions --------------------------------------------------------------------------

    def action_edit_filter(self) -> None:
        self.query_one("#audit-filter", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one("#audit-table", DataTable).focus()

    def action_newest(self) -> None:
        table = self.query_one("#audit-table", DataTable)
        table.focus()
        table.move_cursor(row=0, animate=False)

    def action_export(self) -> None:
        stamp = self.preloop.now().strftime("%Y%m%dT%H%M%SZ")
        default = Path.cwd() / f"preloop-audit-{stamp}.jsonl"

        def chosen(path: str | None) -> None:
            if path:
                self.export(Path(path).expanduser().absolute())

        self.app.push_screen(ExportModal(str(default), self.audit_filter.text), chosen)

    @on(Input.Submitted, "#audit-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        try:
            self.audit_filter = AuditFilter.parse(event.value, self.preloop.now())
        except FilterError as exc:
            self.preloop.show_error(PreloopError(str(exc), title="Filter not understood"))
            return
        self.action_focus_table()
        self.reload()

    # -- rendering ------------------------------------------------------------------------

    def selected(self) -> AuditEventView | ActivityEvent | None:
        key = row_key(self.query_one("#audit-table", DataTable))
        return self.audit.get(int(key)) if key is not None else None

    def _add_rows(self, events: Sequence[AuditEventView | ActivityEvent]) -> None:
        """Add rows and keep the table newest first; the highlighted event stays highlighted
        (a cursor on the top row follows the newest)."""
        if not events:
            return
        table = self.query_one("#audit-table", DataTable)
        selected = self.selected()
        at_top = table.cursor_row == 0
        for event in events:
            table.add_row(*_cells(event), key=str(event.seq))
        table.sort("seq", reverse=True)
        if selected is not None and not at_top:
            table.move_cursor(row=table.get_row_index(str(selected.seq)), animate=False)
        else:
            table.move_cursor(row=0, animate=False)
        self._summary()
        self._show_detail()

    def _summary(self) -> None:
        table = self.query_one("#audit-table", DataTable)
        more = "" if self.audit.exhausted else "+"
        narrowed = f"  ·  {self.audit_filter.text}" if self.audit_filter.text else ""
        table.border_subtitle = f"{len(self.audit)}{more} events{narrowed}"

    def _show_detail(self) -> None:
        event = self.selected()
        approval = None
        if event is not None and "approval_id" in event.data:
            approval_id = str(event.data["approval_id"])
            approval = self.approvals.get(approval_id)
            if approval is None:
                self.fetch_approval(approval_id)
        self.query_one(AuditDetailView).show(event, approval)

    @on(DataTable.RowHighlighted, "#audit-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()
        table = event.data_table
        near_end = event.cursor_row >= table.row_count - NEAR_END
        if near_end and not self.audit.exhausted and not self.paging and len(self.audit):
            self.paging = True
            self.next_page()


def _cells(event: AuditEventView | ActivityEvent) -> tuple[Any, ...]:
    data = event.data
    tool = f"{data['server']}/{data['tool']}" if "tool" in data and "server" in data else ""
    return (
        event.seq,
        event.at.strftime("%H:%M:%S"),  # the date is in the detail pane
        event.kind,
        tool,
        str(data.get("decision", "")),
        str(data.get("status", "")),
        actor_name(event),
    )


def actor_name(event: AuditEventView | ActivityEvent) -> str:
    """Who acted, by name where the event recorded one (a vote or a decision), else by id."""
    return actor_name_in(event.actor, event.data) or event.actor


class ExportModal(ModalScreen[str | None]):
    """Where to write the export: Enter writes, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: str, narrowed: str) -> None:
        super().__init__()
        self.default, self.narrowed = default, narrowed

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            what = f"events matching {self.narrowed!r}" if self.narrowed else "every event"
            yield Static(f"Export {what} to JSON Lines, into the file:", id="question")
            yield Input(value=self.default, id="export-path")
            with Horizontal(classes="buttons"):
                yield Button("Export", id="export", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def _path(self) -> str:
        return self.query_one("#export-path", Input).value.strip()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(self._path() or None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self._path() or None if event.button.id == "export" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
