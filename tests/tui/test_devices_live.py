"""The Devices screen against a real server (uvicorn, SQLite): ``p`` shows a QR code whose
modules are the pairing URI the server made (decoded back from the half-blocks), a phone pairs
with the token in it, ``r`` lists the phone and the pane says it paired, ``x`` + ``y`` revokes
it (its credential gets 401 afterwards); the code expires on the screen's clock; a viewer's
pairing ends in the error modal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import segno
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from hub.api_client import ApiClient
from tests.integration.conftest import LiveServer
from tests.tui.conftest import people_of, plain, until
from tui.app import PreloopApp
from tui.screens.devices import QR_BORDER, DevicesScreen, PairModal
from tui.screens.modals import ConfirmModal, ErrorModal

# segno's compact writer: a glyph per two rows of modules, filled where the module is light.
_HALVES = {" ": (1, 1), "▀": (0, 1), "▄": (1, 0), "█": (0, 0)}


def decode_half_blocks(text: str, border: int) -> list[list[int]]:
    """The QR matrix (1 = dark) drawn by ``text``, its quiet zone of ``border`` cut off."""
    rows: list[list[int]] = []
    for line in text.splitlines():
        pairs = [_HALVES[char] for char in line]
        rows.append([top for top, _ in pairs])
        rows.append([bottom for _, bottom in pairs])
    size = len(rows[0]) - 2 * border
    assert all(0 == v for v in rows[0] + rows[border - 1]), "the quiet zone is light"
    return [row[border : border + size] for row in rows[border : border + size]]


def matrix_of(uri: str) -> list[list[int]]:
    return [[1 if module else 0 for module in row] for row in segno.make_qr(uri, error="m").matrix]


def _screen(app: PreloopApp) -> DevicesScreen | None:
    return app.screen if isinstance(app.screen, DevicesScreen) else None


def _error(app: PreloopApp) -> ErrorModal | None:
    return app.screen if isinstance(app.screen, ErrorModal) else None


def _rows(screen: DevicesScreen) -> list[list[Any]]:
    table = screen.query_one("#devices", DataTable)
    return [list(table.get_row_at(i)) for i in range(table.row_count)]


async def _pair_for(pilot: Pilot[Any], app: PreloopApp, user: str) -> None:
    await pilot.press("p")
    modal = await until(pilot, lambda: app.screen if isinstance(app.screen, PairModal) else None)
    modal.query_one("#pair-user", Input).value = user
    await pilot.press("enter")


async def _add_user(live: LiveServer, email: str) -> None:
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        response = await http.post("/api/v1/users/", json={"email": email})
        assert 201 == response.status_code, response.text


async def test_pair_a_phone_by_its_qr_code_list_it_and_revoke_it(tui_server: LiveServer) -> None:
    await _add_user(tui_server, "ann@example.com")
    app = PreloopApp(ApiClient(tui_server.url, tui_server.admin_key))
    async with (
        app.run_test(size=(120, 40)) as pilot,
        httpx.AsyncClient(base_url=tui_server.url, timeout=30) as http,
    ):
        await pilot.press("5")
        screen = await until(pilot, lambda: _screen(app))
        await _pair_for(pilot, app, "ann@example.com")
        pairing = await until(pilot, lambda: screen.pairing)

        qr = screen.query_one("#qr", Static)
        assert qr.display
        drawn = decode_half_blocks(plain(qr, width=200).rstrip("\n"), QR_BORDER)
        assert matrix_of(pairing.uri) == drawn  # the code on screen is the server's URI
        note = plain(screen.query_one("#pairing-note", Static), width=200)
        assert "Expires in 9m" in note or "Expires in 10m" in note
        assert pairing.uri in note

        query = parse_qs(urlsplit(pairing.uri).query)
        assert query["url"]
        assert query["token"][0].startswith("plp_")
        body = {"token": query["token"][0], "name": "Ann's iPhone", "platform": "ios"}
        paired = await http.post("/api/v1/devices/pair", json=body)
        assert 200 <= paired.status_code < 300, paired.text
        credential = {"Authorization": f"Bearer {paired.json()['credential']}"}
        assert 200 == (await http.get("/api/v1/devices/me", headers=credential)).status_code

        await pilot.press("r")
        rows = await until(pilot, lambda: _rows(screen) or None)
        assert [["Ann's iPhone", "ann@example.com", "ios", "no", "active"]] == [
            row[:5] for row in rows
        ]
        await until(pilot, lambda: screen.paired)
        assert not qr.display  # a used code is dropped
        note = plain(screen.query_one("#pairing-note", Static), width=200)
        assert "Paired: Ann's iPhone (ios) for ann@example.com" in note

        screen.query_one("#devices", DataTable).focus()
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal) or None)
        await pilot.press("y")
        await until(pilot, lambda: _rows(screen)[0][4] == "revoked" or None)
        assert 401 == (await http.get("/api/v1/devices/me", headers=credential)).status_code
        assert _error(app) is None


async def test_the_code_expires_and_p_makes_a_new_one(tui_server: LiveServer) -> None:
    await _add_user(tui_server, "bob@example.com")
    clock = [datetime.now(UTC)]
    client = ApiClient(tui_server.url, tui_server.admin_key)
    app = PreloopApp(client, now=lambda: clock[0])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        screen = await until(pilot, lambda: _screen(app))
        await _pair_for(pilot, app, "bob@example.com")
        first = await until(pilot, lambda: screen.pairing)

        clock[0] = first.expires_at + timedelta(seconds=1)
        note = screen.query_one("#pairing-note", Static)
        await until(pilot, lambda: "expired" in plain(note) or None)
        assert not screen.query_one("#qr", Static).display
        assert "Press p for a new one" in plain(note)

        # Back to the real time: the new code expires PAIRING_SECONDS from now, which the
        # frozen clock above (past the first code's expiry) may already have passed.
        clock[0] = datetime.now(UTC)
        await _pair_for(pilot, app, "bob@example.com")
        second = await until(pilot, lambda: screen.pairing if screen.pairing != first else None)
        assert second.token != first.token
        assert await until(pilot, lambda: screen.query_one("#qr", Static).display or None)


async def test_a_viewer_gets_the_error_modal(tui_server: LiveServer) -> None:
    people = await people_of(tui_server)
    app = PreloopApp(ApiClient(tui_server.url, people.viewer))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        listing = await until(pilot, lambda: _error(app))  # listing devices is for admins
        assert "Not allowed" in listing.error_title
        await pilot.press("escape")
        await until(pilot, lambda: _screen(app))

        await _pair_for(pilot, app, "ann@example.com")
        modal = await until(pilot, lambda: _error(app))
        assert "Not allowed" == modal.error_title
        assert "403" in modal.message
        assert _screen(app) is None
        assert app.screen.query_one("#error-message", Static)
