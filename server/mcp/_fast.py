"""The MCP hot path: a plain ``tools/call`` POST answered without the SDK's server.

    /mcp POST ─▶ decoded once (msgspec) as a tools/call ─▶ every check the SDK makes, made here
    (or, at the first one that fails, the whole request handed to the SDK, which answers it as
    before) ─▶ McpEndpoint.call_tool ─▶ the JSON-RPC answer written here, the result's JSON bytes
    spliced in: ``{"jsonrpc":"2.0","id":<id>,"result":<result>}``

What is served here, and how it answers (as the SDK does for the same request):

- **2026-07-28** (``MCP-Protocol-Version: 2026-07-28``, no session): the routing headers and the
  request's ``_meta`` envelope pass the SDK's own ladder (``classify_inbound_request``, the
  duplicated-header check, the ``Mcp-Param-*`` check against the tool's schema as last listed).
  The answer is JSON, unless a progress notification comes first or the call runs past 15 s:
  then an SSE stream (with keep-alive comments). The client closing the stream cancels the call.
  A result gets ``resultType`` and the server-info stamp in ``_meta`` when it has none (the SDK
  requires both at this version).
- **handshake era** (a session opened by ``initialize`` here, bound to this key): an SSE stream
  carrying the session id, as the SDK's transport answers. A ``notifications/cancelled``
  naming a call in flight here cancels it (answered with the SDK's -32800 error); the client
  closing the stream lets the call finish but resolves ``gone``.

Anything else (a batch, another method, task-augmented calls, unknown fields, a session the SDK
no longer serves, an Accept header without both JSON and SSE, a failed check) goes to the SDK
unchanged: it has the answer. The params are still checked with the SDK's own schema of the
negotiated version, so no call is served here that the SDK would refuse. docs/decisions/0062.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, cast

import anyio
import msgspec
from mcp.server.runner import modern_error_data
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    MCP_PARAM_HEADER_PREFIX,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
)
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp_types import SERVER_INFO_META_KEY, ErrorData
from mcp_types import methods as _methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from hub.keys import Caller
from hub.tool_calls import Progress
from hub.tool_results import ToolResult
from server.mcp._ids import Receive, Send

log = logging.getLogger("preloop.mcp.fast")

PING_INTERVAL = 15.0  # seconds, as the SDK's SSE streams (a proxy must not time the stream out)
REQUEST_CANCELLED = -32800  # the SDK's answer to a cancelled handshake-era request
_PARAM_PREFIX = MCP_PARAM_HEADER_PREFIX.lower()

CallTool = Callable[..., Awaitable[ToolResult]]  # McpEndpoint.call_tool


class _CallParams(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    arguments: dict[str, Any] | None = None
    meta: dict[str, Any] | None = msgspec.field(default=None, name="_meta")


class _Call(msgspec.Struct, forbid_unknown_fields=True):
    """A JSON-RPC ``tools/call`` request, and nothing else: any other body fails to decode."""

    jsonrpc: Literal["2.0"]
    id: int | str
    method: Literal["tools/call"]
    params: _CallParams


class _Cancelled(msgspec.Struct):
    jsonrpc: Literal["2.0"]
    method: Literal["notifications/cancelled"]
    params: dict[str, Any]


class _Shape(msgspec.Struct):
    """What a 2026-07-28 result must carry, read without decoding the rest."""

    resultType: str | None = None  # the field's name on the wire
    meta: dict[str, Any] | None = msgspec.field(default=None, name="_meta")


_call = msgspec.json.Decoder(_Call)
_cancelled = msgspec.json.Decoder(_Cancelled)
_shape = msgspec.json.Decoder(_Shape)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode

_JSON = b"application/json"
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]


class _Headers:
    """The request's headers where the SDK's security check reads them (``.headers.get``)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers


def _sse(message: bytes) -> bytes:
    """One SSE ``message`` event; JSON whitespace line breaks become ``data:`` lines."""
    if b"\n" in message or b"\r" in message:
        lines = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        return b"event: message\r\n" + b"".join(b"data: " + ln + b"\r\n" for ln in lines) + b"\r\n"
    return b"event: message\r\ndata: " + message + b"\r\n\r\n"


