"""What the gateway reads of the client's request: its credential, its body (bounded), the
Anthropic headers passed on to the provider."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from hub.errors import AuthenticationError, PayloadTooLargeError, ValidationError
from hub.model_gateway.capture_records import SESSION_ID_PATTERN

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]

_ANTHROPIC_HEADERS = (b"anthropic-version", b"anthropic-beta")


def anthropic_headers(scope: Scope) -> dict[str, str]:
    """The client's ``anthropic-version`` and ``anthropic-beta``, passed to the provider."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _ANTHROPIC_HEADERS
    }


def credential(scope: Scope) -> str:
    """The ``x-api-key`` or ``Authorization: Bearer`` credential (the Anthropic and OpenAI
    SDKs' places for their key); ``AuthenticationError`` when there is none."""
    bearer = ""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
        elif name == b"x-api-key" and value.strip():
            return str(value.decode("latin-1")).strip()
    if not bearer:
        raise AuthenticationError(
            "no credential: send a Preloop API key or runtime token as "
            "'Authorization: Bearer <key>' or 'x-api-key: <key>'"
        )
    return bearer


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ValidationError("the client went away while sending the request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"the request body is larger than {limit} bytes (PRELOOP_GATEWAY_MAX_BODY_BYTES)"
            )
        chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def json_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


_SESSION_HEADER = b"x-preloop-session-id"
_SESSION_ID = re.compile(SESSION_ID_PATTERN)


def session_id(scope: Scope) -> str | None:
    """The client's ``X-Preloop-Session-Id`` (a runtime session of a caller without a flow):
    1 to 64 letters, digits, ``.``, ``_``, ``:`` or ``-``; ``ValidationError`` otherwise."""
    for name, value in scope["headers"]:
        if name == _SESSION_HEADER:
            text: str = value.decode("latin-1").strip()
            if not _SESSION_ID.match(text):
                raise ValidationError(
                    "X-Preloop-Session-Id must be 1 to 64 letters, digits, '.', '_', ':' or '-'",
                    field="X-Preloop-Session-Id",
                )
            return text
    return None
