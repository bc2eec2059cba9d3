"""The live feed: one topic of the unified WebSocket (``approvals`` by default, with the
``system`` topic's upstream health and blocked tools for the Servers screen; or ``activity``
for the Audit screen), kept connected.

``LiveFeed.updates()`` is an endless async iterator of two kinds of item:

- :class:`FeedStatus`, whenever the connection state changes (connecting, connected,
  disconnected with the seconds until the next try, rejected). The dashboard always shows
  the latest one. ``connected`` is only reported once the subscription is confirmed, from
  which point the server misses no event; the screens reload their lists on it, so whatever
  happened while the feed was down is caught up.
- the hub's approval events (:data:`hub.events.AnyEvent`), decoded from the wire, and the
  ``system`` events in :data:`SYSTEM_KINDS` when the key may follow that topic (the
  ``connected`` message lists its topics; an agent key may not, and then only approvals
  come). ``connected`` waits for both subscriptions, so neither topic misses an event; or,
  on the ``activity`` topic, :class:`ActivityEvent` (an audit event as it is appended).

When the server goes away the feed retries with exponential backoff (``Backoff``), reset
after each successful subscription. A socket silent for three heartbeats is treated as dead.
A key the server rejects (close code 4401) stops the feed: retrying would not help.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from hub.events import AnyEvent

UNAUTHORIZED_CLOSE = 4401
DEFAULT_HEARTBEAT_SECONDS = 30.0
MISSED_HEARTBEATS = 3


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    REJECTED = "rejected"


class FeedStatus(msgspec.Struct, frozen=True, kw_only=True):
    state: ConnectionState
    detail: str = ""
    retry_in: float | None = None  # seconds until the next attempt, when disconnected


class Backoff:
    """Delays between attempts: ``first``, doubling, at most ``cap`` seconds."""

    def __init__(self, first: float = 0.5, cap: float = 15.0) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def next_delay(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first


class _Envelope(msgspec.Struct, kw_only=True):
    type: str
    topic: str = ""
    event: msgspec.Raw = msgspec.Raw(b"null")
    heartbeat_seconds: float | None = None
    message: str = ""
    topics: list[str] = []


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_EVENT = msgspec.json.Decoder(AnyEvent)
# The system events the Servers screen follows (upstream health, tools blocked by a change).
SYSTEM_KINDS = ("upstream.state_changed", "tool.blocked")
_KNOWN_EVENTS = {
    "approval.requested",
    "approval.voted",
    "approval.escalated",
    "approval.decided",
    *SYSTEM_KINDS,
}


_SUBSCRIBE_SYSTEM = msgspec.json.encode(
    {"type": "subscribe", "topic": "system", "filters": {"kind": list(SYSTEM_KINDS)}}
).decode()


class ActivityEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An ``audit.appended`` event of the ``activity`` topic: an audit event without its hash
    chain fields."""

    seq: int
    kind: str
    actor: str
    at: datetime
    data: dict[str, Any] = {}


_ACTIVITY = msgspec.json.Decoder(ActivityEvent)


class _Rejected(Exception):
    pass


def ws_url(http_url: str) -> str:
    """The unified WebSocket's URL on the server at ``http_url``."""
    base = http_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return f"{base}/api/v1/ws/unified"


class LiveFeed:
    """One ``topic`` of the server at ``url``, as the key ``api_key`` sees it."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        backoff: Backoff | None = None,
        topic: str = "approvals",
    ) -> None:
        self.url = ws_url(url)
        self.topic = topic
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self.backoff = backoff or Backoff()

    async def updates(self) -> AsyncIterator[FeedStatus | Any]:
        while True:
            yield FeedStatus(state=ConnectionState.CONNECTING, detail=self.url)
            reason = ""
            try:
                async with connect(
                    self.url, additional_headers=self._headers, open_timeout=30, close_timeout=5
                ) as socket:
                    async for item in self._session(socket):
                        yield item
                reason = "the server closed the connection"
            except _Rejected as exc:
                yield FeedStatus(state=ConnectionState.REJECTED, detail=str(exc))
                return
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == UNAUTHORIZED_CLOSE:
                    detail = exc.rcvd.reason or "the server rejected the API key"
                    yield FeedStatus(state=ConnectionState.REJECTED, detail=detail)
                    return
                reason = "the connection was lost"
            except InvalidStatus as exc:
                reason = f"the server answered HTTP {exc.response.status_code}"
            except (OSError, TimeoutError, WebSocketException) as exc:
                reason = _describe(exc)
            delay = self.backoff.next_delay()
            yield FeedStatus(state=ConnectionState.DISCONNECTED, detail=reason, retry_in=delay)
            await asyncio.sleep(delay)

    async def _session(self, socket: ClientConnection) -> AsyncIterator[FeedStatus | Any]:
        silence = DEFAULT_HEARTBEAT_SECONDS * MISSED_HEARTBEATS
        subscribe = {"type": "subscribe", "topic": self.topic}
        await socket.send(msgspec.json.encode(subscribe).decode())
        awaited = {self.topic}  # subscriptions not confirmed yet
        while True:
            try:
                async with asyncio.timeout(silence):
                    frame = await socket.recv()
            except TimeoutError:
                await socket.close()
                return
            with contextlib.suppress(msgspec.DecodeError):
                envelope = _ENVELOPE.decode(frame)
                if envelope.type == "connected":
                    if envelope.heartbeat_seconds:
                        silence = envelope.heartbeat_seconds * MISSED_HEARTBEATS
                    if self.topic == "approvals" and "system" in envelope.topics:
                        awaited.add("system")
                        await socket.send(_SUBSCRIBE_SYSTEM)
                elif envelope.type == "subscribed" and envelope.topic in awaited:
                    awaited.discard(envelope.topic)
                    if not awaited:
                        self.backoff.reset()
                        yield FeedStatus(state=ConnectionState.CONNECTED, detail=self.url)
                elif envelope.type == "event":
                    kind = _event_type(envelope.event)
                    if kind == "audit.appended" and self.topic == "activity":
                        yield _ACTIVITY.decode(envelope.event)
                    elif kind in _KNOWN_EVENTS:
                        yield _EVENT.decode(envelope.event)
                elif envelope.type == "error" and envelope.message:
                    raise _Rejected(envelope.message)


class _Tagged(msgspec.Struct):
    type: str = ""


def _event_type(raw: msgspec.Raw) -> str:
    return msgspec.json.decode(raw, type=_Tagged).type


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