def _answer(request_id: int | str, result: bytes) -> bytes:
    return b'{"jsonrpc":"2.0","id":' + _encode(request_id) + b',"result":' + result + b"}"


def _error(request_id: int | str, error: ErrorData) -> bytes:
    body = {"jsonrpc": "2.0", "id": request_id, "error": error.model_dump(exclude_none=True)}
    return _encode(body)


class _Flight:
    """A handshake-era call in flight here, and whether its client cancelled it."""

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.cancelled = False


class _Exchange:
    """One HTTP response being written: JSON until it commits to an SSE stream."""

    def __init__(self, send: Send, extra_headers: list[tuple[bytes, bytes]]) -> None:
        self.send = send
        self.extra = extra_headers
        self.streaming = False
        self.gone = asyncio.Event()  # the client closed the exchange

    async def event(self, message: bytes) -> None:
        await self.stream()
        await self._body(_sse(message), more=True)

    async def stream(self) -> None:
        if not self.streaming:
            self.streaming = True
            start = {"type": "http.response.start", "status": 200}
            await self._send({**start, "headers": _SSE_HEADERS + self.extra})

    async def finish(self, message: bytes, status: int = 200) -> None:
        if self.streaming:
            await self._body(_sse(message), more=False)
            return
        headers = [(b"content-type", _JSON), (b"content-length", b"%d" % len(message))]
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        await self._body(message, more=False)

    async def ping(self) -> None:
        await self._body(b": ping\r\n\r\n", more=True)

    async def _body(self, body: bytes, *, more: bool) -> None:
        await self._send({"type": "http.response.body", "body": body, "more_body": more})

    async def _send(self, message: dict[str, Any]) -> None:
        if self.gone.is_set():
            return
        try:
            await self.send(message)
        except OSError:  # the client went away meanwhile
            self.gone.set()


