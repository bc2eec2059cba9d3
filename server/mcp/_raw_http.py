"""The streamable HTTP transport, with a channel for raw requests beside the SDK's session.

:func:`open_streamable_http` is the SDK's ``streamable_http_client`` written out, so that the
transport object (its ``Mcp-Session-Id`` and negotiated ``MCP-Protocol-Version``) and the
read stream are reachable: :class:`HttpChannel` POSTs a raw request with the same headers the
SDK's transport would (its ``_prepare_headers`` plus the session's per-request ones) on the
same pooled ``httpx2`` client, and reads the answer from a JSON body or from the SSE stream.
Messages on that stream that are not about the raw request (a server's own request, a log
message) go to the SDK's session as if its transport had read them.

Failures are spelled as the SDK's transport spells them (:class:`MCPError`: a JSON-RPC error in
a non-2xx body, "Session terminated" for a 404 on a known session, "SSE stream ...", "Connection
closed"), so :mod:`server.mcp._requests` treats them the same. Not done here: resuming a
broken SSE stream with ``Last-Event-ID`` (the call fails as a lost connection instead).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import httpx2
import msgspec
from httpx2 import ServerSentEvent
from mcp.client.streamable_http import StreamableHTTPTransport
from mcp.shared._context_streams import ContextSendStream, create_context_streams
from mcp.shared._httpx_utils import stream_within_origin
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import (
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    jsonrpc_message_adapter,
)

from server.mcp._link import Link, WatchedReadStream, describe, log
from server.mcp._raw import (
    Envelope,
    RawCall,
    RawCalls,
    cancel_via_session,
    decode_envelope,
    relay_progress,
)

if TYPE_CHECKING:
    from mcp.client.session import ClientSession

    from server.mcp._pool_types import ProgressCallback

DRAIN_LIMIT = 30.0  # bound on reading an answered SSE stream to its end


@asynccontextmanager
async def open_streamable_http(
    url: str, client: httpx2.AsyncClient, link: Link
) -> AsyncIterator[tuple[Any, Any]]:
    """The SDK's ``streamable_http_client`` (terminating the session on close), with
    ``link.channel`` set to a raw channel on the same session."""
    transport = StreamableHTTPTransport(url)
    read_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
    write_stream, write_reader = create_context_streams[SessionMessage](0)
    channel = HttpChannel(url, client, transport, read_writer)
    link.channel = channel
    try:
        async with (
            read_writer,
            read_stream,
            write_stream,
            write_reader,
            anyio.create_task_group() as tg,
        ):

            def start_get_stream() -> None:
                tg.start_soon(transport.handle_get_stream, client, read_writer)

            channel.drains = tg
            tg.start_soon(
                transport.post_writer,
                client,
                write_reader,
                read_writer,
                write_stream,
                start_get_stream,
                tg,
            )
            try:
                yield (
                    WatchedReadStream(read_stream, lambda: link.end("closed its connection")),
                    (write_stream),
                )
            finally:
                channel.calls.close()
                if transport.session_id:
                    await transport.terminate_session(client)
                tg.cancel_scope.cancel()
    finally:
        channel.calls.close()


class HttpChannel:
    """Raw requests as POSTs on the session's HTTP client, answered on the POST itself."""

    def __init__(
        self,
        url: str,
        client: httpx2.AsyncClient,
        transport: StreamableHTTPTransport,
        to_session: ContextSendStream[SessionMessage | Exception],
    ) -> None:
        self.calls = RawCalls()
        self._url = url
        self._client = client
        self._transport = transport
        self._to_session = to_session
        self.drains: anyio.abc.TaskGroup | None = None  # the transport's, once it runs

    async def send(
        self,
        call: RawCall,
        body: bytes,
        headers: dict[str, str],
        progress: ProgressCallback | None,
    ) -> None:
        """POST ``body`` and settle ``call`` from the answer (progress is handed on as it
        arrives, in this task)."""
        sent = self._transport._prepare_headers()  # the session's own headers (private)
        sent.update(headers)
        had_session = self._transport.session_id is not None
        exchange = stream_within_origin(self._client, "POST", self._url, content=body, headers=sent)
        rest: AsyncIterator[ServerSentEvent] | None = None
        try:
            response = await exchange.__aenter__()
            try:
                outcome, rest = await self._answer(call, response, had_session, progress)
                call.settle(outcome)
            finally:
                if rest is None or self.drains is None:
                    rest = None
                    with anyio.CancelScope(shield=True):
                        await exchange.__aexit__(None, None, None)
        except (httpx2.HTTPError, httpx2.StreamError) as exc:  # the SDK: the transport fails
            call.settle(
                MCPError(code=CONNECTION_CLOSED, message=f"Connection closed: {describe(exc)}")
            )
        if rest is not None and self.drains is not None:
            try:
                self.drains.start_soon(self._drain, exchange, rest)
            except RuntimeError:  # the transport is closing: no task group to read it in
                with anyio.CancelScope(shield=True):
                    await exchange.__aexit__(None, None, None)

    async def _drain(
        self, exchange: AbstractAsyncContextManager[Any], rest: AsyncIterator[ServerSentEvent]
    ) -> None:
        """Read an answered SSE stream to its end (the server closes it after the answer), so
        its connection goes back to the pool instead of being closed; what else arrives on it
        goes to the session."""
        try:
            with anyio.move_on_after(DRAIN_LIMIT):
                async for event in rest:
                    if event.event == "message" and event.data:
                        await self._to_sdk(event.data.encode())
        except Exception:
            log.debug("draining an answered SSE stream failed", exc_info=True)
        finally:
            with anyio.CancelScope(shield=True):
                await exchange.__aexit__(None, None, None)

    async def cancel(self, session: ClientSession, call: RawCall, reason: str) -> None:
        await cancel_via_session(session, call, reason)

    async def _answer(
        self,
        call: RawCall,
        response: httpx2.Response,
        had_session: bool,
        progress: ProgressCallback | None,
    ) -> tuple[bytes | MCPError, AsyncIterator[ServerSentEvent] | None]:
        """The call's outcome, and (SSE) the rest of the stream once the answer was read."""
        kind = response.headers.get("content-type", "").lower()
        answered = response.status_code in range(200, 300) and response.status_code != 202
        if answered and kind.startswith("text/event-stream"):
            return await self._from_stream(call, response, progress)
        return await self._answer_body(call, response, had_session), None

    async def _answer_body(
        self, call: RawCall, response: httpx2.Response, had_session: bool
    ) -> bytes | MCPError:
        status = response.status_code
        if status == 202:
            return MCPError(
                code=INVALID_REQUEST, message="server answered a request with 202 Accepted"
            )
        if 300 <= status < 400:
            return MCPError(code=INVALID_REQUEST, message=f"Redirect ({status}) not followed")
        kind = response.headers.get("content-type", "").lower()
        if status >= 400:
            if kind.startswith("application/json"):
                with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                    envelope = decode_envelope(await response.aread())
                    if envelope.error is not None:
                        error = envelope.error
                        return MCPError(code=error.code, message=error.message, data=error.data)
            if status == 404:
                if had_session:
                    return MCPError(code=INVALID_REQUEST, message="Session terminated")
                return MCPError(code=METHOD_NOT_FOUND, message="Not Found")
            return MCPError(code=INTERNAL_ERROR, message="Server returned an error response")
        if kind.startswith("application/json"):
            content = await response.aread()
            try:
                envelope = decode_envelope(content)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                return MCPError(code=PARSE_ERROR, message=f"Failed to parse JSON response: {exc}")
            return self._outcome(call, envelope)
        return MCPError(code=INVALID_REQUEST, message=f"Unexpected content type: {kind}")

    @staticmethod
    def _outcome(call: RawCall, envelope: Envelope) -> bytes | MCPError:
        if envelope.method is not None or envelope.id != call.id:
            return MCPError(code=PARSE_ERROR, message="Failed to parse JSON response: not ours")
        if envelope.error is not None:
            error = envelope.error
            return MCPError(code=error.code, message=error.message, data=error.data)
        return bytes(envelope.result)

    async def _from_stream(
        self, call: RawCall, response: httpx2.Response, progress: ProgressCallback | None
    ) -> tuple[bytes | MCPError, AsyncIterator[ServerSentEvent] | None]:
        source = httpx2.EventSource(response, max_event_size=self._transport.max_sse_event_size)
        events = aiter(source)
        try:
            async for event in events:
                if event.event != "message" or not event.data:
                    continue
                data = event.data.encode()
                outcome = await self._event(call, data, progress)
                if outcome is not None:
                    return outcome, events
        except httpx2.SSEError as exc:
            return MCPError(code=CONNECTION_CLOSED, message=f"SSE stream failed: {exc}"), None
        closed = MCPError(code=CONNECTION_CLOSED, message="SSE stream ended without a response")
        return closed, None

    async def _event(
        self, call: RawCall, data: bytes, progress: ProgressCallback | None
    ) -> bytes | MCPError | None:
        """One SSE message: the answer (returned), our progress (handed on) or the session's."""
        try:
            envelope = decode_envelope(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return MCPError(code=PARSE_ERROR, message=f"Failed to parse SSE message: {exc}")
        if envelope.method is None and envelope.id == call.id:
            return self._outcome(call, envelope)
        if self.calls.route(envelope):  # our progress: queued on the call, handed on here
            while call.backlog:
                await relay_progress(progress, call.backlog.popleft())
            return None
        await self._to_sdk(data)
        return None

    async def _to_sdk(self, data: bytes) -> None:
        """A message on a raw call's stream that is the session's business."""
        try:
            message = jsonrpc_message_adapter.validate_json(data, by_name=False)
        except ValueError:
            log.warning("not a JSON-RPC message on a raw call's stream: %.200r", data)
            return
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self._to_session.send(SessionMessage(message))
