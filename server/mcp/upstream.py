"""The upstream side of the MCP firewall: a pool of long-lived client sessions, one per
upstream MCP server (stdio subprocess, streamable HTTP or legacy SSE).

Every upstream has one supervisor task that owns its transport and SDK session (their task
groups and exit stacks are entered and left in that task). Callers never own a session: they
borrow the live one and send requests on it; the SDK multiplexes concurrent requests by id.
When a session ends (the process exited, the connection dropped) the supervisor notices at
once, because the transport's end is an event, and connects again: at once if the session had
been up, with exponential backoff while attempts keep failing. A call waits (bounded by the
connect timeout) while an upstream is connecting, and fails fast while it is backing off.

Every change of an upstream's state (ready, reconnecting, failing with backoff, stopped) is
reported to the callbacks given to :meth:`UpstreamPool.watch_states`, synchronously and from
the supervisor's task: a callback must only queue the change (server/system_events.py does).

Results come back as JSON dicts exactly as the upstream sent them (every content block type,
``structuredContent``, ``isError``, ``_meta``), so the firewall can pass them on losslessly.
``forward`` (the hot path) gives a tool's result as the bytes the upstream sent, never
parsed: it sends ``tools/call`` as raw JSON-RPC on the live session's own connection (stdio,
streamable HTTP; docs/decisions/0064).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from hub.clock import Clock, SystemClock
from hub.errors import ConflictError, NotFoundError
from hub.tool_results import ToolResult
from server.mcp._pool_types import (
    PROTOCOLS,
    TRANSPORTS,
    ListChangedCallback,
    McpUpstreamError,
    PoolOptions,
    ProgressCallback,
    StateCallback,
    UpstreamConfig,
    UpstreamHealth,
    UpstreamStateChange,
)

if TYPE_CHECKING:
    from server.mcp._supervisor import Upstream

__all__ = [
    "PROTOCOLS",
    "TRANSPORTS",
    "ListChangedCallback",
    "McpUpstreamError",
    "ProgressCallback",
    "StateCallback",
    "UpstreamConfig",
    "UpstreamHealth",
    "UpstreamPool",
    "UpstreamStateChange",
]

log = logging.getLogger("preloop.mcp.upstream")


class UpstreamPool:
    """Long-lived sessions to upstream MCP servers, reconnecting on failure.

    Use it as ``async with UpstreamPool(...) as pool`` or call :meth:`close` when done.
    """

    def __init__(
        self,
        *,
        on_list_changed: ListChangedCallback | None = None,
        call_timeout: float = 300.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        connect_timeout: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self._options = PoolOptions(
            call_timeout=call_timeout,
            connect_timeout=connect_timeout,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        self._on_list_changed = on_list_changed
        self._listeners: dict[object, ListChangedCallback] = {}
        self._state_watchers: dict[object, StateCallback] = {}
        self._clock = clock or SystemClock()
        self._upstreams: dict[str, Upstream] = {}
        self._closed = False

    async def __aenter__(self) -> UpstreamPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- membership -------------------------------------------------------------------------

    async def add(self, config: UpstreamConfig) -> None:
        """Start connecting to ``config``'s server; returns without waiting for it."""
        from server.mcp._supervisor import Upstream  # the MCP SDK, once there is an upstream

        if self._closed:
            raise RuntimeError("the upstream pool is closed")
        if config.name in self._upstreams:
            raise ConflictError(f"MCP server '{config.name}' is already in the pool")
        upstream = Upstream(
            config, self._options, self._list_changed, self._clock, self._state_changed
        )
        self._upstreams[config.name] = upstream
        upstream.start()

    async def remove(self, name: str) -> None:
        """Disconnect from ``name`` (terminating its process) and forget it. Calls in flight
        fail with :class:`McpUpstreamError`."""
        await self._remove(name, "was removed from the pool")

    async def replace(self, config: UpstreamConfig) -> None:
        """Reconnect ``config.name`` with a new configuration (a no-op if unchanged; an
        :meth:`add` if unknown). Calls in flight on the old session fail."""
        current = self._upstreams.get(config.name)
        if current is not None:
            if current.config == config:
                return
            await self._remove(config.name, "was reconfigured")
        await self.add(config)

    async def _remove(self, name: str, reason: str) -> None:
        upstream = self._get(name)
        del self._upstreams[name]
        await upstream.stop(reason)

    def subscribe_list_changed(self, callback: ListChangedCallback) -> Callable[[], None]:
        """Call ``callback(server, kind)`` too whenever an upstream announces a list change
        (besides the constructor's ``on_list_changed``). Returns the unsubscribe function."""
        token = object()
        self._listeners[token] = callback

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe

    def watch_states(self, callback: StateCallback) -> Callable[[], None]:
        """Call ``callback(change)`` whenever an upstream's state changes. Returns the
        unwatch function."""
        token = object()
        self._state_watchers[token] = callback

        def unwatch() -> None:
            self._state_watchers.pop(token, None)

        return unwatch

    def _state_changed(self, change: UpstreamStateChange) -> None:
        for callback in tuple(self._state_watchers.values()):
            try:
                callback(change)
            except Exception:
                log.exception("a state callback for MCP server '%s' raised", change.server)

    async def _list_changed(self, name: str, kind: str) -> None:
        callbacks = [self._on_list_changed, *self._listeners.values()]
        for callback in callbacks:
            if callback is None:
                continue
            try:
                await callback(name, kind)
            except Exception:
                log.exception("a list-changed callback for MCP server '%s' raised", name)

    def names(self) -> list[str]:
        return sorted(self._upstreams)

    def health(self, name: str) -> UpstreamHealth:
        return self._get(name).health()

    async def wait_ready(
        self,
        name: str,
        timeout: float | None = None,  # noqa: ASYNC109 - a bound that raises McpUpstreamError
    ) -> UpstreamHealth:
        """Wait until ``name`` is connected (through retries); raises :class:`McpUpstreamError`
        when ``timeout`` (default: the connect timeout) passes first."""
        upstream = self._get(name)
        await upstream.wait_ready(self._options.connect_timeout if timeout is None else timeout)
        return self.health(name)

    async def close(self) -> None:
        """Stop every upstream: close sessions, terminate processes."""
        self._closed = True
        upstreams = list(self._upstreams.values())
        self._upstreams.clear()
        async with anyio.create_task_group() as tg:
            for upstream in upstreams:
                tg.start_soon(upstream.stop, "was stopped")

    # -- requests (local imports: the modules doing the work import the MCP SDK) -----------

    async def list_tools(self, name: str) -> list[dict[str, Any]]:
        """Every tool definition (all pages) as JSON dicts."""
        from server.mcp._requests import list_tools

        return await list_tools(self._get(name))

    async def call_tool(
        self,
        name: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        progress: ProgressCallback | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - sent on as the request's own timeout
    ) -> dict[str, Any]:
        """Call ``tool`` and return its ``CallToolResult`` exactly as the upstream sent it.

        Progress notifications reach ``progress`` in order, all before this returns. A tool
        that fails reports ``isError: true`` in the result; :class:`McpUpstreamError` means the
        call itself failed (the server errored, timed out, exited or was unreachable).
        """
        from server.mcp._requests import call_tool

        return await call_tool(self._get(name), tool, arguments, progress=progress, limit=timeout)

    async def forward(
        self,
        name: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        progress: ProgressCallback | None = None,
    ) -> ToolResult:
        """:meth:`call_tool`'s result as the upstream sent it, its JSON never parsed, for
        passing on unchanged (hub's ``Upstream`` port). Sent as raw JSON-RPC on the session's
        own connection (stdio, streamable HTTP), the SDK's way on legacy SSE; fails as
        :meth:`call_tool` does."""
        from server.mcp._requests import forward

        return await forward(self._get(name), tool, arguments, progress=progress)

    async def list_resources(self, name: str) -> list[dict[str, Any]]:
        """Every resource (all pages) as the upstream sent them; none (and no error) when
        the upstream does not declare the ``resources`` capability."""
        from server.mcp._requests import list_all

        return await list_all(self._get(name), "resources/list", "resources")

    async def list_resource_templates(self, name: str) -> list[dict[str, Any]]:
        """Every resource template (all pages); none without the ``resources`` capability."""
        from server.mcp._requests import list_all

        return await list_all(self._get(name), "resources/templates/list", "resourceTemplates")

    async def read_resource(self, name: str, uri: str) -> dict[str, Any]:
        """The ``ReadResourceResult`` exactly as the upstream sent it. :class:`McpUpstreamError`
        when the read failed, or the upstream serves no resources at all."""
        from server.mcp._requests import read_resource

        return await read_resource(self._get(name), uri)

    async def list_prompts(self, name: str) -> list[dict[str, Any]]:
        """Every prompt (all pages); none without the ``prompts`` capability."""
        from server.mcp._requests import list_all

        return await list_all(self._get(name), "prompts/list", "prompts")

    async def get_prompt(
        self, name: str, prompt: str, arguments: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """The ``GetPromptResult`` exactly as the upstream sent it. :class:`McpUpstreamError`
        when the request failed, or the upstream serves no prompts at all."""
        from server.mcp._requests import get_prompt

        return await get_prompt(self._get(name), prompt, arguments)

    def _get(self, name: str) -> Upstream:
        upstream = self._upstreams.get(name)
        if upstream is None:
            raise NotFoundError(f"no MCP server '{name}' in the pool")
        return upstream
