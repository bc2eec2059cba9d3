"""The Servers screen: the upstream MCP servers with their health, each server's tools, and the
pinned tools whose definition changed upstream (blocked: calls are refused), with the diff and
``a`` to accept the new definition (after a confirmation).

Three panes, top to bottom: the servers (health, restarts, how many tools changed), the
selected server's tools (changed ones first, then by name),
and the selected tool's details with the diff from the pinned definition to the one served now.

State is three plain dicts (servers, their tools, and health reported live); everything shown
is drawn from them. Health follows the WebSocket ``system`` topic (``upstream.state_changed``)
as it changes, and a ``tool.blocked`` event reloads that server's tools, so a change appears
without a key press. Each time the feed (re)connects, everything is reloaded. The screen is
installed but only composed when first shown: feed items that arrive before are folded into
the state, and the first mount loads the rest. Every REST call runs in a worker through the
app's one client; its errors go to the app's one error modal (refresh and accept need an admin
key: a viewer's or approver's press ends there, with the server's "not allowed").
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from hub.errors import NotFoundError, PreloopError
from hub.events import SystemEvent, ToolBlocked, UpstreamStateChanged
from hub.wire import ServerHealth, ServerView, ToolView
from tui.feed import ConnectionState, FeedStatus
from tui.screens.base import DashboardScreen, row_key

SERVER_COLUMNS = (
    ("server", "Server"),
    ("health", "Health"),
    ("restarts", "Restarts"),
    ("tools", "Tools"),
    ("changed", "Changed"),
    ("transport", "Transport"),
)
TOOL_COLUMNS = (("tool", "Tool"), ("status", "Status"), ("description", "Description"))

# The health states in words, with a mark (read without colour, in light and dark themes).
_HEALTH_MARK = {"ready": "●", "connecting": "…", "failed": "✕", "stopped": "○"}


def health_text(health: ServerHealth | None) -> str:
    if health is None:
        return "- not connected"
    return f"{_HEALTH_MARK.get(health.state, '?')} {health.state}"


def ordered(tools: list[ToolView]) -> list[ToolView]:
    """Changed (blocked) tools first, then by name (the same order from every endpoint)."""
    return sorted(tools, key=lambda tool: (not tool.blocked, tool.name))


class ServersScreen(DashboardScreen):
    HELP_SECTION = "Servers"
    CSS_PATH = "servers.tcss"
    BINDINGS = [
        Binding("a", "accept", "Accept changed tool"),
        Binding("f", "refresh", "Refresh tools from upstream"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.upstreams: dict[str, ServerView] = {}
        self.tools: dict[str, list[ToolView]] = {}
        self.live_health: dict[str, ServerHealth] = {}  # from the feed, newer than a listing
        self._tools_shown: str | None = None  # whose tools the tools table shows

    def compose_body(self) -> ComposeResult:
        with Vertical(id="servers-panes"):
            servers: DataTable[str] = DataTable(id="upstreams", cursor_type="row")
            servers.border_title = "Servers"
            yield servers
            tools: DataTable[str] = DataTable(id="tools", cursor_type="row", zebra_stripes=True)
            tools.border_title = "Tools"
            yield tools
            detail = VerticalScroll(Static(id="tool-detail-body"), id="tool-detail")
            detail.can_focus = True
            detail.border_title = "Definition"
            yield detail

    def on_mount(self) -> None:
        for table, columns in (("#upstreams", SERVER_COLUMNS), ("#tools", TOOL_COLUMNS)):
            widget = self.query_one(table, DataTable)
            for key, label in columns:
                widget.add_column(label, key=key)
        self._render_servers()
        self.reload()

    # -- the feed -------------------------------------------------------------------------

    def follow_system(self, item: FeedStatus | SystemEvent) -> None:
        """One item from the app's live feed: a status change or a system event."""
        if isinstance(item, UpstreamStateChanged):
            self.live_health[item.server] = ServerHealth(
                state=item.state, last_error=item.error, restarts=item.restarts
            )
        if not self.is_mounted:
            return  # the first mount loads everything
        if isinstance(item, FeedStatus):
            if item.state == ConnectionState.CONNECTED:
                self.reload()
        elif isinstance(item, UpstreamStateChanged):
            self._render_servers()
        elif isinstance(item, ToolBlocked):
            self.load_tools(item.server)

    # -- workers (all I/O) ----------------------------------------------------------------

    @work(group="servers-reload", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        """Every server and its tools (the Changed column needs every server's tools)."""
        client = self.preloop.client
        try:
            listed = await client.servers()
            tools = {server.name: await client.server_tools(server.name) for server in listed}
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.upstreams = {server.name: server for server in listed}
        for server in listed:  # a listing is newer than what the feed said before it
            self.live_health.pop(server.name, None)
        self.tools = tools
        self._render_servers()

    @work(exit_on_error=False)
    async def load_tools(self, server: str) -> None:
        try:
            self.tools[server] = await self.preloop.client.server_tools(server)
        except NotFoundError:
            return
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self._render_servers()

    @work(group="servers-refresh", exclusive=True, exit_on_error=False)
    async def refresh_tools(self, server: str) -> None:
        self.notify(f"{server}: asking the upstream for its tools…")
        try:
            self.tools[server] = await self.preloop.client.refresh_server(server)
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self._render_servers()
        changed = sum(tool.blocked for tool in self.tools[server])
        self.notify(f"{server}: {len(self.tools[server])} tools, {changed} changed")

    @work(exit_on_error=False)
    async def accept_tool(self, server: str, tool: str) -> None:
        try:
            accepted = await self.preloop.client.accept_tool(server, tool)
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        known = self.tools.get(server, [])
        self.tools[server] = [accepted.tool if t.name == tool else t for t in known]
        self._render_servers()
        self.notify(f"{server}/{tool}: new definition accepted; calls are allowed again")
        self.load_tools(server)

    # -- actions --------------------------------------------------------------------------

    def action_refresh(self) -> None:
        server = self._selected_server()
        if server is None:
            self.notify("No server selected.", severity="warning")
            return
        self.refresh_tools(server)

    def action_accept(self) -> None:
        server, tool = self._selected_server(), self._selected_tool()
        if server is None or tool is None:
            self.notify("No tool selected.", severity="warning")
            return
        if not tool.blocked:
            self.notify(f"{server}/{tool.name} has not changed.", severity="warning")
            return
        name = tool.name
        question = f"Accept the new definition of {server}/{name}? Agents may call it again."
        self.confirm(question, "Accept", lambda: self.accept_tool(server, name))

    # -- rendering ------------------------------------------------------------------------

    def _health(self, server: ServerView) -> ServerHealth | None:
        return self.live_health.get(server.name, server.health)

    def _selected_server(self) -> str | None:
        return row_key(self.query_one("#upstreams", DataTable))

    def _selected_tool(self) -> ToolView | None:
        server, name = self._selected_server(), row_key(self.query_one("#tools", DataTable))
        if server is None or name is None:
            return None
        return next((tool for tool in self.tools.get(server, []) if tool.name == name), None)

    def _render_servers(self) -> None:
        table = self.query_one("#upstreams", DataTable)
        selected = self._selected_server()
        table.clear()
        for server in self.upstreams.values():
            tools = self.tools.get(server.name)
            health = self._health(server)
            table.add_row(
                server.name,
                health_text(health),
                str(health.restarts) if health else "-",
                str(len(tools)) if tools is not None else "…",
                str(sum(tool.blocked for tool in tools or [])) if tools is not None else "…",
                server.transport,
                key=server.name,
            )
        if selected in self.upstreams:
            table.move_cursor(row=table.get_row_index(selected), animate=False)
        changed = sum(tool.blocked for tools in self.tools.values() for tool in tools)
        table.border_subtitle = f"{len(self.upstreams)} servers · {changed} changed tools"
        self._render_tools()

    def _render_tools(self) -> None:
        table = self.query_one("#tools", DataTable)
        server = self._selected_server()
        kept = row_key(table) if server == self._tools_shown else None  # same server: stay
        self._tools_shown = server
        table.clear()
        tools = ordered(self.tools.get(server, [])) if server else []
        for tool in tools:
            status = "CHANGED: blocked" if tool.blocked else "pinned"
            table.add_row(tool.name, status, tool.description, key=tool.name)
        if kept is not None and kept in table.rows:
            table.move_cursor(row=table.get_row_index(kept), animate=False)
        table.border_title = f"Tools of {server}" if server else "Tools"
        table.border_subtitle = f"{sum(t.blocked for t in tools)} changed" if tools else ""
        self._render_detail()

    def _render_detail(self) -> None:
        body = self.query_one("#tool-detail-body", Static)
        name = self._selected_server()
        server = self.upstreams.get(name) if name else None
        if server is None:
            body.update(Text("No server selected.", style="italic"))
            return
        body.update(_detail(server, self._health(server), self._selected_tool()))

    @on(DataTable.RowHighlighted, "#upstreams")
    def _server_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._render_tools()

    @on(DataTable.RowHighlighted, "#tools")
    def _tool_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._render_detail()


def _detail(
    server: ServerView, health: ServerHealth | None, tool: ToolView | None
) -> RenderableType:
    """The selected server's health, then the selected tool and, when changed, its diff: the
    most important first, so an 80x24 terminal shows the diff without scrolling."""
    facts = Table.grid(padding=(0, 1))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    state = health_text(health)
    if health is not None:
        state += f", {health.restarts} restarts"
        if health.last_error:
            state += f"; last error: {health.last_error}"
    facts.add_row("Server", f"{server.name} ({server.transport}, {server.source or '?'})  {state}")
    if tool is None:
        return Group(facts, Text("No tool selected.", style="italic"))
    if not tool.blocked:
        facts.add_row("Tool", f"{tool.name}: pinned {tool.pinned_hash[:16]}")
        facts.add_row("Description", tool.description or "(none)")
        return facts
    facts.add_row(
        "Tool",
        Text(f"{tool.name}: CHANGED upstream, calls refused until accepted (a)", style="bold"),
    )
    diff = Syntax(
        tool.diff.rstrip("\n") or "(the server sent no diff)",
        "diff",
        theme="ansi_dark",
        background_color="default",
        word_wrap=True,
    )
    return Group(facts, diff)  # its header lines say which side is pinned
