"""One upstream MCP server's supervisor: the task that owns its session.

The supervisor is a task of its own (it outlives any request) that enters the transport and
the SDK ``Client`` and leaves them again, always in that task. Requests run in the callers'
tasks on the live session (:mod:`server.mcp._requests`), which the SDK multiplexes by request
id; ``tools/call`` from ``forward`` goes beside the SDK, as raw JSON-RPC on the same connection
(``Link.channel``, :mod:`server.mcp._raw`). The session's end is an event (``Link.ended``):
the transport's read stream ended, the process exited, the pool asked it to stop, or a request
learned the session is gone. Then the supervisor connects again: at once if the session had
been up, with exponential backoff if attempts keep failing. Nothing polls.

The supervisor reports what an operator wants to hear of (``UpstreamStateChange``): ready,
reconnecting at once after a session ended, failed and backing off, stopped. The short
``connecting`` at the start of every attempt is not reported on its own.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime

import anyio
import mcp_types as types
from mcp import Client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from hub import __version__
from hub.clock import Clock
from server.mcp._changes import ChangeListener
from server.mcp._link import PROCESS_ENDINGS, TORN_DOWN, Link, describe, log
from server.mcp._pool_types import (
    ListChangedCallback,
    McpUpstreamError,
    PoolOptions,
    StateCallback,
    UpstreamConfig,
    UpstreamHealth,
    UpstreamStateChange,
)
from server.mcp._transports import open_transport

CLIENT_INFO = types.Implementation(name="preloop", version=__version__)


@dataclass
class Live:
    """A session that reached ready, while it lasts."""

    client: Client
    link: Link
    closed: anyio.Event = field(default_factory=anyio.Event)  # teardown finished
    reason: str | None = None  # why it ended, once ``closed`` is set

    @property
    def ending(self) -> bool:
        return self.link.ended.is_set()


@dataclass
class _Outcome:
    was_ready: bool
    lived: float
    error: str | None


class Upstream:
    """One upstream: configuration, state for ``health()``, the live session, its supervisor."""

    def __init__(
        self,
        config: UpstreamConfig,
        options: PoolOptions,
        on_list_changed: ListChangedCallback | None,
        clock: Clock,
        on_state: StateCallback | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.options = options
        self._changes = ChangeListener(config.name, options, on_list_changed)
        self._clock = clock
        self.state = "connecting"
        self.last_error: str | None = None
        self.restarts = 0
        self.connected_at: datetime | None = None
        self.protocol_version: str | None = None
        self._pid: int | None = None
        self._retry_at: float | None = None
        self._live: Live | None = None
        self._changed = anyio.Event()
        self._wake = anyio.Event()
        self._stopping: str | None = None  # the reason, once asked to stop
        self._scope: anyio.CancelScope | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_state = on_state
        self._reported: tuple[str, str | None] = ("connecting", None)  # state, error

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._supervise(), name=f"mcp-upstream:{self.name}"
        )

    async def stop(self, reason: str) -> None:
        if self._stopping is None:
            self._stopping = reason
        live = self._live
        if live is not None:
            live.link.end(reason)  # graceful: the supervisor closes the session itself
        elif self._scope is not None:
            self._scope.cancel()  # still connecting: abandon the attempt
        self._wake.set()
        if self._task is not None:
            await asyncio.shield(self._task)

    def health(self) -> UpstreamHealth:
        return UpstreamHealth(
            name=self.name,
            state=self.state,
            last_error=self.last_error,
            restarts=self.restarts,
            connected_at=self.connected_at,
            protocol_version=self.protocol_version,
            transport=self.config.transport,
            pid=self._pid,
        )

    def _set_state(self, state: str) -> None:
        self.state = state
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def _report(self, state: str, error: str | None, retry_in: float | None = None) -> None:
        """Tell the pool's watchers, when the state or the error differs from the last
        report (a server failing the same way at every retry is reported once)."""
        previous = self._reported[0]
        if (state, error) == self._reported:
            return
        self._reported = (state, error)
        if self._on_state is None:
            return
        self._on_state(
            UpstreamStateChange(
                server=self.name,
                state=state,
                previous_state=previous,
                error=error,
                restarts=self.restarts,
                retry_in=retry_in,
            )
        )

    async def _supervise(self) -> None:
        failures = 0
        try:
            while self._stopping is None:
                outcome = await self._run_session()
                if self._stopping is not None:
                    break
                self.last_error = outcome.error
                if outcome.was_ready and outcome.lived >= self.options.backoff_max:
                    failures = 0  # it had been healthy for a while: start the backoff afresh
                failures += 1
                # A session that was up restarts at once; repeated failures back off.
                exponent = failures - (2 if outcome.was_ready else 1)
                if exponent >= 0:
                    delay = min(
                        self.options.backoff_max, self.options.backoff_initial * 2**exponent
                    )
                    log.warning(
                        "MCP server '%s' %s; retrying in %.1fs", self.name, outcome.error, delay
                    )
                    self._retry_at = anyio.current_time() + delay
                    self._set_state("failed")
                    self._report("failed", outcome.error, delay)
                    wake = self._wake = anyio.Event()
                    if self._stopping is None:
                        with anyio.move_on_after(delay):
                            await wake.wait()
                    self._retry_at = None
                else:
                    log.warning("MCP server '%s' %s; reconnecting", self.name, outcome.error)
                    self._report("connecting", outcome.error)
                if self._stopping is None:
                    self.restarts += 1
        except Exception:  # pragma: no cover - a bug here must not pass silently
            log.exception("supervisor of MCP server '%s' failed", self.name)
            self.last_error = "internal error in the upstream supervisor"
        finally:
            self._pid = None
            self._set_state("stopped")
            self._report("stopped", self._stopping or self.last_error)

    async def _run_session(self) -> _Outcome:
        """Connect, serve until the session ends, tear down. Never raises but cancellation."""
        self._set_state("connecting")
        link = Link()
        live: Live | None = None
        started = anyio.current_time()
        error: BaseException | None = None
        with anyio.CancelScope() as scope:
            self._scope = scope
            if self._stopping is not None:
                scope.cancel()
            try:
                async with AsyncExitStack() as stack:
                    client = Client(
                        open_transport(
                            self.config,
                            link,
                            connect_timeout=self.options.connect_timeout,
                            read_timeout=max(self.options.call_timeout, 300.0),
                        ),
                        mode=self.config.protocol,
                        cache=None,
                        client_info=CLIENT_INFO,
                        message_handler=self._changes.on_message,
                        read_timeout_seconds=self.options.connect_timeout,
                    )
                    await stack.enter_async_context(client)
                    tg = await stack.enter_async_context(anyio.create_task_group())
                    if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
                        await tg.start(self._changes.listen, client, link)
                    live = Live(client=client, link=link)
                    self._publish(live, link)
                    try:
                        await link.ended.wait()
                    finally:
                        link.end(TORN_DOWN)  # tells callers this session is over
                        self._live = None
                        if self._stopping is None:
                            self._set_state("connecting")
                        tg.cancel_scope.cancel()
            except Exception as exc:
                error = exc
            finally:
                self._scope = None
        reason = self._reason(link, error)
        if live is not None:
            live.reason = reason
            live.closed.set()
        self._pid = None
        return _Outcome(
            was_ready=live is not None, lived=anyio.current_time() - started, error=reason
        )

    def _reason(self, link: Link, error: BaseException | None) -> str:
        """Why a session ended, as a phrase that follows the server's name."""
        if self._stopping is not None:
            return self._stopping
        stdio = self.config.transport == "stdio"
        if stdio and link.pid is None:
            return "could not be started" + (f": {describe(error)}" if error else "")
        first = link.reason
        if stdio and first in PROCESS_ENDINGS and not link.signalled:
            return link.describe_exit()  # it died on its own: its exit status says how
        if first is None or first == TORN_DOWN:
            text = "failed to connect" if first is None else "lost its connection"
        else:
            text = first
        if error is not None:
            text += f": {describe(error)}"
        return text + (link.stderr_suffix() if stdio else "")

    def _publish(self, live: Live, link: Link) -> None:
        self._live = live
        self._pid = link.pid
        self.connected_at = self._clock.now()
        self.protocol_version = live.client.protocol_version
        log.info(
            "MCP server '%s' connected (%s, protocol %s)",
            self.name,
            self.config.transport,
            self.protocol_version,
        )
        self._set_state("ready")
        self._report("ready", self.last_error)

    # -- for requests -----------------------------------------------------------------------

    async def wait_ready(self, limit: float) -> None:
        with anyio.move_on_after(limit):
            while True:
                changed = self._changed
                if self.state == "ready":
                    return
                if self.state == "stopped":
                    raise self._unavailable()
                await changed.wait()
        raise McpUpstreamError(
            f"MCP server '{self.name}' did not become ready within {limit:g}s"
            + (f" (last error: it {self.last_error})" if self.last_error else ""),
            server=self.name,
        )

    def _unavailable(self) -> McpUpstreamError:
        if self.state == "stopped":
            return McpUpstreamError(
                f"MCP server '{self.name}' {self._stopping or 'is stopped'}", server=self.name
            )
        retry = ""
        if self._retry_at is not None:
            retry = f"; next attempt in {max(0.0, self._retry_at - anyio.current_time()):.1f}s"
        return McpUpstreamError(
            f"MCP server '{self.name}' is unavailable: it {self.last_error}{retry}",
            server=self.name,
        )

    async def acquire(self) -> Live:
        """The live session; waits while connecting (bounded), fails fast while backing off."""
        limit = self.options.connect_timeout
        with anyio.move_on_after(limit):
            while True:
                changed = self._changed
                live = self._live
                if live is not None and not live.ending:
                    return live
                if self.state in ("failed", "stopped"):
                    raise self._unavailable()
                await changed.wait()
        raise McpUpstreamError(
            f"MCP server '{self.name}' did not become ready within {limit:g}s"
            + (f" (last error: it {self.last_error})" if self.last_error else ""),
            server=self.name,
        )
