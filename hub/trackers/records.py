"""The records of issue-tracker sync: what a tracker answers (``Remote*``), what Preloop keeps
of it (``Issue``, ``IssueComment``), and the bookkeeping of syncing (``SyncCursor``,
``WebhookDelivery``).

Identifiers are the tracker's own, as users write them:
- ``project``: GitHub ``owner/repo``, GitLab ``group/subgroup/project`` (its full path), Jira
  the project key (``PROJ``);
- ``number``: GitHub the issue's or pull request's number as text (``"12"``); GitLab the
  issue's ``iid`` (``"12"``) and a merge request's ``iid`` after ``!`` (``"!12"``: the two
  count separately, decision 0086); Jira the issue key (``"PROJ-12"``);
- ``Issue.key``: how people name one issue: ``owner/repo#12``, ``group/project#12`` (merge
  requests ``group/project!12``), ``PROJ-12``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec


class TrackerKind(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    JIRA = "jira"


class IssueKind(StrEnum):
    ISSUE = "issue"
    PULL_REQUEST = "pull_request"  # a GitHub pull request or a GitLab merge request


class Tracker(msgspec.Struct, frozen=True, kw_only=True):
    """A connected tracker. ``token_ref`` names its API token in custody (``local:NAME``,
    ``env:VAR``, ``vault:PATH#FIELD``); the token itself is never stored here, returned or
    logged. ``webhook_secret_ref`` likewise names the secret its webhooks are signed with.
    ``projects`` are the projects synced (empty: none yet). ``next_poll_at`` is when the
    background poll is next due; replicas claim a due poll by compare-and-set on it."""

    id: str
    account_id: str
    name: str
    kind: TrackerKind
    base_url: str  # https://api.github.com, https://gitlab.example.com, https://x.atlassian.net
    token_ref: str
    projects: tuple[str, ...] = ()
    webhook_secret_ref: str | None = None
    username: str | None = None  # Jira Cloud: the account e-mail the API token belongs to
    poll_seconds: int = 300  # 0: never polled in the background (webhooks and scans only)
    next_poll_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


# --- what a tracker answers ---------------------------------------------------------------
class ProjectInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A project as the tracker describes it (``test-connection``'s details)."""

    project: str
    name: str
    url: str = ""
    description: str = ""
    default_branch: str | None = None


class RemoteComment(msgspec.Struct, frozen=True, kw_only=True):
    external_id: str  # the tracker's id of the comment
    body: str
    author: str = ""
    created_at: datetime
    updated_at: datetime
    url: str = ""
    kind: str = "issue_comment"  # or "review_comment" (on a diff line)
    path: str | None = None
    line: int | None = None
    thread_id: str | None = None  # GitLab discussion id, GitHub review thread


class RemoteIssue(msgspec.Struct, frozen=True, kw_only=True):
    """An issue or a pull/merge request as the tracker answers it."""

    external_id: str  # the tracker's global id (GitHub ``id``, GitLab ``id``, Jira ``id``)
    number: str
    kind: IssueKind = IssueKind.ISSUE
    title: str
    body: str = ""
    state: str  # "open" / "closed" (GitHub, GitLab; "merged" for a merged PR), Jira's status
    labels: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    priority: str | None = None
    author: str = ""
    url: str = ""
    created_at: datetime
    updated_at: datetime
    # pull/merge requests: source_branch, target_branch, draft, merged, reviewers; Jira:
    # issue_type, status_category; whatever else a tool shows
    extra: dict[str, Any] = {}


class IssuePage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of issues updated since a cursor, oldest first. ``next_page`` is the token
    that fetches the next page (``None``: this was the last). ``not_modified``: the tracker
    answered 304 to the ETag sent (nothing changed, ``items`` is empty)."""

    items: tuple[RemoteIssue, ...] = ()
    next_page: str | None = None
    etag: str | None = None
    not_modified: bool = False


class RemotePullRequest(msgspec.Struct, frozen=True, kw_only=True):
    pull_request: RemoteIssue
    comments: tuple[RemoteComment, ...] = ()  # conversation and review comments
    diff: str | None = None  # the unified diff, when asked for


class IssueDraft(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    description: str = ""
    labels: tuple[str, ...] = ()
    assignee: str | None = None
    priority: str | None = None
    status: str | None = None
    issue_type: str | None = None  # Jira; "Task" when absent


class IssueChanges(msgspec.Struct, frozen=True, kw_only=True):
    """A partial update: ``None`` leaves a field as it is."""

    title: str | None = None
    description: str | None = None
    status: str | None = None  # "open"/"closed" (GitHub, GitLab), a Jira status name
    priority: str | None = None
    assignee: str | None = None
    labels: tuple[str, ...] | None = None


class PullRequestDraft(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    source_branch: str
    target_branch: str
    description: str = ""
    draft: bool = False
    assignees: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    milestone: str | None = None
    extra_options: dict[str, Any] = {}  # GitLab: squash, remove_source_branch, ...


class ReviewComment(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    line: int
    body: str
    side: str = "RIGHT"


class PullRequestChanges(msgspec.Struct, frozen=True, kw_only=True):
    """A partial update of a pull/merge request, and optionally a review."""

    title: str | None = None
    description: str | None = None
    state: str | None = None  # "open" / "closed"
    labels: tuple[str, ...] | None = None
    assignees: tuple[str, ...] | None = None
    reviewers: tuple[str, ...] | None = None
    draft: bool | None = None
    review_action: str | None = None  # "approve" / "request_changes" / "comment"
    review_body: str | None = None
    review_comments: tuple[ReviewComment, ...] = ()
    add_reaction: str | None = None
    remove_reaction: str | None = None


# --- what Preloop keeps -------------------------------------------------------------------
class Issue(msgspec.Struct, frozen=True, kw_only=True):
    """A synced issue or pull/merge request. Unique per (account, tracker, external_id).
    ``content_hash`` is the SHA-256 of what search and later embeddings read (title, body,
    state, labels), so unchanged content is not re-indexed. ``deleted``: a full scan no longer
    found it (kept, so links and audit entries still resolve)."""

    id: str
    account_id: str
    tracker_id: str
    project: str
    number: str
    key: str
    external_id: str
    kind: IssueKind = IssueKind.ISSUE
    title: str
    body: str = ""
    state: str
    labels: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    priority: str | None = None
    author: str = ""
    url: str = ""
    created_at: datetime  # at the tracker
    updated_at: datetime  # at the tracker
    synced_at: datetime  # when Preloop last wrote it
    deleted: bool = False
    content_hash: str = ""
    extra: dict[str, Any] = {}


class IssueComment(msgspec.Struct, frozen=True, kw_only=True):
    """A synced comment. Unique per (account, issue, external_id)."""

    id: str
    account_id: str
    tracker_id: str
    issue_id: str
    external_id: str
    body: str
    author: str = ""
    kind: str = "issue_comment"
    url: str = ""
    created_at: datetime
    updated_at: datetime
    synced_at: datetime
    deleted: bool = False


class IssueQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A search of the synced index. ``text``: words that must appear (any order, case-
    insensitive) in the title or body; results are ranked by how many query words match,
    then most recently updated. Every other field narrows; ``None`` does not."""

    text: str | None = None
    tracker_id: str | None = None
    project: str | None = None
    kind: IssueKind | None = None
    state: str | None = None
    labels: tuple[str, ...] = ()  # all of them
    assignee: str | None = None
    priority: str | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    include_deleted: bool = False
    limit: int = 10


class SyncCursor(msgspec.Struct, frozen=True, kw_only=True):
    """Where the sync of one project stands. ``updated_since``: the tracker's ``updated_at``
    of the last issue fully written (the next incremental sync asks from there); ``page`` and
    ``page_since``: the page an interrupted scan resumes from and the ``since`` it ran with;
    ``etag``: the first page's ETag (GitHub answers 304 when nothing changed)."""

    account_id: str
    tracker_id: str
    project: str
    updated_since: datetime | None = None
    etag: str | None = None
    page: str | None = None
    page_since: datetime | None = None
    full_scan_started_at: datetime | None = None  # set while a full scan runs
    last_full_scan_at: datetime | None = None
    last_sync_at: datetime | None = None
    last_error: str | None = None
    issues_synced: int = 0  # issues written by the last sync


class DeliveryState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # gave up after its attempts; kept for the operator


class WebhookDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """A verified webhook delivery in the durable inbox. Unique per (account, tracker,
    delivery_id): a replayed delivery is refused at insert. ``claimed_until`` is the lease of
    the process handling it; an expired lease makes it claimable again."""

    id: str
    account_id: str
    tracker_id: str
    delivery_id: str
    event: str
    payload: dict[str, Any]
    received_at: datetime
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    claimed_until: datetime | None = None
    processed_at: datetime | None = None
    error: str | None = None


def issue_key(kind: TrackerKind, project: str, number: str, issue_kind: IssueKind) -> str:
    """How people name an issue: ``owner/repo#12``, ``group/project!12`` (a merge request),
    ``PROJ-12`` (Jira's number is already its key)."""
    if kind is TrackerKind.JIRA:
        return number
    if kind is TrackerKind.GITLAB and number.startswith("!"):  # a merge request (0086)
        return f"{project}{number}"
    mark = "!" if kind is TrackerKind.GITLAB and issue_kind is IssueKind.PULL_REQUEST else "#"
    return f"{project}{mark}{number}"


def content_hash(issue: RemoteIssue) -> str:
    """SHA-256 of what search reads of an issue, to skip re-indexing unchanged content."""
    import hashlib

    text = msgspec.json.encode(
        [issue.title, issue.body, issue.state, sorted(issue.labels), sorted(issue.assignees)]
    )
    return hashlib.sha256(text).hexdigest()
