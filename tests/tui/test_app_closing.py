"""A worker that fails while the app closes (its screens already gone) must not crash the
app's exit: the error goes to the log, since there is no screen left to show it on."""

from __future__ import annotations

import httpx

from hub.api_client import ApiClient
from hub.errors import PreloopError
from tests.tui import scenes
from tui.app import PreloopApp


async def test_an_error_after_the_screens_are_gone_goes_to_the_log() -> None:
    client = ApiClient(scenes.URL, "pl_test", transport=httpx.MockTransport(scenes.handler))
    app = PreloopApp(client, scenes.ConnectedFeed(), now=lambda: scenes.NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    assert [] == app.screen_stack  # closed: where a late worker error used to land
    app.show_error(PreloopError("ReadError: the client is closed", title="Unexpected error"))
    assert [] == app.screen_stack
