"""The ports of issue-tracker sync.

- ``TrackerClient``: one tracker's REST API, its token already bound. The adapters in
  ``server/trackers/`` (GitHub, GitLab, Jira on httpx) implement it; ``TrackerClients`` builds
  one for a ``Tracker`` record, resolving its token through custody.
- ``TrackerStorage``: where synced data lives (trackers, issues and comments, sync cursors,
  the webhook inbox). ``InMemoryTrackerStorage`` (hub/trackers/memory.py) and the SQL stores
  implement it; one contract suite runs on all.

Rules every store keeps, as hub/ports.py states them for the other stores: every method is
scoped by ``account_id``; ``add`` of a duplicate raises ``ConflictError``; a missing record on
an update raises ``NotFoundError``; ``get`` returns ``None`` when absent; datetimes come back
timezone-aware in UTC (naive ones are refused with ``ValidationError``); lists come back in the
documented order, ties broken by id; a negative ``limit`` is a ``ValidationError``.

Every ``TrackerClient`` method raises ``TrackerError`` (hub/errors.py) for what the tracker
refused or could not answer, with a message naming the tracker, the project and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from hub.search.ports import IssueVectorStore
from hub.trackers.records import (
    Issue,
    IssueChanges,
    IssueComment,
    IssueDraft,
    IssuePage,
    IssueQuery,
    ProjectInfo,
    PullRequestChanges,
    PullRequestDraft,
    RemoteComment,
    RemoteIssue,
    RemotePullRequest,
    SyncCursor,
    Tracker,
    TrackerKind,
    WebhookDelivery,
)


class TrackerClient(Protocol):
    """One tracker's API. ``project`` and ``number`` are the tracker's own identifiers (see
    hub/trackers/records.py)."""

    @property
    def kind(self) -> TrackerKind: ...

    async def test_connection(self, project: str) -> ProjectInfo:
        """The project, if the token can read it."""
        ...

    async def issues_since(
        self,
        project: str,
        since: datetime | None,
        *,
        page: str | None = None,
        etag: str | None = None,
    ) -> IssuePage:
        """Issues and pull/merge requests updated at or after ``since`` (all when ``None``),
        oldest first, one page at a time; ``page`` continues from a previous page's
        ``next_page``; ``etag`` (first page only) lets the tracker answer "not modified"."""
        ...

    async def get_issue(self, project: str, number: str) -> RemoteIssue: ...

    async def comments(self, project: str, number: str) -> Sequence[RemoteComment]:
        """Every comment of an issue or pull/merge request, oldest first."""
        ...

    async def create_issue(self, project: str, draft: IssueDraft) -> RemoteIssue: ...

    async def update_issue(
        self, project: str, number: str, changes: IssueChanges
    ) -> RemoteIssue: ...

    async def add_comment(
        self,
        project: str,
        number: str,
        body: str,
        *,
        path: str | None = None,
        line: int | None = None,
        side: str = "RIGHT",
        in_reply_to: str | None = None,
    ) -> RemoteComment:
        """A comment on an issue or pull/merge request; with ``path`` and ``line`` a review
        comment on that line of a pull/merge request's diff."""
        ...

    async def update_comment(
        self,
        project: str,
        number: str,
        comment_id: str,
        *,
        body: str | None = None,
        resolved: bool | None = None,
        thread_id: str | None = None,
        comment_type: str = "issue_comment",
    ) -> RemoteComment: ...

    async def get_pull_request(
        self, project: str, number: str, *, include_comments: bool = True, include_diff: bool = True
    ) -> RemotePullRequest: ...

    async def create_pull_request(self, project: str, draft: PullRequestDraft) -> RemoteIssue: ...

    async def update_pull_request(
        self, project: str, number: str, changes: PullRequestChanges
    ) -> RemoteIssue: ...

    async def close(self) -> None: ...


class TrackerClients(Protocol):
    """Builds the client of a connected tracker (its token resolved through custody)."""

    async def client(self, tracker: Tracker) -> TrackerClient: ...


# --- storage --------------------------------------------------------------------------------
class TrackerStore(Protocol):
    async def add(self, tracker: Tracker) -> None:
        """``ConflictError`` when the account already has a tracker of that name."""
        ...

    async def get(self, account_id: str, tracker_id: str) -> Tracker | None: ...
    async def get_by_name(self, account_id: str, name: str) -> Tracker | None: ...

    async def list(self, account_id: str) -> Sequence[Tracker]:
        """The account's trackers, by name."""
        ...

    async def update(self, tracker: Tracker) -> None:
        """Replace the record with that id (``NotFoundError`` when absent)."""
        ...

    async def remove(self, account_id: str, tracker_id: str) -> None:
        """Remove the tracker and everything synced from it (issues, comments, cursors,
        inbox rows). ``NotFoundError`` when absent."""
        ...

    async def due(self, now: datetime, limit: int = 100) -> Sequence[Tracker]:
        """Trackers of every account whose background poll is due (``poll_seconds > 0`` and
        ``next_poll_at`` unset or at or before ``now``), most overdue first."""
        ...

    async def claim_poll(
        self, account_id: str, tracker_id: str, due: datetime | None, next_at: datetime
    ) -> bool:
        """Move ``next_poll_at`` from ``due`` (what the caller read) to ``next_at``, atomically:
        ``True`` for exactly one of several replicas claiming the same due poll."""
        ...


