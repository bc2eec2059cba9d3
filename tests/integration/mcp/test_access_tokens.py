"""A password login's access token on a live server: at ``/mcp`` (the MCP SDK client), on the
unified WebSocket and at the model gateway, with its role; never in the database; refused
once logged out (decision 0092)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.conftest import LiveServer
from tests.integration.mcp.support import agent, raw_call, text_of
from tests.integration.test_password_logins import SECRET, bearer, login, with_password


def database_bytes(data: Path) -> bytes:
    """The SQLite database file and its WAL, as they are on disk."""
    return b"".join(p.read_bytes() for p in data.glob("preloop.db*"))


async def test_a_token_works_on_mcp_the_websocket_and_the_gateway_and_is_never_stored(
    gateway_server: LiveServer,
) -> None:
    live = gateway_server
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        await with_password(http, live.admin_key, "agent@example.com", "agent")
        await with_password(http, live.admin_key, "vic@example.com", "viewer")
        token = await login(http, "agent@example.com")
        viewer = await login(http, "vic@example.com")

        async with agent(live, token, "auto") as client:
            echoed = await raw_call(client, "demo__echo", {"text": "hi"})
        async with agent(live, viewer, "auto") as client:
            refused = await raw_call(client, "demo__echo", {"text": "hi"})
        assert echoed.get("isError") is not True, echoed
        assert "hi" in text_of(echoed)
        assert True is refused["isError"]
        assert "has role viewer" in text_of(refused)

        models = await http.get("/openai/v1/models", headers=bearer(token))
        viewer_models = await http.get("/openai/v1/models", headers=bearer(viewer))
        assert 200 == models.status_code, models.text
        assert 403 == viewer_models.status_code

        ws_url = live.url.replace("http://", "ws://", 1) + "/api/v1/ws/unified"
        async with connect(ws_url, additional_headers=bearer(token)) as ws:
            assert "connected" == json.loads(await ws.recv())["type"]

        stored = database_bytes(live.settings.data_path)
        assert b"access_tokens" in stored  # the database, with the token table in it
        secret = token.split("_", 2)[2]
        assert token.encode() not in stored
        assert secret.encode() not in stored
        assert SECRET.encode() not in stored

        out = await http.delete("/api/v1/auth/token", headers=bearer(token))
        assert 204 == out.status_code
        after = await http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={**bearer(token), "Accept": "application/json, text/event-stream"},
        )
        assert 401 == after.status_code
        assert "revoked" in after.text
    async with connect(ws_url, additional_headers=bearer(token)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert 4401 == closed.value.rcvd.code