class FastCalls:
    """Answers the tools/call POSTs it can (see the module docstring); logs each at debug
    level (the tests read which path answered from it)."""

    def __init__(
        self,
        call_tool: CallTool,
        manager: StreamableHTTPSessionManager,
        input_schema: Callable[[str], dict[str, Any] | None],
        server_info: Callable[[], dict[str, Any]],
    ) -> None:
        self._call_tool = call_tool
        self._manager = manager
        self._security = TransportSecurityMiddleware(manager.security_settings)
        self._input_schema = input_schema
        self._server_info = server_info
        self._ready: dict[str, str] = {}  # handshake-era session -> its negotiated version
        self._in_flight: dict[tuple[str, int | str], _Flight] = {}

    def ready(self, session: str, version: str, limit: int) -> None:
        """Session ``session`` finished ``initialize`` at ``version``."""
        if len(self._ready) >= limit:
            del self._ready[next(iter(self._ready))]
        self._ready[session] = version

    async def answer(
        self,
        caller: Caller,
        headers: Mapping[str, str],
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes,
        receive: Receive,
        send: Send,
    ) -> bool:
        """Answer the POST whose whole body is ``body``, or leave it (``False``) to the SDK."""
        session = headers.get("mcp-session-id")
        version = headers.get("mcp-protocol-version")
        accept = [t.split(";")[0].strip().lower() for t in headers.get("accept", "").split(",")]
        if "*/*" not in accept and not (
            ("application/json" in accept or "application/*" in accept)
            and ("text/event-stream" in accept or "text/*" in accept)
        ):
            return False  # the SDK answers 406
        if await self._security.validate_request(cast(Any, _Headers(headers)), is_post=True):
            return False  # the SDK answers 400, 421 or 403
        try:
            call = _call.decode(body)
        except (msgspec.DecodeError, RecursionError):
            if session is not None and (version is None or version in HANDSHAKE_PROTOCOL_VERSIONS):
                return await self._cancel(session, body, send)
            return False
        arguments = call.params.arguments or {}
        params: dict[str, Any] = {"name": call.params.name}
        if call.params.arguments is not None:
            params["arguments"] = call.params.arguments
        if call.params.meta is not None:
            params["_meta"] = call.params.meta
        transport: StreamableHTTPServerTransport | None = None
        if session is None:
            if version not in MODERN_PROTOCOL_VERSIONS:
                return False
            if not self._modern_checks(call, params, headers, raw_headers):
                return False
        else:
            negotiated = self._ready.get(session)
            transport = self._manager._server_instances.get(session)
            if negotiated is None or transport is None or transport.is_terminated:
                return False
            if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
                return False
            version = negotiated
        try:
            _methods.validate_client_request("tools/call", version, params)
        except (KeyError, ValidationError):
            return False  # the SDK's answer: method not found, invalid params
        token = (call.params.meta or {}).get("progressToken")
        if isinstance(token, bool) or not isinstance(token, int | str):
            token = None
        log.debug("tools/call %s answered on the fast path", call.params.name)
        if transport is None:
            await self._serve_modern(caller, call, arguments, token, receive, send)
        else:
            assert session is not None
            with _held(transport):
                await self._serve_session(caller, session, call, arguments, token, receive, send)
        return True

    def _modern_checks(
        self,
        call: _Call,
        params: dict[str, Any],
        headers: Mapping[str, str],
        raw_headers: list[tuple[bytes, bytes]],
    ) -> bool:
        """Whether the SDK's 2026-07-28 ladder lets the call through."""
        pairs = ((k.decode("latin-1"), "") for k, _ in raw_headers)
        if find_duplicated_routing_header(pairs) is not None:
            return False
        mcp = [k for k, _ in raw_headers if k.lower().startswith(b"mcp-")]
        if len(mcp) != len(set(mcp)):  # the SDK reads repeated Mcp-Param-* headers its own way
            return False
        body = {"jsonrpc": "2.0", "id": call.id, "method": call.method, "params": params}
        verdict = classify_inbound_request(body, headers=headers)
        if isinstance(verdict, InboundLadderRejection):
            return False
        arguments = call.params.arguments or {}
        if arguments or any(h.startswith(_PARAM_PREFIX) for h in headers):
            try:
                schema = self._input_schema(call.params.name)
            except Exception:  # the SDK serves the call unchecked then; so does the SDK path
                return False
            if schema is not None and validate_mcp_param_headers(schema, arguments, headers):
                return False
        return True

    async def _serve_modern(
        self,
        caller: Caller,
        call: _Call,
        arguments: dict[str, Any],
        token: int | str | None,
        receive: Receive,
        send: Send,
    ) -> None:
        exchange = _Exchange(send, [])
        progress = _progress(exchange, token) if token is not None else None
        task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.get_running_loop().create_task(_keep_alive(exchange, receive, task))
        try:
            try:
                result = await self._call_tool(
                    caller, call.params.name, arguments, progress=progress, gone=exchange.gone.wait
                )
            except Exception as exc:  # as the SDK's 2026-07-28 entry maps a handler's failure
                error = modern_error_data(exc)
                await exchange.finish(_error(call.id, error), _status(error.code))
            else:
                await exchange.finish(_answer(call.id, self._stamped(result.json)))
        except asyncio.CancelledError:
            if not exchange.gone.is_set():
                raise  # not the client's doing (the server stops)
            task.uncancel()  # the client closed the stream: the call is withdrawn, as in the SDK
        finally:
            watcher.cancel()

    async def _serve_session(
        self,
        caller: Caller,
        session: str,
        call: _Call,
        arguments: dict[str, Any],
        token: int | str | None,
        receive: Receive,
        send: Send,
    ) -> None:
        exchange = _Exchange(send, [(b"mcp-session-id", session.encode("latin-1"))])
        await exchange.stream()  # the SDK's transport commits its SSE stream at once
        progress = _progress(exchange, token) if token is not None else None
        task = asyncio.current_task()
        assert task is not None
        flight = _Flight(task)
        key = (session, call.id)
        self._in_flight[key] = flight
        watcher = asyncio.get_running_loop().create_task(_keep_alive(exchange, receive, None))
        try:
            try:
                result = await self._call_tool(
                    caller,
                    call.params.name,
                    arguments,
                    session=session,
                    progress=progress,
                    gone=exchange.gone.wait,
                )
            except Exception as exc:  # as the SDK's dispatcher maps a handler's failure
                error = handler_exception_to_error_data(exc)
                if error is None:
                    log.exception("tools/call %s raised", call.params.name)
                    error = ErrorData(code=0, message=str(exc))
                message = _error(call.id, error)
            else:
                message = _answer(call.id, result.json)
        except asyncio.CancelledError:
            if not flight.cancelled:
                raise  # not the client's doing (the server stops)
            task.uncancel()
            cancelled = ErrorData(code=REQUEST_CANCELLED, message="Request cancelled")
            message = _error(call.id, cancelled)
        finally:
            if self._in_flight.get(key) is flight:
                del self._in_flight[key]
            watcher.cancel()
        await exchange.finish(message)

    async def _cancel(self, session: str, body: bytes, send: Send) -> bool:
        """A ``notifications/cancelled`` for a call in flight here: cancel it, answer 202."""
        try:
            note = _cancelled.decode(body)
        except (msgspec.DecodeError, RecursionError):
            return False
        request_id = note.params.get("requestId")
        if isinstance(request_id, bool) or not isinstance(request_id, int | str):
            return False
        flight = self._in_flight.get((session, request_id))
        if flight is None or flight.cancelled:
            return False  # the SDK's own request, or none: it knows
        flight.cancelled = True
        flight.task.cancel()
        headers = [
            (b"content-type", _JSON),
            (b"mcp-session-id", session.encode("latin-1")),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return True

    def _stamped(self, result: bytes) -> bytes:
        """A 2026-07-28 result: ``resultType`` and the server-info stamp, added if missing."""
        shape = _shape.decode(result)
        meta = shape.meta
        if shape.resultType is not None and meta is not None and meta.get(SERVER_INFO_META_KEY):
            return result
        decoded = _decode(result)
        decoded.setdefault("resultType", "complete")
        meta = decoded.get("_meta")
        if meta is None or (isinstance(meta, dict) and meta.get(SERVER_INFO_META_KEY) is None):
            decoded["_meta"] = {**(meta or {}), SERVER_INFO_META_KEY: self._server_info()}
        return _encode(decoded)


def _progress(exchange: _Exchange, token: int | str) -> Progress:
    async def progress(value: float, total: float | None, message: str | None) -> None:
        params: dict[str, Any] = {"progressToken": token, "progress": value}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}
        await exchange.event(_encode(note))

    return progress


