"""In-memory tracker storage: the fake unit tests plug in, held to the same contract suite as
the SQL stores. Every method runs without an ``await`` between its reads and writes, so on one
event loop each is atomic (what ``claim_poll`` and ``WebhookInbox.claim`` promise on SQL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import msgspec

from hub.errors import ConflictError, NotFoundError
from hub.search.duplicate_store import InMemoryDuplicatePairs
from hub.search.memory import InMemoryIssueVectors
from hub.store_rules import aware_utc, check_limit, stored_copy
from hub.trackers.records import (
    DeliveryState,
    Issue,
    IssueComment,
    IssueQuery,
    SyncCursor,
    Tracker,
    WebhookDelivery,
)
from hub.trackers.search import matches, rank

S = TypeVar("S", bound=msgspec.Struct)


_copy = stored_copy  # a private copy, as a database gives it back


def _no_check(account_id: str) -> None:
    return None


class InMemoryTrackerStore:
    def __init__(self, data: _Data) -> None:
        self._d = data

    async def add(self, tracker: Tracker) -> None:
        copy = _copy(tracker)
        self._d.require_account(tracker.account_id)
        if tracker.id in self._d.trackers or any(
            t.account_id == tracker.account_id and t.name == tracker.name
            for t in self._d.trackers.values()
        ):
            raise ConflictError(f"a tracker named {tracker.name!r} exists")
        self._d.trackers[copy.id] = copy

    async def get(self, account_id: str, tracker_id: str) -> Tracker | None:
        found = self._d.trackers.get(tracker_id)
        return found if found is not None and found.account_id == account_id else None

    async def get_by_name(self, account_id: str, name: str) -> Tracker | None:
        return next(
            (t for t in self._d.trackers.values() if t.account_id == account_id and t.name == name),
            None,
        )

    async def list(self, account_id: str) -> Sequence[Tracker]:
        mine = [t for t in self._d.trackers.values() if t.account_id == account_id]
        return sorted(mine, key=lambda t: (t.name, t.id))

    async def update(self, tracker: Tracker) -> None:
        copy = _copy(tracker)
        if await self.get(tracker.account_id, tracker.id) is None:
            raise NotFoundError(f"tracker {tracker.id!r} does not exist")
        clash = await self.get_by_name(tracker.account_id, tracker.name)
        if clash is not None and clash.id != tracker.id:
            raise ConflictError(f"a tracker named {tracker.name!r} exists")
        self._d.trackers[copy.id] = copy

    async def remove(self, account_id: str, tracker_id: str) -> None:
        if await self.get(account_id, tracker_id) is None:
            raise NotFoundError(f"tracker {tracker_id!r} does not exist")
        del self._d.trackers[tracker_id]
        gone = {i.id for i in self._d.issues.values() if i.tracker_id == tracker_id}
        self._d.issues = {k: v for k, v in self._d.issues.items() if k not in gone}
        self._d.comments = {k: v for k, v in self._d.comments.items() if v.issue_id not in gone}
        self._d.cursors = {k: v for k, v in self._d.cursors.items() if k[1] != tracker_id}
        self._d.inbox = {k: v for k, v in self._d.inbox.items() if v.tracker_id != tracker_id}

    async def due(self, now: datetime, limit: int = 100) -> Sequence[Tracker]:
        check_limit(limit)
        now = aware_utc(now, "now")
        due = [
            t
            for t in self._d.trackers.values()
            if t.poll_seconds > 0 and (t.next_poll_at is None or t.next_poll_at <= now)
        ]
        due.sort(key=lambda t: (t.next_poll_at is not None, t.next_poll_at or now, t.id))
        return due[:limit]

    async def claim_poll(
        self, account_id: str, tracker_id: str, due: datetime | None, next_at: datetime
    ) -> bool:
        next_at = aware_utc(next_at, "next_at")
        due = aware_utc(due, "due") if due is not None else None
        found = await self.get(account_id, tracker_id)
        if found is None or found.next_poll_at != due:
            return False
        self._d.trackers[tracker_id] = msgspec.structs.replace(found, next_poll_at=next_at)
        return True


class InMemoryIssueStore:
    def __init__(self, data: _Data) -> None:
        self._d = data

    async def upsert(self, issue: Issue) -> Issue:
        copy = _copy(issue)
        self._d.require_account(issue.account_id)
        self._d.require_tracker(issue.account_id, issue.tracker_id)
        existing = next(
            (
                i
                for i in self._d.issues.values()
                if (i.account_id, i.tracker_id, i.external_id)
                == (issue.account_id, issue.tracker_id, issue.external_id)
            ),
            None,
        )
        if existing is not None:
            copy = msgspec.structs.replace(copy, id=existing.id)
        elif copy.id in self._d.issues:
            raise ConflictError(f"an issue with id {copy.id!r} exists")
        self._d.issues[copy.id] = copy
        return copy

    async def get(self, account_id: str, issue_id: str) -> Issue | None:
        found = self._d.issues.get(issue_id)
        return found if found is not None and found.account_id == account_id else None

    async def get_by_number(
        self, account_id: str, tracker_id: str, project: str, number: str
    ) -> Issue | None:
        hits = [
            i
            for i in self._d.issues.values()
            if (i.account_id, i.tracker_id, i.project, i.number)
            == (account_id, tracker_id, project, number)
        ]
        return min(hits, key=lambda i: i.id) if hits else None

    async def find(self, account_id: str, key: str) -> Sequence[Issue]:
        hits = [
            i
            for i in self._d.issues.values()
            if i.account_id == account_id and (i.key == key or (i.url and i.url == key))
        ]
        return sorted(hits, key=lambda i: i.id)

    async def search(self, account_id: str, query: IssueQuery) -> Sequence[Issue]:
        check_limit(query.limit)
        for bound in (query.updated_after, query.updated_before):
            if bound is not None:
                aware_utc(bound, "updated_after/updated_before")
        mine = [
            i for i in self._d.issues.values() if i.account_id == account_id and matches(i, query)
        ]
        return rank(mine, query.text)[: query.limit]

    async def count(
        self, account_id: str, tracker_id: str, *, include_deleted: bool = False
    ) -> int:
        return sum(
            1
            for i in self._d.issues.values()
            if i.account_id == account_id
            and i.tracker_id == tracker_id
            and (include_deleted or not i.deleted)
        )

    async def mark_deleted(
        self, account_id: str, tracker_id: str, project: str, synced_before: datetime
    ) -> int:
        synced_before = aware_utc(synced_before, "synced_before")
        marked = 0
        for issue in list(self._d.issues.values()):
            if (
                (issue.account_id, issue.tracker_id, issue.project)
                == (account_id, tracker_id, project)
                and not issue.deleted
                and issue.synced_at < synced_before
            ):
                self._d.issues[issue.id] = msgspec.structs.replace(issue, deleted=True)
                marked += 1
        return marked

    async def write_synced(self, issue: Issue, comments: Sequence[IssueComment]) -> Issue:
        stored = await self.upsert(issue)  # no await below suspends: one step, as SQL's one
        listed = set()
        for comment in comments:
            await self.upsert_comment(msgspec.structs.replace(comment, issue_id=stored.id))
            listed.add(comment.external_id)
        for key, kept in list(self._d.comments.items()):
            if (
                kept.account_id == stored.account_id
                and kept.issue_id == stored.id
                and kept.external_id not in listed
                and not kept.deleted
            ):
                self._d.comments[key] = msgspec.structs.replace(
                    kept, deleted=True, synced_at=stored.synced_at
                )
        return stored

    async def upsert_comment(self, comment: IssueComment) -> IssueComment:
        copy = _copy(comment)
        if await self.get(comment.account_id, comment.issue_id) is None:
            raise NotFoundError(f"issue {comment.issue_id!r} does not exist")
        existing = next(
            (
                c
                for c in self._d.comments.values()
                if (c.account_id, c.issue_id, c.external_id)
                == (comment.account_id, comment.issue_id, comment.external_id)
            ),
            None,
        )
        if existing is not None:
            copy = msgspec.structs.replace(copy, id=existing.id)
        elif copy.id in self._d.comments:
            raise ConflictError(f"a comment with id {copy.id!r} exists")
        self._d.comments[copy.id] = copy
        return copy

    async def comments(self, account_id: str, issue_id: str) -> Sequence[IssueComment]:
        mine = [
            c
            for c in self._d.comments.values()
            if c.account_id == account_id and c.issue_id == issue_id and not c.deleted
        ]
        return sorted(mine, key=lambda c: (c.created_at, c.id))


class InMemorySyncCursorStore:
    def __init__(self, data: _Data) -> None:
        self._d = data

    async def get(self, account_id: str, tracker_id: str, project: str) -> SyncCursor | None:
        return self._d.cursors.get((account_id, tracker_id, project))

    async def put(self, cursor: SyncCursor) -> None:
        copy = _copy(cursor)
        self._d.require_tracker(cursor.account_id, cursor.tracker_id)
        self._d.cursors[(cursor.account_id, cursor.tracker_id, cursor.project)] = copy

    async def list(self, account_id: str, tracker_id: str | None = None) -> Sequence[SyncCursor]:
        mine = [
            c
            for (account, tracker, _), c in self._d.cursors.items()
            if account == account_id and (tracker_id is None or tracker == tracker_id)
        ]
        return sorted(mine, key=lambda c: (c.tracker_id, c.project))


class InMemoryWebhookInbox:
    def __init__(self, data: _Data) -> None:
        self._d = data

    async def add(self, delivery: WebhookDelivery) -> bool:
        copy = _copy(delivery)
        self._d.require_tracker(delivery.account_id, delivery.tracker_id)
        if any(
            (d.account_id, d.tracker_id, d.delivery_id)
            == (delivery.account_id, delivery.tracker_id, delivery.delivery_id)
            for d in self._d.inbox.values()
        ):
            return False
        if copy.id in self._d.inbox:
            raise ConflictError(f"an inbox row with id {copy.id!r} exists")
        self._d.inbox[copy.id] = copy
        return True

    async def claim(
        self, now: datetime, lease_until: datetime, limit: int = 10
    ) -> Sequence[WebhookDelivery]:
        check_limit(limit)
        now, lease_until = aware_utc(now, "now"), aware_utc(lease_until, "lease_until")
        ready = sorted(
            (
                d
                for d in self._d.inbox.values()
                if d.state is DeliveryState.PENDING
                and (d.claimed_until is None or d.claimed_until <= now)
            ),
            key=lambda d: (d.received_at, d.id),
        )[:limit]
        claimed = []
        for d in ready:
            leased = msgspec.structs.replace(d, claimed_until=lease_until, attempts=d.attempts + 1)
            self._d.inbox[d.id] = leased
            claimed.append(leased)
        return claimed

    async def finish(
        self,
        account_id: str,
        delivery_id: str,
        *,
        now: datetime,
        error: str | None = None,
        give_up: bool = False,
        retry_at: datetime | None = None,
    ) -> None:
        now = aware_utc(now, "now")
        retry_at = aware_utc(retry_at, "retry_at") if retry_at is not None else None
        found = await self.get(account_id, delivery_id)
        if found is None:
            raise NotFoundError(f"webhook delivery {delivery_id!r} does not exist")
        if error is None:
            done = msgspec.structs.replace(
                found, state=DeliveryState.DONE, processed_at=now, error=None
            )
        elif give_up:
            done = msgspec.structs.replace(
                found, state=DeliveryState.FAILED, processed_at=now, error=error
            )
        else:
            done = msgspec.structs.replace(
                found, error=error, claimed_until=retry_at or found.claimed_until
            )
        self._d.inbox[delivery_id] = done

    async def get(self, account_id: str, delivery_id: str) -> WebhookDelivery | None:
        found = self._d.inbox.get(delivery_id)
        return found if found is not None and found.account_id == account_id else None

    async def list(
        self, account_id: str, tracker_id: str | None = None, limit: int = 50
    ) -> Sequence[WebhookDelivery]:
        check_limit(limit)
        mine = [
            d
            for d in self._d.inbox.values()
            if d.account_id == account_id and (tracker_id is None or d.tracker_id == tracker_id)
        ]
        mine.sort(key=lambda d: d.id)
        mine.sort(key=lambda d: d.received_at, reverse=True)
        return mine[:limit]


class _Data:
    def __init__(self, require_account: Callable[[str], None]) -> None:
        self.require_account = require_account
        self.trackers: dict[str, Tracker] = {}
        self.issues: dict[str, Issue] = {}
        self.comments: dict[str, IssueComment] = {}
        self.cursors: dict[tuple[str, str, str], SyncCursor] = {}
        self.inbox: dict[str, WebhookDelivery] = {}

    def require_tracker(self, account_id: str, tracker_id: str) -> None:
        """``NotFoundError`` unless the account has that tracker (another account's tracker
        is refused as SQL's (account_id, tracker_id) foreign key refuses it)."""
        found = self.trackers.get(tracker_id)
        if found is None or found.account_id != account_id:
            raise NotFoundError(f"tracker {tracker_id!r} does not exist in account {account_id!r}")


class InMemoryTrackerStorage:
    """Every tracker store behind one object. ``require_account`` raises ``NotFoundError``
    for an account that does not exist (the hub's in-memory storage passes its own check)."""

    def __init__(self, require_account: Callable[[str], None] = _no_check) -> None:
        data = _Data(require_account)
        self.trackers = InMemoryTrackerStore(data)
        self.issues = InMemoryIssueStore(data)
        self.cursors = InMemorySyncCursorStore(data)
        self.inbox = InMemoryWebhookInbox(data)
        self.vectors = InMemoryIssueVectors(lambda: data.issues)  # issue 16's vector index
        self.duplicates = InMemoryDuplicatePairs(lambda: data.issues)  # pairs and verdicts


if TYPE_CHECKING:  # mypy proves the fake keeps the port's shape
    from hub.trackers.ports import TrackerStorage

    _storage: TrackerStorage = InMemoryTrackerStorage()
