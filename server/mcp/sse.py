"""Legacy HTTP+SSE for older agents, beside ``/mcp``: the same MCP server, another transport.

    agent ─GET /sse─▶ bearer key checked ─▶ the SDK's SseServerTransport opens an event stream
          whose first event announces ``/messages/?session_id=<id>``; the session is bound to
          the key (``McpEndpoint.server`` serves it, as it serves /mcp)
    agent ─POST /messages/?session_id=<id>─▶ bearer key checked, the session must be that key's
          (403 otherwise, 404 when unknown) ─▶ the transport hands the message to the session

Every POST is authenticated on its own, and its caller is what the MCP handlers see, so a key
revoked mid-session stops working at once. DNS-rebinding protection and the request body
limit are those of ``/mcp`` (the gateway's session manager's settings).
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from uuid import UUID

from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import TransportSecurityMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse

from hub.errors import NotFoundError, PermissionDeniedError, PreloopError, ValidationError
from hub.keys import Caller
from server.auth import bearer_token
from server.errors import error_body, status_of
from server.mcp._ids import checked
from server.mcp.endpoint import CALLER_KEY, _json_error

if TYPE_CHECKING:
    from server.mcp.endpoint import McpEndpoint

MESSAGES_PATH = "/messages/"
_ANNOUNCED_SESSION = re.compile(rb"session_id=([0-9a-f]{32})")

Scope = dict[str, Any]

_METHOD_ERROR = {
    "error": {
        "type": "MethodNotAllowed",
        "title": "Method not allowed",
        "message": "GET /sse opens the event stream; POST messages to the URL it announces",
    }
}


class SseEndpoint:
    """``GET /sse`` and ``POST /messages/``: the gateway's MCP server over legacy SSE."""

    def __init__(self, gateway: McpEndpoint) -> None:
        self.gateway = gateway
        security = gateway.manager.security_settings
        self.transport = SseServerTransport(
            MESSAGES_PATH,
            security_settings=security,
            max_request_body_size=gateway.manager.max_request_body_size,
        )
        self._security = TransportSecurityMiddleware(security)
        self._session_keys: dict[str, str] = {}  # open SSE session id (hex) -> its key id

    async def connect(self, scope: Scope, receive: Any, send: Any) -> None:
        """``GET /sse``: open the event stream and serve the MCP session until it closes."""
        if scope["type"] != "http":
            return
        if scope["method"] != "GET":
            await JSONResponse(_METHOD_ERROR, status_code=405, headers={"Allow": "GET"})(
                scope, receive, send
            )
            return
        caller = await self._authenticate(scope, send)
        if caller is None:
            return
        refused = await self._security.validate_request(Request(scope, receive), is_post=False)
        if refused is not None:  # a foreign Host or Origin (DNS rebinding)
            await refused(scope, receive, send)
            return
        opened: list[str] = []

        async def bind_session(message: MutableMapping[str, Any]) -> None:
            # The stream's first event announces the session's URL: bind it before it leaves.
            if not opened and message["type"] == "http.response.body":
                found = _ANNOUNCED_SESSION.search(message.get("body") or b"")
                if found is not None:
                    opened.append(found.group(1).decode())
                    self._session_keys[opened[0]] = caller.key_id
            await send(message)

        server = self.gateway.server
        try:
            async with self.transport.connect_sse(scope, receive, bind_session) as streams:
                await server.run(streams[0], streams[1], server.create_initialization_options())
        finally:
            for session in opened:
                self._session_keys.pop(session, None)

    async def post(self, scope: Scope, receive: Any, send: Any) -> None:
        """``POST /messages/?session_id=…``: one client message for an open session."""
        if scope["type"] != "http":
            return
        caller = await self._authenticate(scope, send)
        if caller is None:
            return
        session = _session_of(scope)
        if session is None:
            error: PreloopError = ValidationError(
                "session_id is missing or malformed: POST to the URL the event stream announced"
            )
            await _json_error(send, status_of(error), error_body(error))
            return
        owner = self._session_keys.get(session)
        if owner is None:
            error = NotFoundError("unknown MCP session (its event stream is closed or never was)")
            await _json_error(send, status_of(error), error_body(error))
            return
        if owner != caller.key_id:
            error = PermissionDeniedError("this MCP session belongs to another API key")
            await _json_error(send, status_of(error), error_body(error))
            return
        receive = await checked(receive, send, self.gateway.manager.max_request_body_size)
        if receive is None:  # an id the SDK would take for a notification: answered 400
            return
        scope = {**scope, "state": {**(scope.get("state") or {}), CALLER_KEY: caller}}
        await self.transport.handle_post_message(scope, receive, send)

    async def _authenticate(self, scope: Scope, send: Any) -> Caller | None:
        """The caller of a request, or ``None`` once a 401 went out."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            return await self.gateway.hub.identity.authenticate(
                bearer_token(headers.get("authorization", ""))
            )
        except PreloopError as exc:
            await _json_error(send, status_of(exc), error_body(exc))
            return None


def _session_of(scope: Scope) -> str | None:
    """The ``session_id`` query parameter as 32 hex digits, or ``None``."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_id")
    if not values or len(values) != 1:
        return None
    try:
        return UUID(hex=values[0]).hex
    except ValueError:
        return None
