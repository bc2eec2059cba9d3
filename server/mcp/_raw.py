"""Requests on an upstream's live session sent as raw JSON-RPC, beside the SDK's own.

The hot path (``tools/call``) does not go through the SDK's client session: the request is
encoded once (msgspec), written on the session's own connection (the stdio process's input,
or a POST with the session's headers, :mod:`server.mcp._raw_http`), and the answer's envelope
is decoded with its ``result`` left as :class:`msgspec.Raw`, so the result object reaches the
agent as the bytes the upstream sent.

Ids live in a namespace of their own: strings starting with :data:`ID_PREFIX`, where the SDK
numbers its requests with integers, so neither side can take the other's answer. A connection
routes an incoming message to :class:`RawCalls` when it carries that prefix (a substring test on
the raw bytes first, so the SDK's own traffic costs one scan); everything else goes to the SDK
as before.

Failures are the SDK's (:class:`~mcp.shared.exceptions.MCPError` with its codes and messages),
so :mod:`server.mcp._requests` translates both paths the same way. Like the SDK, a call that
times out or whose caller is cancelled sends ``notifications/cancelled`` to the upstream
(which, on streamable HTTP at 2026-07-28, the SDK's transport turns into closing the stream).
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import mcp_types as types
import msgspec
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from server.mcp._link import log

if TYPE_CHECKING:
    from mcp.client.session import ClientSession

    from server.mcp._pool_types import ProgressCallback

ID_PREFIX = "preloop~"
MARK = b'"' + ID_PREFIX.encode()
"""How an id (or progress token) of ours starts on the wire: the test before any parsing."""

ABANDON_WRITE_TIMEOUT = 5.0  # the SDK's bound on the courtesy cancel's write
PROGRESS_BACKLOG = 1024  # progress notifications kept for a caller that is behind


class RpcError(msgspec.Struct):
    code: int
    message: str = ""
    data: Any = None


class Envelope(msgspec.Struct):
    """A JSON-RPC message, decoded only as far as routing needs: the result stays raw."""

    id: str | int | None = None
    result: msgspec.Raw = msgspec.Raw()
    error: RpcError | None = None
    method: str | None = None
    params: msgspec.Raw = msgspec.Raw()


class Progress(msgspec.Struct):
    progressToken: str | int  # the field's name on the wire
    progress: float
    total: float | None = None
    message: str | None = None


decode_envelope = msgspec.json.Decoder(Envelope).decode
_decode_progress = msgspec.json.Decoder(Progress).decode
_encode = msgspec.json.Encoder().encode


class RawCall:
    """One request in flight: its id, its outcome once known, the progress not yet handed on."""

    __slots__ = ("_wake", "backlog", "id", "outcome")

    def __init__(self, request_id: str) -> None:
        self.id = request_id
        self.outcome: bytes | MCPError | None = None
        self.backlog: deque[Progress] = deque(maxlen=PROGRESS_BACKLOG)
        self._wake = anyio.Event()

    def settle(self, outcome: bytes | MCPError) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self._wake.set()

    def progressed(self, progress: Progress) -> None:
        self.backlog.append(progress)
        self._wake.set()

    async def wait(self, progress: ProgressCallback | None) -> bytes:
        """The result's bytes, after handing every progress notification on, in order."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            while self.backlog:
                await relay_progress(progress, self.backlog.popleft())
            if isinstance(self.outcome, MCPError):
                raise self.outcome
            if self.outcome is not None:
                return self.outcome


async def relay_progress(callback: ProgressCallback | None, progress: Progress) -> None:
    if callback is None:
        return
    try:
        await callback(progress.progress, progress.total, progress.message)
    except Exception:
        log.exception("progress callback raised")


def outcome_of(envelope: Envelope) -> bytes | MCPError:
    if envelope.error is not None:
        error = envelope.error
        return MCPError(code=error.code, message=error.message, data=error.data)
    return bytes(envelope.result)


