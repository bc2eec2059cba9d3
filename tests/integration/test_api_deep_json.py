"""JSON nested too deeply to decode is a 400 naming the problem on every JSON input of the
REST API and the WebSocket, never a 500 (msgspec raises ``RecursionError`` for it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.ws import UnifiedSocket
from tests.integration.conftest import Api

NESTED = b"[" * 3000 + b"]" * 3000


@pytest.mark.parametrize(
    "path",
    ["/api/v1/flows/nightly/executions", "/api/v1/providers/", "/api/v1/budgets/"],
)
@pytest.mark.parametrize(
    "body",
    [NESTED, b'{"labels": ' + NESTED + b"}", b'{"name": "x", "a": ' + NESTED + b"}"],
    ids=["bare", "in-a-field", "in-an-unknown-field"],
)
async def test_a_rest_body_nested_too_deeply_is_a_400(api: Api, path: str, body: bytes) -> None:
    response = await api.client.post(
        path, content=body, headers={**api.auth(), "content-type": "application/json"}
    )
    assert 400 == response.status_code, response.text
    error = response.json()["error"]
    assert ("ValidationError", "Invalid request") == (error["type"], error["title"])
    assert "the request body is JSON nested too deeply" in error["message"]


async def test_a_websocket_message_nested_too_deeply_is_an_error_answer(api: Api) -> None:
    caller = await api.hub.identity.authenticate(api.admin_key)
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    socket = UnifiedSocket(api.hub, caller, sent.put)
    await socket.handle(NESTED.decode())
    answer = await sent.get()
    assert "error" == answer["type"]
    assert "the message is JSON nested too deeply" in answer["message"]
    await socket.handle('{"type": "ping"}')
    assert {"type": "pong"} == await sent.get()
