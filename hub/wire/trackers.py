"""Issue trackers, their sync and their issues as the REST API answers them.

Never a token: a tracker shows the custody *reference* of its token and of its webhook
secret; the secret made for a tracker's webhooks is in ``TrackerCreated`` once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class TrackerView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    kind: str  # github | gitlab | jira
    base_url: str
    token_ref: str
    projects: list[str]
    webhook_secret_ref: str | None
    webhook_url: str  # where the tracker sends its webhooks (POST)
    username: str | None
    poll_seconds: int
    next_poll_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TrackerCreated(msgspec.Struct, frozen=True, kw_only=True):
    """``webhook_secret``: the secret made for the tracker's webhooks, shown in this answer
    only (null when a ``webhook_secret_ref`` was named or custody keeps no local secrets)."""

    tracker: TrackerView
    webhook_secret: str | None


class ProjectDetails(msgspec.Struct, frozen=True, kw_only=True):
    tracker: str
    kind: str
    project: str
    name: str
    url: str
    description: str
    default_branch: str | None


class ConnectionTest(msgspec.Struct, frozen=True, kw_only=True):
    """``/projects/test-connection`` and each project of ``/trackers/{name}/test``."""

    success: bool
    message: str
    details: ProjectDetails | None


class ProjectCursorView(msgspec.Struct, frozen=True, kw_only=True):
    project: str
    updated_since: datetime | None  # the next incremental sync asks from here
    last_sync_at: datetime | None
    last_full_scan_at: datetime | None
    resuming: bool  # an interrupted scan continues from its last page
    issues_synced: int  # by the last sync
    last_error: str | None


class TrackerSyncStatus(msgspec.Struct, frozen=True, kw_only=True):
    tracker: str
    kind: str
    issues: int  # synced, not deleted
    poll_seconds: int
    next_poll_at: datetime | None
    last_webhook_at: datetime | None
    projects: list[ProjectCursorView]


class SyncReportView(msgspec.Struct, frozen=True, kw_only=True):
    tracker: str
    full: bool
    projects: int
    issues: int
    comments: int
    deleted: int
    not_modified: int
    seconds: float
    errors: list[str]


class SyncEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One line of ``POST /trackers/{name}/sync``: ``progress`` while it runs (``project``,
    ``issues`` written so far in it), then one ``report``, or one ``error`` (``message``)
    when the scan could not run at all (a project the tracker refuses is in the report)."""

    type: str  # progress | report | error
    tracker: str
    project: str | None = None
    issues: int | None = None
    report: SyncReportView | None = None
    message: str | None = None


class IssueView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    key: str  # owner/repo#12, group/project!3, PROJ-7
    tracker: str
    project: str
    number: str
    kind: str  # issue | pull_request
    title: str
    description: str
    status: str
    labels: list[str]
    assignees: list[str]
    priority: str | None
    author: str
    url: str
    created_at: datetime
    updated_at: datetime
    synced_at: datetime
    extra: dict[str, Any]
    # in a search's answer: the score on the search type's own scale (matched words, cosine,
    # or the fused reciprocal-rank score); absent elsewhere
    score: float | None = None


class IssueSearchResults(msgspec.Struct, frozen=True, kw_only=True):
    """``search_type``: fulltext, similarity or hybrid; ``engine``: what answered
    (``fulltext``, ``exact``, ``pgvector-hnsw``, ``hybrid-rrf(fulltext+...)``); ``model``: the
    embedder's identity (``None`` for fulltext); ``pending``: the account's issues not
    embedded yet (similarity cannot find them until the background indexer has)."""

    engine: str
    query: str
    count: int
    results: list[IssueView]
    search_type: str = "fulltext"
    model: str | None = None
    pending: int = 0


class WebhookAccepted(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the inbox row
    delivery_id: str
    event: str
    state: str
