"""Requests on an upstream's live session, with every failure turned into an
:class:`~server.mcp.upstream.McpUpstreamError` that names the server.

Results are the JSON the upstream sent (the SDK still validates them against the negotiated
protocol version); the typed models would drop fields they do not know. :func:`forward` (the
hot path) sends ``tools/call`` as raw JSON-RPC on the session's own connection instead
(:mod:`server.mcp._raw`) and returns the result object's bytes unparsed; on legacy SSE it
takes the SDK's way. Tool listings go
through the SDK's typed ``list_tools`` because at 2026-07-28 the session derives per-tool state
from them (the ``Mcp-Param`` headers of later calls).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import mcp_types as types
import msgspec
from mcp import Client
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, HEADER_MISMATCH, REQUEST_TIMEOUT
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import TypeAdapter, ValidationError

from hub.tool_results import ToolResult
from server.mcp import _raw
from server.mcp._link import log
from server.mcp._pool_types import McpUpstreamError, ProgressCallback

if TYPE_CHECKING:
    from server.mcp._supervisor import Live, Upstream

T = TypeVar("T")

MAX_PAGES = 1000  # a paginator that never ends cannot hang a listing
TEARDOWN_WAIT = 10.0  # bound on waiting for a lost session's teardown to learn why it ended

_RAW: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


class _ProgressRelay:
    """Runs a call's progress callback one notification at a time, in arrival order, and
    lets the call wait until every notification has been handed on before it returns."""

    def __init__(self, callback: ProgressCallback) -> None:
        self._callback = callback
        self._lock = anyio.Lock()
        self._pending = 0
        self._idle = anyio.Event()
        self._idle.set()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self._pending += 1
        if self._idle.is_set():
            self._idle = anyio.Event()
        try:
            async with self._lock:
                await self._callback(progress, total, message)
        except Exception:
            log.exception("progress callback raised")
        finally:
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()

    async def drain(self, limit: float) -> None:
        with anyio.move_on_after(limit):
            await self._idle.wait()


def _synthesized_closure(exc: MCPError) -> bool:
    """Whether the SDK made this error up because the connection or the request's stream
    ended; a server's own -32000 error (a common "server error" code) is not one."""
    return exc.message.startswith(("Connection closed", "SSE stream"))


