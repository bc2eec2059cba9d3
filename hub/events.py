"""Past-tense events and the event-bus port that carries them between parts of Preloop.

``InMemoryEventBus`` serves one process. Several server replicas and bot workers sharing a
database need a bus that crosses processes (PostgreSQL LISTEN/NOTIFY); it implements the same
port. Subscribers get every event published after they subscribed, in order; a slow subscriber
never blocks a publisher (its queue is unbounded, and it is dropped when it unsubscribes).

Topics: ``approvals`` (the approval state machine's events, hub/approvals.py) and ``system``
(what an operator watches about Preloop itself: upstream state, policy applies, blocked tools,
failed notifications, replicas starting and stopping; hub/system_events.py and
server/system_events.py publish them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Protocol

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event: which account and when."""

    account_id: str
    at: datetime


class ApprovalRequested(Event, frozen=True, kw_only=True, tag="approval.requested"):
    request_id: str
    tool: str
    server: str
    workflow: str


class ApprovalVoted(Event, frozen=True, kw_only=True, tag="approval.voted"):
    request_id: str
    approver: str  # the person (see ApprovalVote)
    choice: str
    approvals: int
    required: int
    approver_name: str = ""
    via: str = ""


class ApprovalEscalated(Event, frozen=True, kw_only=True, tag="approval.escalated"):
    """Nobody decided in time: the escalation approvers (``added``) may decide too now."""

    request_id: str
    workflow: str
    added: tuple[str, ...]


class ApprovalAiEscalated(Event, frozen=True, kw_only=True, tag="approval.ai_escalated"):
    """The AI reviewer of an ``ai`` workflow did not decide (uncertain, below its threshold,
    or the model could not be asked) and its fallback is ``escalate``: the workflow's human
    approvers are notified on its channels now (hub/ai_approval.py)."""

    request_id: str
    workflow: str
    why: str


class ApprovalDecided(Event, frozen=True, kw_only=True, tag="approval.decided"):
    request_id: str
    status: str  # approved | denied | expired | cancelled
    decided_by: str | None
    comment: str | None
    decided_by_name: str | None = None
    decided_via: str | None = None


# -- the system topic: what a dashboard or on-call engineer needs to know about Preloop itself.
APPROVALS_TOPIC = "approvals"
SYSTEM_TOPIC = "system"


class SystemEvent(Event, frozen=True, kw_only=True):
    """Base of the events on the ``system`` topic (never published itself)."""


class UpstreamStateChanged(SystemEvent, frozen=True, kw_only=True, tag="upstream.state_changed"):
    """An upstream MCP server's session changed state on one replica: ``ready`` (connected,
    or back), ``connecting`` (the session ended and it reconnects at once), ``failed`` (an
    attempt failed; the next one is in ``retry_in`` seconds) or ``stopped``."""

    server: str
    state: str
    previous_state: str
    error: str | None  # why the session or attempt ended (for ``ready``: what it recovered from)
    restarts: int
    retry_in: float | None = None
    replica: str


class PolicyApplied(SystemEvent, frozen=True, kw_only=True, tag="policy.applied"):
    """A new policy version became the account's policy."""

    version: int
    previous_version: int | None
    name: str
    actor: str
    comment: str


class PolicyRolledBack(PolicyApplied, frozen=True, kw_only=True, tag="policy.rolled_back"):
    """An earlier version's content was applied again, as the new ``version``."""

    rolled_back_to: int


class ToolBlocked(SystemEvent, frozen=True, kw_only=True, tag="tool.blocked"):
    """A pinned tool's definition changed upstream: calls are refused until it is accepted."""

    server: str
    tool: str
    pinned_hash: str
    hash: str


class NotificationFailed(SystemEvent, frozen=True, kw_only=True, tag="notification.failed"):
    """A channel could not deliver (or update) an approval's notification."""

    request_id: str
    channel: str
    operation: str
    attempt: int
    attempts: int
    final: bool  # no attempt follows
    error: str


class ServerStarted(SystemEvent, frozen=True, kw_only=True, tag="server.started"):
    """A server replica started serving."""

    replica: str  # "<hostname>:<pid>"
    hostname: str
    pid: int
    version: str


class ServerStopping(SystemEvent, frozen=True, kw_only=True, tag="server.stopping"):
    """A server replica is shutting down (its sockets close with 1001 or 1012)."""

    replica: str
    hostname: str
    pid: int
    version: str


class BudgetCrossed(SystemEvent, frozen=True, kw_only=True, tag="budget.soft_crossed"):
    """A gateway budget passed its soft limit (once per budget and period). Amounts are
    decimal strings of US dollars; ``resets_at`` is ``None`` for a budget that never resets."""

    budget_id: str
    budget: str
    scope: str
    scope_id: str
    period: str
    spent: str
    soft_limit: str
    hard_limit: str | None
    on_soft: str
    resets_at: datetime | None


class TrackersChanged(SystemEvent, frozen=True, kw_only=True, tag="tracker.changed"):
    """An issue tracker was connected (``change`` ``added``) or removed (``removed``): which
    built-in tools the account's agents are listed may change (decision 0091)."""

    tracker: str
    change: str


SYSTEM_EVENTS = (
    UpstreamStateChanged,
    PolicyApplied,
    PolicyRolledBack,
    ToolBlocked,
    NotificationFailed,
    ServerStarted,
    ServerStopping,
    BudgetCrossed,
    TrackersChanged,
)

# Every concrete event, for decoding events that crossed a process boundary.
AnyEvent = (
    ApprovalRequested
    | ApprovalVoted
    | ApprovalEscalated
    | ApprovalDecided
    | ApprovalAiEscalated
    | UpstreamStateChanged
    | PolicyApplied
    | PolicyRolledBack
    | ToolBlocked
    | NotificationFailed
    | ServerStarted
    | ServerStopping
    | BudgetCrossed
    | TrackersChanged
)


class EventBus(Protocol):
    async def publish(self, topic: str, event: Event) -> None: ...

    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[AsyncIterator[Event]]:
        """``async with bus.subscribe("approvals") as events: async for event in events``."""
        ...


class InMemoryEventBus:
    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[Event]]] = {}

    async def publish(self, topic: str, event: Event) -> None:
        self.publish_nowait(topic, event)

    def publish_nowait(self, topic: str, event: Event) -> None:
        """Deliver to this process's subscribers (for a bus that receives from elsewhere)."""
        for queue in tuple(self._queues.get(topic, ())):
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._queues.setdefault(topic, set()).add(queue)
        try:
            yield _drain(queue)
        finally:
            self._queues[topic].discard(queue)


async def _drain(queue: asyncio.Queue[Event]) -> AsyncIterator[Event]:
    while True:
        yield await queue.get()


def event_data(event: Event) -> dict[str, Any]:
    """An event as plain JSON-ready data (for WebSocket and audit)."""
    data: dict[str, Any] = msgspec.to_builtins(event)
    return data
