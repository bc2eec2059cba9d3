"""The Approvals screen against a real server (uvicorn, SQLite) and a real MCP agent: a held
call appears in the queue without a key press, ``a`` + ``y`` approves it and the agent's call
returns its result; quorum progress and voters follow votes cast elsewhere; ``d`` denies with
a comment; a request decided elsewhere is marked; an unknown key is rejected and a viewer's
approve ends in the error modal."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from textual.widgets import DataTable, Input, Static

from hub.api_client import ApiClient
from hub.records import ApprovalStatus
from tests.integration.conftest import LiveServer
from tests.integration.mcp.support import agent, approval_status, raw_call, text_of
from tests.tui.conftest import people_of, plain, until
from tui.app import PreloopApp
from tui.feed import ConnectionState
from tui.queue import Item
from tui.screens.modals import ConfirmModal, DenyModal, ErrorModal


def _app(live: LiveServer, key: str) -> PreloopApp:
    return PreloopApp(ApiClient(live.url, key))


def _first_pending(app: PreloopApp) -> Item | None:
    items = [item for item in app.approvals.queue.items() if item.pending]
    return items[0] if items else None


def _row(app: PreloopApp, request_id: str) -> list[Any]:
    table = app.approvals.query_one("#queue", DataTable)
    return list(table.get_row(request_id))


def _error_modal(app: PreloopApp) -> ErrorModal | None:
    return app.screen if isinstance(app.screen, ErrorModal) else None


async def _user_key(live: LiveServer, email: str, name: str) -> str:
    """An approver key of a new user ``name``."""
    admin = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=admin, timeout=30) as http:
        added = await http.post("/api/v1/users/", json={"email": email, "name": name})
        assert 201 == added.status_code, added.text
        body = {"name": f"{name} laptop", "role": "approver", "user_email": email}
        created = await http.post("/api/v1/keys/", json=body)
        assert 201 == created.status_code, created.text
        secret: str = created.json()["secret"]
        return secret


def _connected(app: PreloopApp) -> bool | None:
    return app.connection.state == ConnectionState.CONNECTED or None


async def test_a_held_call_appears_live_and_a_approves_it(tui_server: LiveServer) -> None:
    people = await people_of(tui_server)
    app = _app(tui_server, people.approver)
    async with (
        app.run_test(size=(120, 40)) as pilot,
        agent(tui_server, people.agent, "auto") as client,
    ):
        await until(pilot, lambda: _connected(app))
        waiting = asyncio.create_task(
            raw_call(client, "demo__echo", {"text": "hello", "justification": "smoke test"})
        )
        item = await until(pilot, lambda: _first_pending(app))  # no key pressed
        request_id = item.request.id
        assert ("demo", "echo") == (item.request.server, item.request.tool)
        row = _row(app, request_id)
        assert ["demo/echo", "0/1", "pending"] == [row[1], row[3], row[4]]
        assert row[0].startswith(("9m", "10m"))  # the countdown to expiry
        detail = plain(app.approvals.query_one("#detail-body", Static))
        assert "smoke test" in detail
        assert '"text": "hello"' in detail
        assert not waiting.done()

        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal) or None)
        await pilot.press("y")

        async with asyncio.timeout(30):
            result = await waiting
        assert "hello" == text_of(result)
        approved = "approved by approver"  # the key's name: a key of nobody is its own person
        await until(pilot, lambda: _row(app, request_id)[4] == approved or None)
        assert not isinstance(app.screen, ErrorModal)


async def test_quorum_progress_and_voters_show_and_the_last_vote_decides(
    tui_server: LiveServer,
) -> None:
    people = await people_of(tui_server)
    app = _app(tui_server, people.approver)
    headers = {"Authorization": f"Bearer {people.other}"}
    async with (
        app.run_test(size=(120, 40)) as pilot,
        agent(tui_server, people.agent, "auto") as client,
        httpx.AsyncClient(base_url=tui_server.url, headers=headers, timeout=30) as http,
    ):
        await until(pilot, lambda: _connected(app))
        waiting = asyncio.create_task(raw_call(client, "demo__add", {"a": 2, "b": 3}))
        item = await until(pilot, lambda: _first_pending(app))
        assert "0/2" == _row(app, item.request.id)[3]

        voted = await http.post(f"/api/v1/approvals/{item.request.id}/approve", json={})
        assert 200 == voted.status_code, voted.text
        await until(pilot, lambda: _row(app, item.request.id)[3] == "1/2" or None)
        detail = app.approvals.query_one("#detail-body", Static)
        await until(pilot, lambda: "other (approve)" in plain(detail) or None)
        assert "pending" == _row(app, item.request.id)[4]
        assert not waiting.done()

        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal) or None)
        await pilot.press("y")
        async with asyncio.timeout(30):
            result = await waiting
        assert result.get("isError") is not True
        assert {"sum": 5} == result["structuredContent"]
        decided = ["2/2", "approved by approver"]
        await until(pilot, lambda: _row(app, item.request.id)[3:5] == decided or None)


async def test_d_denies_with_a_comment_the_agent_sees(tui_server: LiveServer) -> None:
    people = await people_of(tui_server)
    app = _app(tui_server, people.approver)
    async with (
        app.run_test(size=(80, 24)) as pilot,
        agent(tui_server, people.agent, "auto") as client,
    ):
        await until(pilot, lambda: _connected(app))
        waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": "rm -rf"}))
        item = await until(pilot, lambda: _first_pending(app))

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DenyModal) or None)
        assert isinstance(app.screen, DenyModal)
        app.screen.query_one(Input).value = "not on a Friday"
        await pilot.press("enter")

        async with asyncio.timeout(30):
            result = await waiting
        assert result["isError"] is True
        assert "not on a Friday" in text_of(result)
        await until(pilot, lambda: _row(app, item.request.id)[4].startswith("denied by") or None)
        headers = {"Authorization": f"Bearer {tui_server.admin_key}"}
        async with httpx.AsyncClient(base_url=tui_server.url, headers=headers) as http:
            decided = (await http.get(f"/api/v1/approvals/{item.request.id}")).json()
        assert ("denied", "not on a Friday") == (
            decided["request"]["status"],
            decided["request"]["comment"],
        )


async def test_escape_cancels_and_nothing_is_decided(tui_server: LiveServer) -> None:
    people = await people_of(tui_server)
    app = _app(tui_server, people.approver)
    headers = {"Authorization": f"Bearer {people.other}"}
    async with (
        app.run_test(size=(80, 24)) as pilot,
        agent(tui_server, people.agent, "auto") as client,
        httpx.AsyncClient(base_url=tui_server.url, headers=headers, timeout=30) as http,
    ):
        await until(pilot, lambda: _connected(app))
        waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": "x"}))
        item = await until(pilot, lambda: _first_pending(app))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal) or None)
        await pilot.press("enter")  # focus is on Cancel: a stray Enter decides nothing
        await until(pilot, lambda: app.screen is app.approvals or None)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DenyModal) or None)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.approvals or None)
        await pilot.pause()
        assert app.screen is app.approvals
        assert "pending" == await approval_status(http, item.request.id)
        denied = await http.post(f"/api/v1/approvals/{item.request.id}/deny", json={})
        assert 200 == denied.status_code
        async with asyncio.timeout(30):
            await waiting


async def test_a_request_decided_elsewhere_is_marked_with_who(tui_server: LiveServer) -> None:
    """By the person's name, not an id: here a key of the user Olga decides through REST."""
    people = await people_of(tui_server)
    olga_key = await _user_key(tui_server, "olga@example.com", "Olga")
    app = _app(tui_server, people.approver)
    headers = {"Authorization": f"Bearer {olga_key}"}
    async with (
        app.run_test(size=(120, 40)) as pilot,
        agent(tui_server, people.agent, "auto") as client,
        httpx.AsyncClient(base_url=tui_server.url, headers=headers, timeout=30) as http,
    ):
        await until(pilot, lambda: _connected(app))
        waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": "elsewhere"}))
        item = await until(pilot, lambda: _first_pending(app))

        approved = await http.post(
            f"/api/v1/approvals/{item.request.id}/approve", json={"comment": "from the CLI"}
        )
        assert 200 == approved.status_code, approved.text
        await until(pilot, lambda: _row(app, item.request.id)[4] == "approved by Olga" or None)
        await app.approvals.fetch(item.request.id).wait()
        detail = plain(app.approvals.query_one("#detail-body", Static))
        assert "Olga (approve)" in detail
        assert "user_" not in detail
        assert ApprovalStatus.APPROVED == app.approvals.queue.get(item.request.id).request.status  # type: ignore[union-attr]

        await pilot.press("a")  # nothing to decide any more: a warning, no modal
        assert app.screen is app.approvals
        async with asyncio.timeout(30):
            assert "elsewhere" == text_of(await waiting)


