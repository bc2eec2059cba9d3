"""The Approvals screen: the live queue of requests waiting for people, and one request's
details; ``a`` approves (after a confirmation), ``d`` denies (with an optional comment).

State lives in :class:`tui.queue.ApprovalQueue`. The feed's events are folded into it as
they arrive (a new request is fetched over REST and shown without a key press); each time
the feed (re)connects, the pending list is reloaded, so nothing decided or requested while
the connection was down is missed. Every REST call runs in a worker through the app's one
client; its errors go to the app's one error modal.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable

from hub.errors import NotFoundError, PreloopError
from tui.feed import ConnectionState, FeedStatus
from tui.queue import ApprovalQueue, Item, countdown, outcome, quorum
from tui.screens.base import DashboardScreen, row_key
from tui.screens.modals import DenyModal
from tui.widgets.detail import ApprovalDetailView

COLUMNS = (("expires", "Expires"), ("tool", "Tool"), ("principal", "Principal"),
           ("quorum", "Votes"), ("status", "Status"))  # fmt: skip


class ApprovalsScreen(DashboardScreen):
    HELP_SECTION = "Approvals"
    CSS_PATH = "approvals.tcss"
    BINDINGS = [
        Binding("a", "approve", "Approve"),
        Binding("d", "deny", "Deny"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.queue = ApprovalQueue()

    def compose_body(self) -> ComposeResult:
        with Vertical(id="approvals"):
            table: DataTable[str] = DataTable(id="queue", cursor_type="row", zebra_stripes=True)
            table.border_title = "Approvals"
            yield table
            detail = ApprovalDetailView(id="detail")
            detail.border_title = "Details"
            yield detail

    def on_mount(self) -> None:
        table = self.query_one("#queue", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self.set_interval(1.0, self._tick)
        self._show_detail()

    # -- the feed -------------------------------------------------------------------------

    def feed(self, item: Any) -> None:
        """One item from the app's live feed: a status change or an approval event."""
        if isinstance(item, FeedStatus):
            if item.state == ConnectionState.CONNECTED:
                self.reload()
            return
        request_id = self.queue.apply(item)
        self._render_queue()
        if request_id is not None:
            self.fetch(request_id)

    # -- workers (all I/O) ----------------------------------------------------------------

    @work(group="approvals-reload", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        try:
            pending = await self.preloop.client.pending()
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        vanished = self.queue.load(pending)
        self._render_queue()
        for request_id in vanished:
            self.fetch(request_id)
        selected = self._selected()
        if selected is not None and not selected.detailed:
            self.fetch(selected.request.id)

    @work(exit_on_error=False)
    async def fetch(self, request_id: str) -> None:
        try:
            found = await self.preloop.client.approval(request_id)
        except NotFoundError:
            return
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.queue.put(found.request, found.votes)
        self._render_queue()

    @work(exit_on_error=False)
    async def decide(self, request_id: str, approve: bool, comment: str = "") -> None:
        client = self.preloop.client
        try:
            if approve:
                decided = await client.approve(request_id, comment)
            else:
                decided = await client.deny(request_id, comment)
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.queue.put(decided)
        self._render_queue()
        self.fetch(request_id)
        verb = "approval recorded" if approve else "denied"
        self.notify(f"{decided.server}/{decided.tool}: {verb} ({decided.status.value})")

    # -- actions --------------------------------------------------------------------------

    def action_approve(self) -> None:
        item = self._actionable()
        if item is None:
            return
        request_id = item.request.id
        self.confirm(f"Approve {_what(item)}?", "Approve", lambda: self.decide(request_id, True))

    def action_deny(self) -> None:
        item = self._actionable()
        if item is None:
            return
        request_id = item.request.id

        def denied(comment: str | None) -> None:
            if comment is not None:
                self.decide(request_id, False, comment)

        self.app.push_screen(DenyModal(_what(item)), denied)

    def _actionable(self) -> Item | None:
        item = self._selected()
        if item is None:
            self.notify("No approval request selected.", severity="warning")
            return None
        if not item.pending:
            self.notify(f"Already {outcome(item)}.", severity="warning")
            return None
        return item

    # -- rendering ------------------------------------------------------------------------

    def _selected(self) -> Item | None:
        key = row_key(self.query_one("#queue", DataTable))
        return self.queue.get(key) if key is not None else None

    def _render_queue(self) -> None:
        table = self.query_one("#queue", DataTable)
        selected = self._selected()
        now = self.preloop.now()
        table.clear()
        for item in self.queue.items():
            request = item.request
            table.add_row(
                countdown(request.expires_at, now) if item.pending else "-",
                f"{request.server}/{request.tool}",
                request.principal_key_id,
                quorum(item),
                outcome(item),
                key=request.id,
            )
        if selected is not None and selected.request.id in self.queue:
            table.move_cursor(row=table.get_row_index(selected.request.id), animate=False)
        table.border_subtitle = f"{sum(i.pending for i in self.queue.items())} pending"
        self._show_detail()

    def _tick(self) -> None:
        """The countdowns, once a second."""
        table = next(self.query("#queue").results(DataTable), None)
        if table is None:  # the timer fired while the app takes the screen down
            return
        now = self.preloop.now()
        for item in self.queue.items():
            if item.pending and item.request.id in table.rows:
                table.update_cell(
                    item.request.id, "expires", countdown(item.request.expires_at, now)
                )
        self._show_detail()

    def _show_detail(self) -> None:
        detail = next(self.query(ApprovalDetailView).results(ApprovalDetailView), None)
        if detail is None or not self.query("#queue"):  # the screen is being taken down
            return
        detail.show(self._selected(), self.preloop.now())

    @on(DataTable.RowHighlighted, "#queue")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        item = self._selected()
        self._show_detail()
        if item is not None and not item.detailed:
            self.fetch(item.request.id)


def _what(item: Item) -> str:
    request = item.request
    return f"{request.server}/{request.tool} for {request.principal_key_id}"
