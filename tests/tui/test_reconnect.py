"""The server goes away: the connection bar says so (and when the next try is), the screen
keeps its queue, and once the server is back on the same address the feed reconnects by
itself and the queue is reloaded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import uvicorn
from textual.widgets import DataTable

from hub.api_client import ApiClient
from server.app import create_app
from server.bootstrap import FIRST_KEY_FILE
from tests.integration.conftest import LiveServer, make_settings
from tests.integration.mcp.support import REPO, agent, raw_call
from tests.tui.conftest import people_of, plain, until, write_policy
from tui.app import PreloopApp
from tui.feed import Backoff, ConnectionState, LiveFeed
from tui.widgets.status import ConnectionBar


@contextmanager
def _serve_at(settings_dir: Path, port: int) -> Iterator[LiveServer]:
    """The real app on 127.0.0.1:``port`` (0: any), in a thread, until the block ends."""
    settings = make_settings(settings_dir, PRELOOP_POLICY_FILE=str(write_policy(settings_dir)))
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        assert time.monotonic() < deadline, "the server did not start in time"
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    key = (settings.data_path / FIRST_KEY_FILE).read_text().strip()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{bound}", admin_key=key, settings=settings)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _state(app: PreloopApp, state: ConnectionState) -> bool | None:
    return app.connection.state == state or None


async def test_it_shows_the_server_gone_and_reconnects_when_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    with ExitStack() as running:
        first = running.enter_context(_serve_at(tmp_path, 0))
        people = await people_of(first)
        client = ApiClient(first.url, people.approver)
        feed = LiveFeed(first.url, people.approver, backoff=Backoff(first=0.2, cap=1.0))
        app = PreloopApp(client, feed)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: _state(app, ConnectionState.CONNECTED))
            bar = app.approvals.query_one(ConnectionBar)
            assert plain(bar).startswith("● connected")
            async with agent(first, people.agent, "auto") as mcp:
                # An asynchronous approval: the call returns at once, the request waits.
                await raw_call(mcp, "demo__slow", {"seconds": 0})
                item = await until(pilot, lambda: next(iter(app.approvals.queue.items()), None))

            running.close()  # the server goes away
            await until(pilot, lambda: _state(app, ConnectionState.DISCONNECTED))
            shown = plain(bar)
            assert shown.startswith("○ disconnected")
            assert "retrying in" in shown
            table = app.approvals.query_one("#queue", DataTable)
            assert item.request.id in table.rows  # the screen keeps what it had

            port = int(first.url.rsplit(":", 1)[1])
            with _serve_at(tmp_path, port):  # back, same address, same database
                await until(pilot, lambda: _state(app, ConnectionState.CONNECTED))
                assert plain(bar).startswith("● connected")
                await until(pilot, lambda: app.approvals.queue.get(item.request.id))
                assert item.request.id in table.rows
                assert "pending" == app.approvals.queue.get(item.request.id).request.status  # type: ignore[union-attr]