async def _request(
    upstream: Upstream, operation: str, send: Callable[[Live], Awaitable[T]], *, limit: float
) -> T:
    """Send on the live session, translating every failure into an :class:`McpUpstreamError`.

    A request the upstream provably never ran (its HTTP session had expired) is sent once
    more on the new session."""
    for attempt in (1, 2):
        live = await upstream.acquire()
        try:
            return await send(live)
        except MCPError as exc:
            if _session_expired(upstream, exc) and attempt == 1:
                live.link.end("expired its HTTP session")
                continue
            raise await _translate(upstream, live, operation, exc, limit) from exc
        except ValidationError as exc:
            raise McpUpstreamError(
                f"MCP server '{upstream.name}' sent an invalid answer to {operation}: "
                f"{exc.errors()[0]['msg'] if exc.errors() else exc}",
                server=upstream.name,
            ) from exc
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise McpUpstreamError(
                f"MCP server '{upstream.name}' sent an invalid answer to {operation}: {exc}",
                server=upstream.name,
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _session_expired(upstream: Upstream, exc: MCPError) -> bool:
    """The server no longer knows our ``Mcp-Session-Id`` (it restarted, or expired it):
    HTTP 404, which the SDK reports as "Session terminated" and servers word their own way
    ("Session not found")."""
    if upstream.config.transport != "streamable-http":
        return False
    text = exc.message.lower()
    return "session" in text and any(
        word in text for word in ("not found", "terminated", "expired")
    )


async def _translate(
    upstream: Upstream, live: Live, operation: str, exc: MCPError, limit: float
) -> McpUpstreamError:
    if exc.code == CONNECTION_CLOSED and (live.ending or _synthesized_closure(exc)):
        # The session is gone (or, over HTTP, this request's stream broke: reconnect to
        # find out whether the server is still there).
        if upstream.config.transport == "stdio":
            live.link.end("closed its output")  # its exit status will tell the rest
        else:
            live.link.end(f"lost its connection ({exc.message})")
        with anyio.move_on_after(TEARDOWN_WAIT):
            await live.closed.wait()
        why = live.reason or "lost its connection"
        return McpUpstreamError(
            f"{operation} on MCP server '{upstream.name}' failed: it {why}",
            server=upstream.name,
            code=exc.code,
        )
    if exc.code == REQUEST_TIMEOUT:
        return McpUpstreamError(
            f"{operation} on MCP server '{upstream.name}' failed: no answer within {limit:g}s",
            server=upstream.name,
            code=exc.code,
        )
    return McpUpstreamError(
        f"{operation} on MCP server '{upstream.name}' failed: {exc.message}",
        server=upstream.name,
        code=exc.code,
        data=exc.data,
    )


async def _send_raw(
    client: Client, request: Any, limit: float, progress: ProgressFnT | None = None
) -> dict[str, Any]:
    """Send ``request`` and return its result as the JSON the upstream sent."""
    result = await client.session.send_request(
        request,
        cast(Any, _RAW),  # the SDK's signature wants a model; a dict adapter works the same
        request_read_timeout_seconds=limit,
        progress_callback=progress,
    )
    return cast(dict[str, Any], result)


async def _list_tools_on(client: Client) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await client.session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
        tools += [
            tool.model_dump(by_alias=True, mode="json", exclude_none=True) for tool in page.tools
        ]
        if not page.next_cursor or page.next_cursor == cursor:
            break
        cursor = page.next_cursor
    return tools


async def list_tools(upstream: Upstream) -> list[dict[str, Any]]:
    """Every tool (all pages), as the SDK's typed models dump them (by alias, no nulls)."""
    return await _request(
        upstream,
        "tools/list",
        lambda live: _list_tools_on(live.client),
        limit=upstream.options.connect_timeout,
    )


_LIST_REQUESTS: dict[str, tuple[Any, str]] = {
    "resources/list": (types.ListResourcesRequest, "resources"),
    "resources/templates/list": (types.ListResourceTemplatesRequest, "resources"),
    "prompts/list": (types.ListPromptsRequest, "prompts"),
}


def _serves(client: Client, capability: str) -> bool:
    """Whether the upstream declared ``capability`` (``resources``, ``prompts``)."""
    return getattr(client.server_capabilities, capability, None) is not None


def _not_served(upstream: Upstream, capability: str) -> McpUpstreamError:
    return McpUpstreamError(
        f"MCP server '{upstream.name}' serves no {capability}", server=upstream.name
    )


async def list_all(upstream: Upstream, method: str, key: str) -> list[dict[str, Any]]:
    """Every item of a paginated listing (``key`` of each page), as the upstream sent it;
    none when the upstream does not declare the listing's capability."""
    request_type, capability = _LIST_REQUESTS[method]
    limit = upstream.options.call_timeout

    async def send(live: Live) -> list[dict[str, Any]]:
        client = live.client
        if not _serves(client, capability):
            return []
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await _send_raw(client, request_type(params=params), limit)
            items += page.get(key) or []
            next_cursor = page.get("nextCursor")
            if not isinstance(next_cursor, str) or not next_cursor or next_cursor == cursor:
                break
            cursor = next_cursor
        return items

    return await _request(upstream, method, send, limit=limit)


async def read_resource(upstream: Upstream, uri: str) -> dict[str, Any]:
    limit = upstream.options.call_timeout
    request = types.ReadResourceRequest(params=types.ReadResourceRequestParams(uri=uri))

    async def send(live: Live) -> dict[str, Any]:
        if not _serves(live.client, "resources"):
            raise _not_served(upstream, "resources")
        return await _send_raw(live.client, request, limit)

    return await _request(upstream, f"resources/read '{uri}'", send, limit=limit)


async def get_prompt(
    upstream: Upstream, prompt: str, arguments: dict[str, str] | None
) -> dict[str, Any]:
    limit = upstream.options.call_timeout
    request = types.GetPromptRequest(
        params=types.GetPromptRequestParams(name=prompt, arguments=arguments)
    )

    async def send(live: Live) -> dict[str, Any]:
        if not _serves(live.client, "prompts"):
            raise _not_served(upstream, "prompts")
        return await _send_raw(live.client, request, limit)

    return await _request(upstream, f"prompts/get '{prompt}'", send, limit=limit)


async def _relisting(client: Client, send: Callable[[], Awaitable[T]]) -> T:
    """``send()``; at 2026-07-28, when the upstream says the request's headers do not match
    (the tool's listing is missing or stale on this session: its ``Mcp-Param`` headers come
    from it), list the tools again and send once more, as the SDK does."""
    try:
        return await send()
    except MCPError as exc:
        if exc.code != HEADER_MISMATCH or client.protocol_version not in (MODERN_PROTOCOL_VERSIONS):
            raise
    await _list_tools_on(client)
    return await send()


async def call_tool(
    upstream: Upstream,
    tool: str,
    arguments: dict[str, Any],
    *,
    progress: ProgressCallback | None,
    limit: float | None,
) -> dict[str, Any]:
    seconds = upstream.options.call_timeout if limit is None else limit
    request = types.CallToolRequest(
        params=types.CallToolRequestParams(name=tool, arguments=arguments)
    )

    async def send(live: Live) -> dict[str, Any]:
        relay = _ProgressRelay(progress) if progress is not None else None
        result = await _relisting(
            live.client, lambda: _send_raw(live.client, request, seconds, relay)
        )
        if relay is not None:
            await relay.drain(seconds)
        return result

    return await _request(upstream, f"tools/call '{tool}'", send, limit=seconds)


async def forward(
    upstream: Upstream,
    tool: str,
    arguments: dict[str, Any],
    *,
    progress: ProgressCallback | None,
    limit: float | None = None,
) -> ToolResult:
    """:func:`call_tool` as raw JSON-RPC where the session's transport has a raw channel
    (stdio, streamable HTTP): the result object's bytes as the upstream sent them."""
    seconds = upstream.options.call_timeout if limit is None else limit

    async def send(live: Live) -> ToolResult:
        channel = live.link.channel
        if channel is None:  # legacy SSE: the SDK's way
            relay = _ProgressRelay(progress) if progress is not None else None
            request = types.CallToolRequest(
                params=types.CallToolRequestParams(name=tool, arguments=arguments)
            )
            result = await _relisting(
                live.client, lambda: _send_raw(live.client, request, seconds, relay)
            )
            if relay is not None:
                await relay.drain(seconds)
            return ToolResult.of(result)
        session = live.client.session
        raw = await _relisting(
            live.client,
            lambda: _raw.request(
                channel,
                session,
                "tools/call",
                {"name": tool, "arguments": arguments},
                limit=seconds,
                progress=progress,
            ),
        )
        return ToolResult.of_json(raw)

    return await _request(upstream, f"tools/call '{tool}'", send, limit=seconds)