class IssueStore(Protocol):
    async def upsert(self, issue: Issue) -> Issue:
        """Insert, or update the row with the same (account, tracker, external_id), keeping
        its ``id``; answers the stored record. Idempotent: writing the same issue twice leaves
        one row."""
        ...

    async def get(self, account_id: str, issue_id: str) -> Issue | None: ...

    async def get_by_number(
        self, account_id: str, tracker_id: str, project: str, number: str
    ) -> Issue | None: ...

    async def find(self, account_id: str, key: str) -> Sequence[Issue]:
        """Issues whose ``key`` (``owner/repo#12``, ``PROJ-12``) or ``url`` is ``key``,
        across the account's trackers, by id."""
        ...

    async def search(self, account_id: str, query: IssueQuery) -> Sequence[Issue]:
        """See ``IssueQuery``: ranked by matching query words, then ``updated_at`` newest
        first, then id."""
        ...

    async def count(
        self, account_id: str, tracker_id: str, *, include_deleted: bool = False
    ) -> int: ...

    async def mark_deleted(
        self, account_id: str, tracker_id: str, project: str, synced_before: datetime
    ) -> int:
        """After a full scan that started at ``synced_before``: every issue of the project not
        written since then is marked ``deleted``; answers how many were."""
        ...

    async def write_synced(self, issue: Issue, comments: Sequence[IssueComment]) -> Issue:
        """What a sync writes of one issue, in one transaction: ``issue`` as by ``upsert``,
        then each of ``comments`` as by ``upsert_comment`` (under the stored issue's id,
        whatever their ``issue_id``); the issue's other stored comments (the tracker no longer
        lists them) are marked ``deleted``. Answers the stored issue."""
        ...

    async def upsert_comment(self, comment: IssueComment) -> IssueComment:
        """Insert, or update the row with the same (account, issue, external_id)."""
        ...

    async def comments(self, account_id: str, issue_id: str) -> Sequence[IssueComment]:
        """The issue's comments, oldest first (``created_at``, then id), deleted ones left out."""
        ...


class SyncCursorStore(Protocol):
    async def get(self, account_id: str, tracker_id: str, project: str) -> SyncCursor | None: ...
    async def put(self, cursor: SyncCursor) -> None:
        """Insert or replace the cursor of (account, tracker, project)."""
        ...

    async def list(self, account_id: str, tracker_id: str | None = None) -> Sequence[SyncCursor]:
        """By tracker id, then project."""
        ...


class WebhookInbox(Protocol):
    async def add(self, delivery: WebhookDelivery) -> bool:
        """Store a verified delivery; ``False`` (and nothing changes) when the same
        (account, tracker, delivery_id) was stored before: a replay."""
        ...

    async def claim(
        self, now: datetime, lease_until: datetime, limit: int = 10
    ) -> Sequence[WebhookDelivery]:
        """Pending deliveries of every account whose lease is unset or expired, oldest first,
        each leased until ``lease_until`` and its ``attempts`` counted: a delivery is claimed
        by one process at a time."""
        ...

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
        """Done (``error`` None), or failed: with ``give_up`` it stays ``failed``, otherwise it
        is pending again once its lease ends, or at ``retry_at`` when given (the lease moves
        there). ``delivery_id`` is the inbox row's ``id``."""
        ...

    async def get(self, account_id: str, delivery_id: str) -> WebhookDelivery | None:
        """By the inbox row's ``id``."""
        ...

    async def list(
        self, account_id: str, tracker_id: str | None = None, limit: int = 50
    ) -> Sequence[WebhookDelivery]:
        """Newest first."""
        ...


class TrackerStorage(Protocol):
    @property
    def trackers(self) -> TrackerStore: ...
    @property
    def issues(self) -> IssueStore: ...
    @property
    def cursors(self) -> SyncCursorStore: ...
    @property
    def inbox(self) -> WebhookInbox: ...
    @property
    def vectors(self) -> IssueVectorStore:
        """The vector index of these issues (hub/search/ports.py); removing an issue or a
        tracker removes its vectors."""
        ...