async def _keep_alive(
    exchange: _Exchange, receive: Receive, call: asyncio.Task[Any] | None
) -> None:
    """Until cancelled: note the client leaving (and cancel ``call``, when given); once the
    call runs past the ping interval, stream and send keep-alive comments."""
    while True:
        try:
            async with asyncio.timeout(PING_INTERVAL):
                while (await receive())["type"] != "http.disconnect":
                    pass
        except TimeoutError:
            await exchange.stream()
            await exchange.ping()
            continue
        exchange.gone.set()
        if call is not None:
            call.cancel()
        return


def _status(code: int) -> int:
    return ERROR_CODE_HTTP_STATUS.get(code, 200)


@contextmanager
def _held(transport: StreamableHTTPServerTransport) -> Iterator[None]:
    """Hold the session open while a call is served here, as the SDK's transport does for its
    own requests (its idle countdown restarts once none is in flight). Reads the transport's
    private fields (SDK pinned in pyproject.toml; tests/integration/mcp/test_fast_path.py
    checks they exist)."""
    idle = transport.idle_scope
    timeout = transport._idle_timeout
    if idle is None or timeout is None:
        yield
        return
    transport._requests_in_flight += 1
    idle.deadline = math.inf
    try:
        yield
    finally:
        transport._requests_in_flight -= 1
        if not transport._requests_in_flight:
            idle.deadline = anyio.current_time() + timeout
