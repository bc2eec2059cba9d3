"""The event bus across processes: PostgreSQL ``LISTEN``/``NOTIFY``.

    replica A: publish ─▶ NOTIFY preloop_approvals '<event JSON>' ─┬─▶ replica A's listener
                                                                   └─▶ replica B's listener
    listener ─▶ decode ─▶ the process's own InMemoryEventBus ─▶ its subscribers (waits, ...)

Every process publishes only through PostgreSQL, its own subscribers included, so all see one
order. Each event is a tagged msgspec Struct sent as JSON; events are small, and one larger
than PostgreSQL's 8000-byte payload limit is refused (``ValidationError``) rather than cut.
A subscription starts listening before ``subscribe`` yields, so a waiter that subscribes and
then reads the store cannot miss a decision made in between. A notification that cannot be
decoded (a newer replica's event) is logged and dropped.

A lost connection is reopened: the publishing one at the next publish (which is retried once
on the new connection), the listening one at once, with backoff. Events sent while a replica
was not listening are lost to it; its held calls still re-read their requests at every
heartbeat, so a lost event delays an answer and never changes it. A publish that fails even
after reconnecting is logged and dropped for the same reason: the decision it reports is
already committed, and failing the decider's request would misreport it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
from sqlalchemy.engine import make_url

from hub.errors import ValidationError
from hub.events import AnyEvent, Event, InMemoryEventBus

log = logging.getLogger("preloop.events")

PAYLOAD_LIMIT = 8000  # bytes, PostgreSQL's limit for a NOTIFY payload (less one)
CHANNEL_PREFIX = "preloop_"
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def asyncpg_dsn(database_url: str) -> str:
    """The libpq-style DSN asyncpg takes, from a SQLAlchemy URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PostgresEventBus:
    """``hub.events.EventBus`` over PostgreSQL; open with :meth:`connect`, end with
    :meth:`close`."""

    def __init__(
        self, dsn: str, listener: asyncpg.Connection, publisher: asyncpg.Connection
    ) -> None:
        self._dsn = dsn
        self._listener = listener
        self._publisher = publisher
        self._closing = False
        self._relistening: asyncio.Task[None] | None = None
        self.reconnected = asyncio.Event()  # set each time the listener is back (for tests)
        listener.add_termination_listener(self._lost)
        self._local = InMemoryEventBus()
        self._listening: set[str] = set()
        self._listen_lock = asyncio.Lock()
        self._publish_lock = asyncio.Lock()  # one asyncpg connection runs one query at a time

    @classmethod
    async def connect(cls, database_url: str) -> PostgresEventBus:
        dsn = asyncpg_dsn(database_url)
        listener = await asyncpg.connect(dsn)
        try:
            publisher = await asyncpg.connect(dsn)
        except BaseException:
            await listener.close()
            raise
        return cls(dsn, listener, publisher)

    async def close(self) -> None:
        self._closing = True
        if self._relistening is not None:
            self._relistening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relistening
        try:
            await self._listener.close()
        finally:
            await self._publisher.close()

    async def publish(self, topic: str, event: Event) -> None:
        payload = _encoder.encode(event).decode()
        if len(payload.encode()) >= PAYLOAD_LIMIT:
            raise ValidationError(
                f"event {type(event).__name__} is {len(payload)} bytes, over PostgreSQL's "
                f"{PAYLOAD_LIMIT}-byte NOTIFY limit"
            )
        async with self._publish_lock:
            for attempt in (1, 2):
                try:
                    if self._publisher.is_closed():
                        self._publisher = await asyncpg.connect(self._dsn)
                    await self._publisher.execute(
                        "SELECT pg_notify($1, $2)", _channel(topic), payload
                    )
                    return
                except (
                    OSError,
                    asyncpg.InterfaceError,
                    asyncpg.PostgresConnectionError,
                    # a connection the server ended can leave asyncpg's protocol mid-operation
                    asyncpg.InternalClientError,
                ) as exc:
                    if attempt == 2:
                        log.warning("event %s not published: %s", type(event).__name__, exc)
                    elif not self._publisher.is_closed():
                        self._publisher.terminate()

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[Event]]:
        async with self._local.subscribe(topic) as events:
            await self._listen(topic)
            yield events

    async def _listen(self, topic: str) -> None:
        async with self._listen_lock:
            if topic in self._listening:
                return
            await self._listener.add_listener(_channel(topic), self._received)
            self._listening.add(topic)

    def _lost(self, _conn: Any) -> None:
        if self._closing:
            return
        log.warning("event bus: the listening connection was lost; reconnecting")
        self.reconnected.clear()
        self._relistening = asyncio.get_running_loop().create_task(self._relisten())

    async def _relisten(self) -> None:
        delay = 0.05
        while not self._closing:
            try:
                listener = await asyncpg.connect(self._dsn)
            except (
                OSError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
            ) as exc:
                log.warning("event bus: reconnecting failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            async with self._listen_lock:
                for topic in self._listening:
                    await listener.add_listener(_channel(topic), self._received)
                listener.add_termination_listener(self._lost)
                self._listener = listener
            self.reconnected.set()
            return

    def _received(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        try:
            event = _decoder.decode(payload)
        except msgspec.DecodeError as exc:
            log.warning("dropped an undecodable event on %s: %s", channel, exc)
            return
        topic = channel.removeprefix(CHANNEL_PREFIX)
        # InMemoryEventBus.publish never waits: it only puts into subscribers' queues.
        self._local.publish_nowait(topic, event)


def _channel(topic: str) -> str:
    return CHANNEL_PREFIX + topic