async def test_an_unknown_key_is_rejected_and_said_so(tui_server: LiveServer) -> None:
    app = _app(tui_server, "pl_" + "x" * 40)
    async with app.run_test(size=(80, 24)) as pilot:
        modal = await until(pilot, lambda: _error_modal(app))
        assert "Not signed in" == modal.error_title
        await until(pilot, lambda: app.connection.state == ConnectionState.REJECTED or None)
        await pilot.press("escape")
        bar = plain(app.approvals.query_one("#connection", Static))
        assert bar.startswith("✕ rejected")


async def test_a_server_refusal_is_shown_in_the_error_modal(tui_server: LiveServer) -> None:
    people = await people_of(tui_server)
    app = _app(tui_server, people.viewer)  # a viewer may watch, not decide
    async with (
        app.run_test(size=(80, 24)) as pilot,
        agent(tui_server, people.agent, "auto") as client,
    ):
        await until(pilot, lambda: _connected(app))
        waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": "x"}))
        item = await until(pilot, lambda: _first_pending(app))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal) or None)
        await pilot.press("y")
        modal = await until(
            pilot, lambda: app.screen if isinstance(app.screen, ErrorModal) else None
        )
        assert "Not allowed" == modal.error_title
        assert "HTTP 403" in modal.message
        assert "Traceback" not in modal.message
        await pilot.press("escape")
        assert app.screen is app.approvals
        assert item.pending
        waiting.cancel()
