"""The MCP firewall's edges. :mod:`server.mcp.upstream` is the client side: a pool of
long-lived sessions to the upstream MCP servers Preloop protects."""

from server.mcp.upstream import (
    McpUpstreamError,
    UpstreamConfig,
    UpstreamHealth,
    UpstreamPool,
)

__all__ = ["McpUpstreamError", "UpstreamConfig", "UpstreamHealth", "UpstreamPool"]
