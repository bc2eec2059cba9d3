"""The Devices screen on a fixed scene: a fixed list of devices and a fixed pairing (its QR
code and countdown) served through httpx's mock transport, with the frozen clock of
:mod:`tests.tui.scenes`. Snapshots at 80x24 and 120x40 (and light at 80x24; update with
``pytest tests/tui --snapshot-update``), and the help and palette listing its every key."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from hub.api_client import ApiClient
from tests.tui import scenes
from tests.tui.conftest import until
from tui.app import PreloopApp
from tui.feed import ConnectionState, FeedStatus
from tui.screens.devices import DevicesScreen, PairModal
from tui.screens.help import HelpScreen


def _at(minutes: float) -> str:
    return (scenes.NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


USERS = [
    {"id": "usr_ann", "account_id": "acct_demo", "email": "ann@example.com",
     "created_at": _at(-9000)},
    {"id": "usr_bob", "account_id": "acct_demo", "email": "bob@example.com",
     "created_at": _at(-9000)},
]  # fmt: skip


def _device(did: str, user: str, name: str, platform: str, push: bool, days: int) -> dict[str, Any]:
    return {
        "id": did,
        "user_id": user,
        "name": name,
        "platform": platform,
        "has_push_token": push,
        "created_at": _at(-days * 1440),
        "revoked_at": None,
        "status": "active",
    }


DEVICES = [
    {**_device("dev_1", "usr_bob", "Old phone", "android", False, 90),
     "revoked_at": _at(-30 * 1440), "status": "revoked"},
    _device("dev_2", "usr_ann", "Ann's iPhone", "ios", True, 12),
    _device("dev_3", "usr_bob", "Bob's Pixel", "android", True, 3),
]  # fmt: skip
TOKEN = "plp_3f2a9c0d4e5b6a71_Qm9vdGhlcGFpcmluZ3Rva2VuZm9ydGhlc25hcHNob3Q"
PAIRING = {
    "id": "3f2a9c0d4e5b6a71",
    "user_id": "usr_ann",
    "expires_at": _at(9),
    "token": TOKEN,
    "uri": f"preloop://pair?url=http%3A%2F%2Fpreloop.test%3A8000&token={TOKEN}",
    "svg": "<svg/>",
}


def handler(request: httpx.Request, devices: list[dict[str, Any]] = DEVICES) -> httpx.Response:
    path = request.url.path
    if path == "/api/v1/whoami":
        return httpx.Response(200, json={"key_id": "a0a0a0a0a0a0a0a0", "role": "admin"})
    if path == "/api/v1/users/":
        return httpx.Response(200, json=USERS)
    if path == "/api/v1/devices/":
        return httpx.Response(200, json=devices)
    if path == "/api/v1/pairing-tokens/" and request.method == "POST":
        assert {"user": "ann@example.com", "expires_in_seconds": 600} == json.loads(request.content)
        return httpx.Response(201, json=PAIRING)
    return scenes.handler(request)


def devices_app(theme: str = "textual-dark") -> PreloopApp:
    client = ApiClient(scenes.URL, "pl_test", transport=httpx.MockTransport(handler))
    return PreloopApp(client, scenes.ConnectedFeed(), now=lambda: scenes.NOW, theme=theme)


def _devices(app: Any) -> DevicesScreen | None:
    return app.screen if isinstance(app.screen, DevicesScreen) else None


async def _listed(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await pilot.press("5")
    screen = await until(pilot, lambda: _devices(app))
    await until(pilot, lambda: len(screen.devices) == 3 or None)
    await pilot.pause()


async def _pairing(pilot: Pilot[Any]) -> None:
    await _listed(pilot)
    app = pilot.app
    screen = app.screen
    assert isinstance(screen, DevicesScreen)
    await pilot.press("p")
    modal = await until(pilot, lambda: app.screen if isinstance(app.screen, PairModal) else None)
    modal.query_one("#pair-user", Input).value = "ann@example.com"
    await pilot.press("enter")
    await until(pilot, lambda: screen.pairing)
    await pilot.pause()


def test_devices_list(snap_compare: Any) -> None:
    assert snap_compare(devices_app(), terminal_size=(80, 24), run_before=_listed)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_devices_pairing(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(devices_app(), terminal_size=size, run_before=_pairing)


def test_devices_pairing_light(snap_compare: Any) -> None:
    """The code keeps its white-on-black polarity in the light theme."""
    app = devices_app("textual-light")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_pairing)


async def test_the_help_and_the_palette_list_every_key_of_the_screen() -> None:
    app = devices_app()
    declared = [*DevicesScreen.BINDINGS, *PreloopApp.BINDINGS]
    async with app.run_test(size=(80, 24)) as pilot:
        await _listed(pilot)
        screen = app.screen
        titles = [command.title for command in app.get_system_commands(screen)]
        await pilot.press("question_mark")
        help_screen = await until(
            pilot, lambda: app.screen if isinstance(app.screen, HelpScreen) else None
        )
        table = help_screen.query_one(DataTable)
        rows = {
            (str(table.get_row_at(i)[0]), str(table.get_row_at(i)[1]))
            for i in range(table.row_count)
        }
        for binding in declared:
            assert isinstance(binding, Binding)
            keys = " / ".join(
                app.get_key_display(Binding(k, binding.action)) for k in binding.key.split(",")
            )
            assert (keys, binding.tooltip or binding.description) in rows
            if binding.action != "command_palette":
                assert (binding.tooltip or binding.description) in titles
        assert len(declared) == table.row_count
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.press(*"Pair a phone")
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PairModal) or None)


async def test_the_list_is_reloaded_when_the_connection_comes_back() -> None:
    served = list(DEVICES)
    transport = httpx.MockTransport(lambda request: handler(request, served))
    client = ApiClient(scenes.URL, "pl_test", transport=transport)
    app = PreloopApp(client, scenes.ConnectedFeed(), now=lambda: scenes.NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await _listed(pilot)
        screen = _devices(app)
        assert screen is not None
        app.connection = FeedStatus(state=ConnectionState.DISCONNECTED, detail="gone")
        await pilot.pause()
        served.append(_device("dev_4", "usr_ann", "Ann's iPad", "ios", False, 0))
        assert 3 == len(screen.devices)  # kept while away
        app.connection = FeedStatus(state=ConnectionState.CONNECTED, detail=scenes.URL)
        await until(pilot, lambda: "dev_4" in screen.devices or None)
        assert 4 == screen.query_one("#devices", DataTable).row_count
