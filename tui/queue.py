"""The approvals queue as plain data: REST records and WebSocket events in, table rows out.

Kept free of Textual so its rules are unit-tested directly: newest first; a request decided
elsewhere stays in the queue, marked with its outcome and who decided, until the next reload
(so the person looking at it sees why it stopped being actionable); quorum progress comes
from the votes (or from an ``approval.voted`` event's counts, which are the server's own).

Events and REST answers race: a fetch started before a decision may answer after the
``approval.decided`` event arrived. A decision is final, so an outcome once known is never
replaced by an older ``pending`` record, and quorum progress never goes backwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from hub.events import ApprovalDecided, ApprovalEscalated, ApprovalRequested, ApprovalVoted
from hub.records import ApprovalStatus
from hub.wire import ApprovalRequestView, ApprovalVoteView


@dataclass
class Item:
    request: ApprovalRequestView
    votes: list[ApprovalVoteView] = field(default_factory=list)
    approvals: int = 0  # approve votes so far (quorum progress)
    detailed: bool = False  # votes are known (the request was fetched with them)

    @property
    def pending(self) -> bool:
        return self.request.status == ApprovalStatus.PENDING


class ApprovalQueue:
    def __init__(self) -> None:
        self._items: dict[str, Item] = {}
        self._outcomes: dict[str, ApprovalDecided] = {}  # decided before we had the record

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._items

    def get(self, request_id: str) -> Item | None:
        return self._items.get(request_id)

    def items(self) -> list[Item]:
        """Newest first (ties broken by id, so the order is stable)."""
        return sorted(
            self._items.values(),
            key=lambda item: (item.request.created_at, item.request.id),
            reverse=True,
        )

    def load(self, pending: list[ApprovalRequestView]) -> list[str]:
        """Replace the pending requests with ``pending`` (a fresh REST list). Decided items
        are dropped. Returns the ids that were pending here but are not any more: decided
        while we were not looking, to be fetched so they can be marked."""
        fresh = {request.id for request in pending}
        vanished = [rid for rid, item in self._items.items() if item.pending and rid not in fresh]
        old, self._items = self._items, {rid: self._items[rid] for rid in vanished}
        for request in pending:
            item = old.get(request.id)
            if item is None:
                item = Item(request=request)
            elif item.pending:
                item.request = request
            self._items[request.id] = item  # (a list older than a known decision keeps it)
        self._outcomes.clear()
        return vanished

    def put(
        self, request: ApprovalRequestView, votes: list[ApprovalVoteView] | None = None
    ) -> None:
        """Add or refresh one request (with its votes, when they were fetched)."""
        item = self._items.get(request.id)
        if item is None:
            item = Item(request=request)
        elif not item.pending and request.status == ApprovalStatus.PENDING:
            request = item.request  # an answer older than the decision we know of
        early = self._outcomes.pop(request.id, None)
        if early is not None and request.status == ApprovalStatus.PENDING:
            request = _with_outcome(request, early)
        item.request = request
        if votes is not None:
            counted = sum(1 for vote in votes if vote.choice == "approve")
            item.approvals = max(item.approvals, counted)
            item.votes = list(votes)
            item.detailed = True
        self._items[request.id] = item

    def apply(self, event: object) -> str | None:
        """Fold one feed event in; returns a request id to fetch (its full record), if any."""
        if isinstance(event, ApprovalRequested):
            return event.request_id
        if isinstance(event, ApprovalVoted):
            item = self._items.get(event.request_id)
            if item is None:
                return event.request_id
            item.approvals = max(item.approvals, event.approvals)
            return event.request_id  # for the voters' names
        if isinstance(event, ApprovalEscalated):
            return event.request_id if event.request_id in self._items else None
        if isinstance(event, ApprovalDecided):
            item = self._items.get(event.request_id)
            if item is None:
                self._outcomes[event.request_id] = event
                return None
            item.request = _with_outcome(item.request, event)
        return None


def _with_outcome(request: ApprovalRequestView, event: ApprovalDecided) -> ApprovalRequestView:
    return msgspec.structs.replace(
        request,
        status=ApprovalStatus(event.status),
        decided_by=event.decided_by,
        decided_by_name=event.decided_by_name,
        decided_via=event.decided_via,
        decided_at=event.at,
        comment=event.comment,
    )


def countdown(expires_at: datetime | None, now: datetime) -> str:
    """Time left, as people read it at a glance: ``4m05s``, ``1h02m``, ``expired``."""
    if expires_at is None:
        return "no limit"
    left = int((expires_at - now).total_seconds())
    if left <= 0:
        return "expired"
    hours, rest = divmod(left, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def outcome(item: Item) -> str:
    """The status cell: pending, or what happened and who did it."""
    request = item.request
    if item.pending:
        return "pending"
    decider = request.decided_by_name or request.decided_by
    who = f" by {decider}" if decider else ""
    return f"{request.status.value}{who}"


def quorum(item: Item) -> str:
    return f"{item.approvals}/{item.request.required_approvals}"
