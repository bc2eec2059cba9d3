"""``preloop mcp stdio``: a stdio MCP server that forwards an agent's traffic to Preloop.

    agent ─stdio─▶ this bridge ─streamable HTTP, bearer key─▶ Preloop's /mcp ─▶ upstreams

For agents that can only spawn a command. The bridge evaluates no policy: ``tools/list`` and
``tools/call`` go to ``/mcp`` over one long-lived SDK client session, results come back as
Preloop sent them (raw JSON validated into the SDK's model), and progress notifications are
relayed to the agent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.server import Server, ServerRequestContext
from pydantic import TypeAdapter

from hub import __version__
from hub.errors import PreloopError

Ctx = ServerRequestContext[Any, Any]

CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 3600.0  # a held call may wait long for a human approval

_RAW: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


class BridgeConnectError(PreloopError):
    """The Preloop server could not be reached, or refused the key."""

    title = "Cannot connect to Preloop"


def mcp_endpoint(url: str) -> str:
    """``URL/mcp`` (a URL that already ends in ``/mcp`` is kept)."""
    base = url.rstrip("/")
    return base if base.endswith("/mcp") else f"{base}/mcp"


@asynccontextmanager
async def upstream_client(url: str, key: str) -> AsyncIterator[Client]:
    """One SDK client session to Preloop's ``/mcp`` with ``Authorization: Bearer key``."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    refused: list[int] = []  # the SDK reports a 401 as a bare error: remember the status

    async def note_refusal(response: Any) -> None:
        if response.status_code in (401, 403):
            refused.append(response.status_code)

    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx2.Timeout(CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
        event_hooks={"response": [note_refusal]},
    )
    async with http, AsyncExitStack() as stack:
        transport = streamable_http_client(mcp_endpoint(url), http_client=http)
        try:
            client = await stack.enter_async_context(Client(transport, mode="auto", cache=None))
        except Exception as exc:  # reported to the user, with its cause
            if refused:
                reason = f"the server refused the API key (HTTP {refused[0]})"
                raise BridgeConnectError(reason) from exc
            raise BridgeConnectError(_describe(exc)) from exc
        yield client


def _describe(exc: BaseException) -> str:
    """A one-line reason, looking inside exception groups for the first real cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _send(upstream: Client, request: Any, **options: Any) -> dict[str, Any]:
    """A request's result exactly as Preloop sent it (JSON, not yet a typed model)."""
    send: Any = upstream.session.send_request  # typed for the SDK's result models only
    result: dict[str, Any] = await send(request, _RAW, **options)
    return result


def build_bridge(upstream: Client) -> Server[Any]:
    """The low-level MCP server whose handlers forward to ``upstream``."""

    async def list_tools(
        ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        request = types.ListToolsRequest(
            params=types.PaginatedRequestParams(cursor=params.cursor if params else None)
        )
        raw = await _send(upstream, request)
        return types.ListToolsResult.model_validate(raw)

    async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        token = (ctx.meta or {}).get("progress_token")
        relay: Any = None
        if token is not None:

            async def relay(progress: float, total: float | None, message: str | None) -> None:
                await ctx.session.report_progress(progress, total, message)

        request = types.CallToolRequest(
            params=types.CallToolRequestParams(name=params.name, arguments=params.arguments)
        )
        raw = await _send(upstream, request, progress_callback=relay)
        return types.CallToolResult.model_validate(raw)

    return Server(
        "preloop-bridge",
        version=__version__,
        instructions=upstream.instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_stdio(url: str, key: str) -> None:
    """Connect to Preloop, then serve the agent on this process's stdin and stdout.

    Raises :class:`BridgeConnectError` when the server cannot be reached or refuses the key.
    """
    from mcp.server.stdio import stdio_server

    async with upstream_client(url, key) as upstream:
        server = build_bridge(upstream)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
