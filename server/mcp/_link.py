"""What the pool learns about one upstream connection: when it ended (an event, never a
poll), why, and for a stdio server its pid, exit status and last words on stderr; and the
connection's channel for raw requests (:mod:`server.mcp._raw`), where its transport has one."""

from __future__ import annotations

import logging
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from mcp.shared.exceptions import MCPError

if TYPE_CHECKING:
    from server.mcp._raw import Channel

log = logging.getLogger("preloop.mcp.upstream")

PROCESS_ENDINGS = ("closed its output", "exited", "stopped reading its input")
"""``Link.reason`` values meaning the stdio process ended the session itself."""
TORN_DOWN = "lost its connection"
"""``Link.reason`` when the session was torn down without an earlier reason (a transport
failure cancelled it)."""

STDERR_TAIL_LINES = 20


def describe(exc: BaseException) -> str:
    """A one-line account of an exception, looking inside exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.message
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Link:
    """What the pool learns about one connection while it lives and when it ends."""

    ended: anyio.Event = field(default_factory=anyio.Event)
    pid: int | None = None
    exit_status: int | None = None
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_TAIL_LINES))
    reason: str | None = None  # why it ended (the first reason), as a phrase after a name
    signalled: bool = False  # the pool had to signal a live process to stop it
    channel: Channel | None = None  # raw requests on this connection (not on legacy SSE)

    def end(self, reason: str) -> None:
        """Record the first reason the connection ended and wake the supervisor."""
        if self.reason is None:
            self.reason = reason
        self.ended.set()

    def stderr_suffix(self) -> str:
        tail = [line for line in self.stderr_tail if line.strip()]
        return "; last stderr: " + " | ".join(tail[-3:]) if tail else ""

    def describe_exit(self) -> str:
        """'exited with code 3' / 'was killed by signal SIGKILL', with the tail of stderr."""
        status = self.exit_status
        if status is None:
            text = "closed its output"
        elif status < 0:
            try:
                name = signal.Signals(-status).name
            except ValueError:
                name = str(-status)
            text = f"was killed by signal {name}"
        else:
            text = f"exited with code {status}"
        return text + self.stderr_suffix()


class WatchedReadStream:
    """Wraps a transport's read stream and reports its end (EOF or close) to a ``Link``."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> WatchedReadStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