class RawCalls:
    """The requests of ours in flight on one connection, by id."""

    _ids = itertools.count(1)  # one sequence for the process: ids never repeat

    def __init__(self) -> None:
        self._calls: dict[str, RawCall] = {}
        self._closed: MCPError | None = None

    def __len__(self) -> int:
        return len(self._calls)

    def open(self) -> RawCall:
        if self._closed is not None:
            raise self._closed
        call = RawCall(f"{ID_PREFIX}{next(self._ids)}")
        self._calls[call.id] = call
        return call

    def finish(self, call: RawCall) -> None:
        self._calls.pop(call.id, None)

    def get(self, request_id: object) -> RawCall | None:
        return self._calls.get(request_id) if isinstance(request_id, str) else None

    def route(self, envelope: Envelope) -> bool:
        """Settle the call ``envelope`` answers, or queue the progress it reports; ``False``
        when it is no message of ours (it goes to the SDK then)."""
        if envelope.method is None:
            call = self.get(envelope.id)
            if call is None:
                return False
            call.settle(outcome_of(envelope))
            return True
        if envelope.method == "notifications/progress" and envelope.params:
            try:
                progress = _decode_progress(envelope.params)
            except msgspec.ValidationError:
                return False
            call = self.get(progress.progressToken)
            if call is None:
                return False
            call.progressed(progress)
            return True
        return False

    def route_line(self, line: bytes) -> bool:
        """:meth:`route` for one raw message; the SDK's own traffic is passed over after a
        substring test."""
        if MARK not in line:
            return False
        try:
            envelope = decode_envelope(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        return self.route(envelope)

    def close(self) -> None:
        """The connection ended: every call in flight fails as the SDK's would."""
        self._closed = MCPError(code=CONNECTION_CLOSED, message="Connection closed")
        for call in self._calls.values():
            call.settle(self._closed)


class Channel(Protocol):
    """How raw requests reach one live session's upstream (stdio or streamable HTTP)."""

    calls: RawCalls

    async def send(
        self,
        call: RawCall,
        body: bytes,
        headers: dict[str, str],
        progress: ProgressCallback | None,
    ) -> None:
        """Send ``body`` as ``call``; return once it is written, or (HTTP) answered."""

    async def cancel(self, session: ClientSession, call: RawCall, reason: str) -> None:
        """Tell the upstream that ``call`` is abandoned, as the SDK would."""


def _stamped(
    session: ClientSession, method: str, params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The request's params and per-request headers as the SDK's session would send them:
    ``MCP-Protocol-Version``, and at 2026-07-28 the per-request ``_meta`` and the
    ``Mcp-Method``/``Mcp-Name``/``Mcp-Param-*`` headers (from the session's tool listing)."""
    data: dict[str, Any] = {"method": method, "params": params}
    opts: dict[str, Any] = {}
    session._stamp(data, opts)  # type: ignore[arg-type]  # the SDK's stamp: both paths send alike
    return data["params"], opts.get("headers") or {}


async def request(
    channel: Channel,
    session: ClientSession,
    method: str,
    params: dict[str, Any],
    *,
    limit: float,
    progress: ProgressCallback | None = None,
) -> bytes:
    """Send ``method`` on ``channel`` and return the result object's JSON as sent.

    Raises :class:`MCPError` as the SDK would: the upstream's error, ``REQUEST_TIMEOUT``
    after ``limit`` seconds, ``CONNECTION_CLOSED`` when the connection ended."""
    call = channel.calls.open()
    try:
        params, headers = _stamped(session, method, params)
        if progress is not None:
            params["_meta"] = {**(params.get("_meta") or {}), "progressToken": call.id}
        body = _encode({"jsonrpc": "2.0", "id": call.id, "method": method, "params": params})
        started = False
        with anyio.move_on_after(limit) as scope:
            try:
                await anyio.lowlevel.checkpoint_if_cancelled()
                started = True  # a cancelled write may still have delivered: cancel it then
                await channel.send(call, body, headers, progress)
                return await call.wait(progress)
            except anyio.get_cancelled_exc_class():
                if started and not scope.cancel_called:
                    with anyio.move_on_after(ABANDON_WRITE_TIMEOUT, shield=True):
                        await _cancel(channel, session, call, "caller cancelled")
                raise
        await _cancel(channel, session, call, f"timed out after {limit}s")
        raise MCPError(code=REQUEST_TIMEOUT, message=f"Request {method!r} timed out")
    finally:
        channel.calls.finish(call)


async def _cancel(channel: Channel, session: ClientSession, call: RawCall, reason: str) -> None:
    """The SDK's courtesy ``notifications/cancelled``, so the upstream stops the work."""
    with anyio.move_on_after(ABANDON_WRITE_TIMEOUT):
        await channel.cancel(session, call, reason)


async def cancel_via_session(session: ClientSession, call: RawCall, reason: str) -> None:
    """``notifications/cancelled`` through the SDK's session and transport (which, on
    streamable HTTP at 2026-07-28, sends nothing: closing the request's stream said it)."""
    await session.send_notification(
        types.CancelledNotification(
            params=types.CancelledNotificationParams(request_id=call.id, reason=reason)
        )
    )


def cancel_line(session: ClientSession, call: RawCall, reason: str) -> bytes:
    """``notifications/cancelled`` for ``call`` as one line, stamped as the SDK would."""
    params, _ = _stamped(
        session, "notifications/cancelled", {"requestId": call.id, "reason": reason}
    )
    message = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}
    return _encode(message) + b"\n"
