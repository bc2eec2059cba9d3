"""JSON-RPC ids the MCP SDK would mistake for notifications, refused before it sees them.

A JSON-RPC request's ``id`` is a string or an integer (MCP also forbids ``null`` on a
request). The SDK takes a message whose ``id`` is an object, an array, a boolean or a
fraction for a notification and answers 202 with nothing, so the agent waits for an answer
that never comes. Preloop reads the body of a POST first and answers such a message with the
JSON-RPC error the specification asks for: -32600 Invalid Request, ``id`` null, HTTP 400.

The body is read whole (up to the transport's own size limit, beyond which it is handed on
unchecked for the SDK to refuse) and replayed to the SDK unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec
from mcp_types import INVALID_REQUEST

from hub.deep_json import too_deep

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_KINDS = {dict: "an object", list: "an array", bool: "a boolean", float: "a fraction"}


def invalid_id(body: bytes) -> str | None:
    """Why a message of ``body`` (one message or a batch) has an id that is not one, or
    ``None``. A body that is not JSON is left to the SDK (it answers a parse error)."""
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    except RecursionError:  # nested too deeply to decode: no id can be read from it
        return f"Invalid Request: {too_deep('the message').message}"
    for message in decoded if isinstance(decoded, list) else [decoded]:
        if not isinstance(message, dict) or "id" not in message:
            continue
        value = message["id"]
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            continue
        if value is None and "method" not in message:
            continue  # an error response about a request whose id could not be read
        kind = "null" if value is None else _KINDS.get(type(value), type(value).__name__)
        return f"Invalid Request: a JSON-RPC id must be a string or an integer, not {kind}" + (
            f" (method {message['method']!r})" if isinstance(message.get("method"), str) else ""
        )
    return None


def invalid_request(message: str) -> dict[str, Any]:
    """The JSON-RPC error answer for a message whose id cannot be echoed."""
    return {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}}


async def read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The request's messages as received, and its whole body (``None`` when it is larger
    than ``limit`` or the client went away: then it is not checked)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > limit:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that first hands out ``messages`` again, then the rest of the request."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def checked(receive: Receive, send: Send, limit: int) -> Receive | None:
    """The ``receive`` to hand on for a POST, or ``None`` once a message with an invalid id
    was answered (HTTP 400, the JSON-RPC error)."""
    received, body = await read_body(receive, limit)
    problem = invalid_id(body) if body is not None else None
    if problem is None:
        return replay(received, receive)
    await refuse(send, problem)
    return None


async def refuse(send: Send, problem: str) -> None:
    """Answer a message whose id is invalid: HTTP 400, the JSON-RPC error naming ``problem``."""
    payload = msgspec.json.encode(invalid_request(problem))
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
