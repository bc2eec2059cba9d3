"""The approval detail shows a long command whole: its lines wrap (no horizontal cut at the
pane's width) and the pane scrolls to the end, so an approver sees everything they decide."""

from __future__ import annotations

import httpx
from textual.geometry import Region
from textual.widgets import Static

from hub.api_client import ApiClient
from tests.tui import scenes
from tests.tui.conftest import until
from tui.app import PreloopApp
from tui.widgets.detail import ApprovalDetailView

TAIL = "--and-this-is-the-very-end"
COMMAND = (
    "rsync -a --delete "
    + " ".join(f"/srv/app/releases/r{i:03d}/" for i in range(8))
    + " deploy@prod:/srv/app/current/ "
)
COMMAND = COMMAND + "x" * (300 - len(COMMAND) - len(TAIL) - 1) + " " + TAIL
LONG = scenes.REQUESTS[0] | {"id": "apr_long", "tool": "bash", "server": "shell",
                             "args": {"command": COMMAND}}  # fmt: skip


def handler(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/api/v1/approvals/":
        return httpx.Response(200, json=[LONG])
    if request.url.path == "/api/v1/approvals/apr_long":
        return httpx.Response(200, json={"request": LONG, "votes": []})
    return scenes.handler(request)


async def test_a_300_character_command_is_visible_to_its_end_at_80_columns() -> None:
    assert 300 == len(COMMAND)
    client = ApiClient(scenes.URL, "pl_test", transport=httpx.MockTransport(handler))
    app = PreloopApp(client, scenes.ConnectedFeed(), now=lambda: scenes.NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.approvals.queue.get("apr_long") or None)
        await until(pilot, lambda: app.approvals.queue.get("apr_long").detailed or None)
        detail = app.screen.query_one(ApprovalDetailView)
        detail.focus()
        await pilot.press("end")
        await pilot.pause()

        body = detail.query_one("#detail-body", Static)
        lines = [s.text for s in body.render_lines(Region(0, 0, body.size.width, body.size.height))]
        assert all(len(line.rstrip()) <= detail.scrollable_content_region.width for line in lines)
        assert " ".join(COMMAND.split()) in " ".join(" ".join(lines).split())
        (end,) = [y for y, line in enumerate(lines) if TAIL in line]
        shown = range(
            int(detail.scroll_y), int(detail.scroll_y) + detail.scrollable_content_region.height
        )
        assert end in shown
