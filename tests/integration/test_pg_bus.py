"""The PostgreSQL event bus: two buses on one database stand for two server replicas."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.clock import SystemClock
from hub.errors import ValidationError
from hub.events import (
    APPROVALS_TOPIC,
    SYSTEM_TOPIC,
    ApprovalDecided,
    ApprovalRequested,
    Event,
    NotificationFailed,
    PolicyApplied,
    PolicyRolledBack,
    ServerStarted,
    ServerStopping,
    ToolBlocked,
    UpstreamStateChanged,
)
from hub.records import ApprovalStatus
from server.bootstrap import open_event_bus
from server.db import SqlStorage, make_engine
from server.db.pg_bus import PostgresEventBus, asyncpg_dsn
from tests.contract.records import approval, at, new_account


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[tuple[PostgresEventBus, PostgresEventBus]]:
    first = await PostgresEventBus.connect(postgres_url)
    second = await PostgresEventBus.connect(postgres_url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


class SignallingBus(PostgresEventBus):
    """The PostgreSQL bus, telling the test once somebody listens."""

    subscribed: asyncio.Event

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[Event]]:
        async with super().subscribe(topic) as events:
            self.subscribed.set()
            yield events


def requested(n: int) -> ApprovalRequested:
    return ApprovalRequested(
        account_id="acc",
        at=at(n),
        request_id=f"apr_{n}",
        tool="bash",
        server="shell",
        workflow="wf",
    )


async def test_events_reach_every_replica_in_order(
    replicas: tuple[PostgresEventBus, PostgresEventBus],
) -> None:
    first, second = replicas
    sent = [requested(n) for n in range(5)]
    async with (
        first.subscribe(APPROVALS_TOPIC) as here,
        second.subscribe(APPROVALS_TOPIC) as there,
        second.subscribe("other") as elsewhere,
    ):
        for event in sent:
            await first.publish(APPROVALS_TOPIC, event)
        async with asyncio.timeout(10):
            assert [await anext(there) for _ in sent] == sent
            assert [await anext(here) for _ in sent] == sent
        await first.publish("other", sent[0])
        async with asyncio.timeout(10):
            assert await anext(elsewhere) == sent[0]


async def test_every_system_event_reaches_the_other_replica(
    replicas: tuple[PostgresEventBus, PostgresEventBus],
) -> None:
    first, second = replicas
    base = {"account_id": "acc", "at": at(1)}
    policy = {**base, "version": 3, "previous_version": 2, "name": "p", "actor": "k", "comment": ""}
    server = {**base, "replica": "host-a:12", "hostname": "host-a", "pid": 12, "version": "1.0"}
    sent: list[Event] = [
        UpstreamStateChanged(
            **base,
            server="demo",
            state="failed",
            previous_state="ready",
            error="exited with code 3",
            restarts=2,
            retry_in=1.0,
            replica="host-a:12",
        ),
        PolicyApplied(**policy),
        PolicyRolledBack(**policy, rolled_back_to=1),
        ToolBlocked(**base, server="demo", tool="echo", pinned_hash="a", hash="b"),
        NotificationFailed(
            **base,
            request_id="apr_1",
            channel="email",
            operation="deliver",
            attempt=1,
            attempts=3,
            final=False,
            error="SMTPServerDisconnected",
        ),
        ServerStarted(**server),
        ServerStopping(**server),
    ]
    async with second.subscribe(SYSTEM_TOPIC) as there:
        for event in sent:
            await first.publish(SYSTEM_TOPIC, event)
        async with asyncio.timeout(10):
            assert [await anext(there) for _ in sent] == sent


async def test_an_event_over_the_notify_limit_is_refused(
    replicas: tuple[PostgresEventBus, PostgresEventBus],
) -> None:
    first, _ = replicas
    huge = ApprovalDecided(
        account_id="acc",
        at=at(0),
        request_id="apr_1",
        status="denied",
        decided_by="x",
        comment="x" * 9000,
    )
    with pytest.raises(ValidationError, match="8000-byte NOTIFY limit"):
        await first.publish(APPROVALS_TOPIC, huge)


async def test_a_wait_on_one_replica_wakes_on_a_decision_on_the_other(postgres_url: str) -> None:
    clock = SystemClock()
    stores = [SqlStorage(make_engine(postgres_url)) for _ in range(2)]
    buses = [await SignallingBus.connect(postgres_url) for _ in range(2)]
    waiter_bus = buses[0]
    assert isinstance(waiter_bus, SignallingBus)
    waiter_bus.subscribed = asyncio.Event()
    try:
        a, b = (
            ApprovalService(store, clock, Auditor(store.audit, clock), bus)
            for store, bus in zip(stores, buses, strict=True)
        )
        account_id = await new_account(stores[0])
        request = approval(account_id, created_at=clock.now())
        await stores[0].approvals.add(request)

        waiting = asyncio.create_task(a.wait(account_id, request.id))
        async with asyncio.timeout(10):
            await waiter_bus.subscribed.wait()  # listening on PostgreSQL from here on
        await b.cancel(account_id, request.id, actor="replica-b", reason="withdrawn")
        async with asyncio.timeout(10):
            done = await waiting
        assert (done.status, done.decided_by) == (ApprovalStatus.CANCELLED, "replica-b")
    finally:
        for bus in buses:
            await bus.close()
        for store in stores:
            await store.close()


async def test_the_bus_follows_the_database(postgres_url: str, sqlite_url: str) -> None:
    on_postgres = await open_event_bus(postgres_url)
    assert isinstance(on_postgres, PostgresEventBus)
    await on_postgres.close()
    assert not isinstance(await open_event_bus(sqlite_url), PostgresEventBus)


async def _terminate(postgres_url: str, connection: object) -> None:
    """Ends a bus connection from the server side, as a restart or a network cut would."""
    pid = connection.get_server_pid()  # type: ignore[attr-defined]
    admin = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_lost_connections_are_reopened(
    postgres_url: str, replicas: tuple[PostgresEventBus, PostgresEventBus]
) -> None:
    first, second = replicas
    async with second.subscribe(APPROVALS_TOPIC) as there:
        await _terminate(postgres_url, second._listener)
        async with asyncio.timeout(10):
            await second.reconnected.wait()
        await _terminate(postgres_url, first._publisher)
        await first.publish(APPROVALS_TOPIC, requested(1))  # retried on a new connection
        async with asyncio.timeout(10):
            assert await anext(there) == requested(1)
