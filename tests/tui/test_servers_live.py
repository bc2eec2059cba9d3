"""The Servers screen against a real server (uvicorn, SQLite) and real upstream MCP servers
(tests/servers/upstream_server.py over stdio): ``4`` shows the policy's ``demo`` with its health
and, after ``f``, its tools; a pinned tool whose definition changes upstream appears as changed
without a key press, with its diff, and ``a`` + ``y`` accepts it (the server then allows it
again); a key that may not refresh gets the error modal."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
from textual.widgets import DataTable, Static

from hub.api_client import ApiClient
from hub.events import UpstreamStateChanged
from tests.integration.conftest import LiveServer
from tests.tui.conftest import people_of, plain, until
from tui.app import PreloopApp
from tui.feed import ConnectionState, FeedStatus, LiveFeed
from tui.screens.modals import ConfirmModal, ErrorModal
from tui.screens.servers import ServersScreen


def _app(live: LiveServer, key: str) -> PreloopApp:
    return PreloopApp(ApiClient(live.url, key))


def _screen(app: PreloopApp) -> ServersScreen:
    screen = app.main_screens["servers"]
    assert isinstance(screen, ServersScreen)
    return screen


def _cells(app: PreloopApp, table: str, row: str) -> list[str] | None:
    widget = _screen(app).query_one(table, DataTable)
    return [str(cell) for cell in widget.get_row(row)] if row in widget.rows else None


def _cell(app: PreloopApp, table: str, row: str, column: int) -> str:
    cells = _cells(app, table, row)
    return cells[column] if cells else ""


def _selected_tool(app: PreloopApp) -> str | None:
    tools = _screen(app).query_one("#tools", DataTable)
    return tools.coordinate_to_cell_key(tools.cursor_coordinate).row_key.value


def _error_modal(app: PreloopApp) -> ErrorModal | None:
    return app.screen if isinstance(app.screen, ErrorModal) else None


def _detail(app: PreloopApp) -> str:
    """The detail pane's text, its runs of spaces made one."""
    text = plain(_screen(app).query_one("#tool-detail-body", Static), width=120)
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def _connected(app: PreloopApp) -> bool | None:
    return app.connection.state == ConnectionState.CONNECTED or None


async def _rest(live: LiveServer, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=60) as http:
        response = await http.request(method, f"/api/v1/servers{path}", **kwargs)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def _extra(toolset: str) -> dict[str, Any]:
    """A second upstream registered by hand, serving the ``v1`` or ``v2`` tool definitions."""
    return {
        "name": "extra",
        "transport": "stdio",
        "command": sys.executable,
        "args": ["-m", "tests.servers.launch", "stdio"],
        "env": {"TEST_SERVER_TOOLSET": toolset},
    }


async def test_it_lists_demo_with_its_health_and_refresh_fetches_its_tools(
    tui_server: LiveServer,
) -> None:
    app = _app(tui_server, tui_server.admin_key)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _connected(app))
        await pilot.press("4")
        assert app.screen is _screen(app)
        row = await until(pilot, lambda: _cells(app, "#upstreams", "demo"))
        assert "stdio" == row[5]
        await until(pilot, lambda: _cell(app, "#upstreams", "demo", 1) == "● ready" or None)
        assert "● ready, 0 restarts" in _detail(app)

        await pilot.press("f")  # ask the upstream for its tools now
        echo = await until(pilot, lambda: _cells(app, "#tools", "echo"))
        assert ["echo", "pinned", "Echo the text back."] == echo
        assert _cells(app, "#tools", "add") is not None
        demo = _cells(app, "#upstreams", "demo")
        assert demo is not None
        assert "0" == demo[4]  # nothing changed
        assert int(demo[3]) >= 10
        assert f"Tool {_selected_tool(app)}: pinned" in _detail(app)
        assert not isinstance(app.screen, ErrorModal)

        await pilot.press("1")  # the other screens keep working; back again keeps the state
        await pilot.press("4")
        assert _cells(app, "#tools", "echo") is not None


async def test_a_changed_tool_appears_live_with_its_diff_and_a_accepts_it(
    tui_server: LiveServer,
) -> None:
    await _rest(tui_server, "POST", "/", json=_extra("v1"))
    await _rest(tui_server, "POST", "/extra/refresh")  # pins the v1 definitions
    app = _app(tui_server, tui_server.admin_key)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: _connected(app))
        await pilot.press("4")
        await until(pilot, lambda: _cells(app, "#upstreams", "extra"))
        await pilot.press("down")  # from demo to extra
        await until(pilot, lambda: _cells(app, "#tools", "echo"))

        await _rest(tui_server, "POST", "/", json=_extra("v2"))  # the upstream now says otherwise
        await _rest(tui_server, "POST", "/extra/refresh")  # blocks echo: tool.blocked, live
        row = await until(
            pilot, lambda: _cell(app, "#tools", "echo", 1).startswith("CHANGED") or None
        )
        assert row
        assert "add" == _selected_tool(app)  # the selection stays where it was
        await pilot.press("tab", "up")  # into the tools; the changed one is now first
        assert "echo" == _selected_tool(app)
        detail = _detail(app)
        assert "CHANGED upstream" in detail
        assert '- "description": "Echo the text back."' in detail
        assert "v2: now trims nothing" in detail
        assert "1" == _cell(app, "#upstreams", "extra", 4)

        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal) or None)
        await pilot.press("y")
        await until(pilot, lambda: _cell(app, "#tools", "echo", 1) == "pinned" or None)
        stored = {t["name"]: t for t in await _rest(tui_server, "GET", "/extra/tools")}
        assert stored["echo"]["blocked"] is False
        assert "0" == _cell(app, "#upstreams", "extra", 4)
        assert not isinstance(app.screen, ErrorModal)


async def test_refresh_and_accept_need_an_admin_key(tui_server: LiveServer) -> None:
    people = await people_of(tui_server)
    app = _app(tui_server, people.approver)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await until(pilot, lambda: _cells(app, "#upstreams", "demo"))
        await pilot.press("f")
        modal = await until(pilot, lambda: _error_modal(app))
        assert "Not allowed" == modal.error_title
        assert "HTTP 403" in modal.message


async def _next_of(updates: AsyncIterator[Any], kind: type) -> Any:
    async with asyncio.timeout(30):
        async for item in updates:
            if isinstance(item, kind):
                return item
    raise AssertionError("the feed ended")


async def test_the_feed_follows_upstream_health_when_the_key_may(tui_server: LiveServer) -> None:
    people = await people_of(tui_server)
    admin = LiveFeed(tui_server.url, tui_server.admin_key).updates()
    agent = LiveFeed(tui_server.url, people.agent).updates()  # may follow approvals only
    try:
        for updates in (admin, agent):
            status = await _next_of(updates, FeedStatus)
            while status.state == ConnectionState.CONNECTING:
                status = await _next_of(updates, FeedStatus)
            assert ConnectionState.CONNECTED == status.state  # not rejected for asking
        await _rest(tui_server, "POST", "/", json=_extra("v1"))  # the pool connects to it
        event = await _next_of(admin, UpstreamStateChanged)
        while event.server != "extra":  # demo's, from the server's start, may come first
            event = await _next_of(admin, UpstreamStateChanged)
        assert event.state in {"connecting", "ready"}
    finally:
        await admin.aclose()
        await agent.aclose()
