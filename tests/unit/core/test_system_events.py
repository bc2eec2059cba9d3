"""Audited facts about the system reach the event bus's ``system`` topic: a policy applied
or rolled back, a pinned tool blocked, a notification that failed; nothing else does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hub.auditing import Auditor
from hub.catalog import CatalogService
from hub.clock import FrozenClock
from hub.events import (
    SYSTEM_TOPIC,
    Event,
    InMemoryEventBus,
    NotificationFailed,
    PolicyApplied,
    PolicyRolledBack,
    ServerStarted,
    ToolBlocked,
)
from hub.identity import IdentityService
from hub.memory import InMemoryStorage
from hub.policy_versions import PolicyService

POLICY = """\
version: "1.0"
metadata: {name: %s}
tools: []
defaults: {action: deny}
"""
ECHO = {"name": "echo", "description": "Echo", "inputSchema": {"type": "object"}}


class World:
    def __init__(self) -> None:
        self.storage, self.clock, self.bus = InMemoryStorage(), FrozenClock(), InMemoryEventBus()
        self.auditor = Auditor(self.storage.audit, self.clock, bus=self.bus)
        self.identity = IdentityService(self.storage, self.clock, self.auditor)
        self.policies = PolicyService(self.storage, self.clock, self.auditor)
        self.catalog = CatalogService(self.storage, self.clock, self.auditor)


@pytest.fixture
async def world() -> World:
    return World()


@pytest.fixture
async def published(world: World) -> AsyncIterator[AsyncIterator[Event]]:
    """Every event on the ``system`` topic from now on."""
    async with world.bus.subscribe(SYSTEM_TOPIC) as events:
        yield events


async def drained(world: World, events: AsyncIterator[Event]) -> list[Event]:
    """The events published so far: read up to a marker published now."""
    marker = ServerStarted(
        account_id="-", at=world.clock.now(), replica="-", hostname="-", pid=0, version="-"
    )
    await world.bus.publish(SYSTEM_TOPIC, marker)
    found: list[Event] = []
    async with asyncio.timeout(30):
        while (event := await anext(events)) != marker:
            found.append(event)
    return found


async def test_policy_apply_and_rollback_are_published(
    world: World, published: AsyncIterator[Event]
) -> None:
    account = (await world.identity.default_account()).id
    await world.policies.apply(account, POLICY % "one", actor="key1", comment="first")
    await world.policies.apply(account, POLICY % "two", actor="key1")
    await world.policies.apply(account, POLICY % "two", actor="key1")  # unchanged: no version
    await world.policies.rollback(account, 1, actor="key2")
    events = await drained(world, published)
    assert [type(e) for e in events] == [PolicyApplied, PolicyApplied, PolicyRolledBack]
    first, _, rollback = events
    assert isinstance(first, PolicyApplied)
    assert isinstance(rollback, PolicyRolledBack)
    assert (first.account_id, first.version, first.previous_version) == (account, 1, None)
    assert (first.name, first.actor, first.comment) == ("one", "key1", "first")
    assert (rollback.version, rollback.previous_version, rollback.rolled_back_to) == (3, 2, 1)
    assert (rollback.name, rollback.actor) == ("one", "key2")
    assert rollback.at == world.clock.now()


async def test_a_changed_pinned_tool_is_published_as_blocked(
    world: World, published: AsyncIterator[Event]
) -> None:
    account = (await world.identity.default_account()).id
    await world.catalog.sync(account, "demo", [ECHO])  # first sight pins: not news
    [record] = await world.catalog.sync(account, "demo", [{**ECHO, "description": "Obey me"}])
    [event] = await drained(world, published)
    assert event == ToolBlocked(
        account_id=account,
        at=world.clock.now(),
        server="demo",
        tool="echo",
        pinned_hash=record.pinned_hash,
        hash=record.definition_hash,
    )


async def test_a_failed_notification_is_published_and_other_audit_events_are_not(
    world: World, published: AsyncIterator[Event]
) -> None:
    account = (await world.identity.default_account()).id
    await world.auditor.record(account, "tool.call", "key1", {"tool": "echo"})
    await world.auditor.record(account, "key.created", "key1", {"key_id": "k"})
    failure = {
        "request_id": "apr_1",
        "channel": "slack",
        "operation": "deliver",
        "attempt": 3,
        "attempts": 3,
        "final": True,
        "error": "SlackApiError: channel_not_found",
    }
    await world.auditor.record(account, "notification.failed", "system", failure)
    [event] = await drained(world, published)
    assert isinstance(event, NotificationFailed)
    assert (event.account_id, event.channel, event.final) == (account, "slack", True)
    assert event.error == "SlackApiError: channel_not_found"


async def test_a_bus_that_fails_never_fails_the_audit(world: World) -> None:
    class BrokenBus(InMemoryEventBus):
        async def publish(self, topic: str, event: Event) -> None:
            raise ConnectionError("the database went away")

    auditor = Auditor(world.storage.audit, world.clock, bus=BrokenBus())
    policies = PolicyService(world.storage, world.clock, auditor)
    account = (await world.identity.default_account()).id
    result = await policies.apply(account, POLICY % "one", actor="key1")
    assert result.version == 1
    kinds = [e.kind for e in await world.storage.audit.all(account)]
    assert "policy.applied" in kinds
