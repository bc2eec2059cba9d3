"""Client transports to upstream MCP servers: stdio (:mod:`server.mcp._stdio`), streamable
HTTP (the SDK's, opened by :mod:`server.mcp._raw_http`) and legacy SSE (the SDK's). Each is an
async context manager yielding the SDK's stream pair, entered and left in the upstream's
supervisor task; the ``Link`` learns when and why it ends, and (stdio, streamable HTTP) gets
the channel raw requests take."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from server.mcp._link import Link, WatchedReadStream
from server.mcp._stdio import open_stdio

if TYPE_CHECKING:
    from server.mcp._pool_types import UpstreamConfig

Streams = tuple[Any, Any]  # (read stream, write stream) in the SDK's SessionMessage contract


@asynccontextmanager
async def open_transport(
    config: UpstreamConfig, link: Link, *, connect_timeout: float, read_timeout: float
) -> AsyncIterator[Streams]:
    """The stream pair for ``config``'s transport; ``link`` learns when and why it ends."""
    if config.transport == "stdio":
        async with open_stdio(config, link) as streams:
            yield streams
        return
    if config.url is None:
        raise ValueError("an HTTP transport needs a url")
    if config.transport == "streamable-http":
        import httpx2

        from server.mcp._raw_http import open_streamable_http

        client = httpx2.AsyncClient(
            headers=dict(config.headers),
            timeout=httpx2.Timeout(connect_timeout, read=read_timeout),
        )
        async with client, open_streamable_http(config.url, client, link) as streams:
            yield streams
        return
    if config.transport == "sse":
        from mcp.client.sse import sse_client

        async with sse_client(
            config.url,
            headers=dict(config.headers),
            timeout=connect_timeout,
            sse_read_timeout=read_timeout,
        ) as (read, write):
            yield WatchedReadStream(read, lambda: link.end("closed its event stream")), write
        return
    raise ValueError(f"unknown transport {config.transport!r}")
