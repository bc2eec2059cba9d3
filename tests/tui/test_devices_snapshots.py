"""Snapshots of the Devices screen at 80x24 and 120x40: a fixed list of devices and a fixed
pairing (its QR code and countdown) served through httpx's mock transport, with the frozen
clock of :mod:`tests.tui.scenes`. Update with ``pytest tests/tui --snapshot-update``."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui import scenes
from tests.tui.conftest import until
from tui.app import PreloopApp
from tui.client import PreloopClient
from tui.screens.devices import DevicesScreen, PairModal


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


def handler(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/api/v1/whoami":
        return httpx.Response(200, json={"key_id": "a0a0a0a0a0a0a0a0", "role": "admin"})
    if path == "/api/v1/users/":
        return httpx.Response(200, json=USERS)
    if path == "/api/v1/devices/":
        return httpx.Response(200, json=DEVICES)
    if path == "/api/v1/pairing-tokens/" and request.method == "POST":
        assert {"user": "ann@example.com", "expires_in_seconds": 600} == json.loads(request.content)
        return httpx.Response(201, json=PAIRING)
    return scenes.handler(request)


def devices_app() -> PreloopApp:
    client = PreloopClient(scenes.URL, "pl_test", transport=httpx.MockTransport(handler))
    return PreloopApp(client, scenes.ConnectedFeed(), now=lambda: scenes.NOW)


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
