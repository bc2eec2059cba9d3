"""What the upstream pool's modules share: an upstream's configuration, health and state
changes, the callbacks, the pool's options and :class:`McpUpstreamError`.

The modules doing the pool's work (``_supervisor``, ``_requests``) import this one, never the
pool (:mod:`server.mcp.upstream`), so there is no import cycle (decision 0081). The pool
imports them inside its methods only so that the MCP SDK they import loads with the first
upstream, not with the server (``/healthz`` answers first, decision 0069). Everything here is
re-exported by :mod:`server.mcp.upstream`, where callers import it from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec

from hub.errors import ConfigError, PreloopError
from hub.policy.model import McpServerSpec

TRANSPORTS = ("stdio", "streamable-http", "sse")
PROTOCOLS = ("auto", "legacy", "2026-07-28")

ListChangedCallback = Callable[[str, str], Awaitable[None]]
"""``(server_name, kind)`` with kind ``"tools"``, ``"resources"`` or ``"prompts"``."""

ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]
"""``(progress, total, message)`` for one call, in the order the upstream sent them."""


class UpstreamConfig(msgspec.Struct, frozen=True):
    """How to reach one upstream MCP server. Already resolved: no ``${NAME}`` references."""

    name: str
    transport: str  # "stdio" | "streamable-http" | "sse"
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = {}  # merged over a minimal base env (PATH, HOME, LANG, ...) only
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = {}
    protocol: str = "auto"  # "auto" (let the SDK negotiate), "legacy" (initialize), "2026-07-28"

    def __post_init__(self) -> None:
        problem = None
        if self.transport not in TRANSPORTS:
            problem = f"unknown transport {self.transport!r}"
        elif self.protocol not in PROTOCOLS:
            problem = f"unknown protocol {self.protocol!r}"
        elif self.transport == "stdio" and not self.command:
            problem = "a stdio server needs a command"
        elif self.transport != "stdio" and not self.url:
            problem = f"a {self.transport} server needs a url"
        if problem is not None:
            raise ConfigError(f"MCP server '{self.name}': {problem}")

    @classmethod
    def from_spec(cls, spec: McpServerSpec, *, cwd: str | None = None) -> UpstreamConfig:
        """From a policy's server definition, once :func:`resolve_server_env` resolved it."""
        return cls(
            name=spec.name,
            transport=str(spec.transport),
            command=spec.command,
            args=tuple(spec.args),
            env=dict(spec.env),
            cwd=cwd,
            url=spec.url,
            headers=dict(spec.headers),
        )


class UpstreamHealth(msgspec.Struct, frozen=True):
    """What an operator sees about one upstream."""

    name: str
    state: str  # "connecting" | "ready" | "failed" (backing off) | "stopped"
    last_error: str | None  # why the last session or attempt ended; kept after recovery
    restarts: int  # connection attempts after the first (reconnects and retries)
    connected_at: datetime | None  # when the current (or last) session became ready
    protocol_version: str | None  # negotiated: "2025-11-25" (handshake era) or "2026-07-28"
    transport: str = ""
    pid: int | None = None  # of a stdio server's process, while it runs


class UpstreamStateChange(msgspec.Struct, frozen=True, kw_only=True):
    """An upstream's state as last reported changed: to ``ready``, ``connecting`` (a session
    ended and it reconnects at once), ``failed`` (backing off ``retry_in`` seconds) or
    ``stopped``. Reported when the state or the error differs from the last report."""

    server: str
    state: str
    previous_state: str
    error: str | None
    restarts: int
    retry_in: float | None = None


StateCallback = Callable[[UpstreamStateChange], None]
"""Called in the supervisor's task: must not block or raise (it only queues)."""


class McpUpstreamError(PreloopError):
    """An upstream MCP server failed a request, or could not be reached. The message names it.

    ``code`` and ``data`` carry the JSON-RPC error: the upstream's own when it answered with
    one (so the firewall can relay it), or the SDK's -32000 (connection closed) and -32001
    (request timeout). Both are ``None`` when no request could be sent at all.
    """

    title = "Upstream MCP server error"

    def __init__(self, message: str, *, server: str, code: int | None = None, data: Any = None):
        super().__init__(message)
        self.server = server
        self.code = code
        self.data = data


class PoolOptions(msgspec.Struct, frozen=True):
    call_timeout: float
    connect_timeout: float
    backoff_initial: float
    backoff_max: float
