"""Syncing a tracker's issues into Preloop: incremental, paginated, resumable.

    scan(tracker)       for each project: ask for what changed since the cursor ─▶ per page:
                        write each issue and its comments ─▶ move the cursor past the page
                        (a crash resumes from the last page written; rewriting an issue is
                        harmless: rows are keyed by the tracker's id)
    scan(full=True)     ask for everything; afterwards, issues not written during the scan
                        are marked deleted (the tracker no longer has them)
    refresh_issue(...)  one issue and its comments, fetched again (webhooks, live reads)
    write_remote(...)   one issue as a tracker answered it (the built-in tools' writes)

A full scan runs when asked, and on its own once ``full_scan_seconds`` passed since the last.

Resuming: an interrupted scan continues from the page token on its cursor. A token the tracker
no longer accepts (GitLab's keyset and Jira's ``nextPageToken`` expire) is dropped with the
error, and the next scan starts over from ``updated_since`` (an incremental scan: everything
older was written) or from the beginning (a full scan, keeping its start time, so deletions
are still judged by what this scan wrote). The first page's ETag is kept only when that page
was the whole answer: a "not modified" for it then means nothing changed at all.

A scan and ``refresh_issue`` write each issue with all its comments in one transaction
(``IssueStore.write_synced``): a comment the tracker no longer lists is marked deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import msgspec

from hub.clock import Clock
from hub.errors import TrackerError
from hub.ids import new_id
from hub.trackers.ports import TrackerClient, TrackerClients, TrackerStorage
from hub.trackers.records import (
    Issue,
    IssueComment,
    RemoteComment,
    RemoteIssue,
    SyncCursor,
    Tracker,
    content_hash,
    issue_key,
)


class SyncProgress(msgspec.Struct, frozen=True, kw_only=True):
    tracker: str
    project: str
    issues: int  # written so far in this project


class SyncReport(msgspec.Struct, kw_only=True):
    tracker: str
    full: bool = False
    projects: int = 0
    issues: int = 0  # issues and pull/merge requests written
    comments: int = 0
    deleted: int = 0
    not_modified: int = 0  # projects whose tracker answered "not modified"
    seconds: float = 0.0
    errors: list[str] = []


class Syncer:
    def __init__(
        self,
        storage: TrackerStorage,
        clients: TrackerClients,
        clock: Clock,
        *,
        full_scan_seconds: float = 86400.0,
    ) -> None:
        self._storage = storage
        self._clients = clients
        self._clock = clock
        self._full_every = timedelta(seconds=full_scan_seconds)

    async def scan(
        self,
        tracker: Tracker,
        *,
        full: bool = False,
        progress: Callable[[SyncProgress], None] | None = None,
    ) -> SyncReport:
        """Sync every project of ``tracker``. A project that fails is reported in
        ``errors`` (its cursor keeps the error) and the others still sync."""
        started = time.perf_counter()
        report = SyncReport(tracker=tracker.name, full=full)
        client = await self._clients.client(tracker)
        try:
            for project in tracker.projects:
                report.projects += 1
                try:
                    await self._scan_project(client, tracker, project, full, report, progress)
                except TrackerError as exc:
                    report.errors.append(exc.message)
                    await self._note_error(tracker, project, exc.message)
        finally:
            await client.close()
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    async def _scan_project(
        self,
        client: TrackerClient,
        tracker: Tracker,
        project: str,
        full: bool,
        report: SyncReport,
        progress: Callable[[SyncProgress], None] | None,
    ) -> None:
        cursors = self._storage.cursors
        now = self._clock.now()
        cursor = await cursors.get(tracker.account_id, tracker.id, project) or SyncCursor(
            account_id=tracker.account_id, tracker_id=tracker.id, project=project
        )
        due = cursor.last_full_scan_at is None or now - cursor.last_full_scan_at >= self._full_every
        resumed = cursor.page
        if cursor.page is not None:  # an interrupted scan: resume where it stopped
            since, page, full = (
                cursor.page_since,
                cursor.page,
                cursor.full_scan_started_at is not None,
            )
        elif cursor.full_scan_started_at is not None:  # a full scan that lost its page
            since, page, full = None, None, True
        elif full or due:
            since, page, full = None, None, True
            cursor = msgspec.structs.replace(cursor, full_scan_started_at=now)
            await cursors.put(cursor)
        else:
            since, page = cursor.updated_since, None
        newest = cursor.updated_since
        written = 0
        etag = cursor.etag if page is None and not full else None
        first = True
        while True:
            try:
                answer = await client.issues_since(project, since, page=page, etag=etag)
            except TrackerError:
                if first and resumed is not None:  # the token is refused: start over next time
                    await cursors.put(msgspec.structs.replace(cursor, page=None, page_since=None))
                raise
            if answer.not_modified:
                report.not_modified += 1
                break
            for remote in answer.items:
                await self._write(client, tracker, project, remote, report)
                written += 1
                if newest is None or remote.updated_at > newest:
                    newest = remote.updated_at
            if progress is not None:
                progress(SyncProgress(tracker=tracker.name, project=project, issues=written))
            if first and page is None:  # kept only when this page is the whole answer
                kept_etag = answer.etag if answer.next_page is None else None
            else:
                kept_etag = None
            page, etag, first = answer.next_page, None, False
            cursor = msgspec.structs.replace(
                cursor,
                page=page,
                page_since=since if page is not None else None,
                updated_since=newest,
                etag=kept_etag,
            )
            await cursors.put(cursor)  # the page is written: a crash resumes after it
            if page is None:
                break
        if full and cursor.full_scan_started_at is not None:
            report.deleted += await self._storage.issues.mark_deleted(
                tracker.account_id, tracker.id, project, cursor.full_scan_started_at
            )
            cursor = msgspec.structs.replace(
                cursor, full_scan_started_at=None, last_full_scan_at=self._clock.now()
            )
        await cursors.put(
            msgspec.structs.replace(
                cursor, last_sync_at=self._clock.now(), last_error=None, issues_synced=written
            )
        )

    async def _write(
        self,
        client: TrackerClient,
        tracker: Tracker,
        project: str,
        remote: RemoteIssue,
        report: SyncReport,
    ) -> None:
        comments = await client.comments(project, remote.number)
        await self._write_synced(tracker, project, remote, comments)
        report.issues += 1
        report.comments += len(comments)

    async def _note_error(self, tracker: Tracker, project: str, message: str) -> None:
        cursors = self._storage.cursors
        cursor = await cursors.get(tracker.account_id, tracker.id, project) or SyncCursor(
            account_id=tracker.account_id, tracker_id=tracker.id, project=project
        )
        await cursors.put(msgspec.structs.replace(cursor, last_error=message))

    async def note_failure(self, tracker: Tracker, message: str) -> None:
        """Keep ``message`` on the cursor of every project of ``tracker`` (a failure before
        or outside one project's scan: the client could not be built, say)."""
        for project in tracker.projects:
            await self._note_error(tracker, project, message)

    async def refresh_issue(self, tracker: Tracker, project: str, number: str) -> Issue:
        """Fetch one issue (or pull/merge request) and its comments again and write them."""
        client = await self._clients.client(tracker)
        try:
            remote = await client.get_issue(project, number)
            comments = await client.comments(project, number)
        finally:
            await client.close()
        return await self._write_synced(tracker, project, remote, comments)

    async def _write_synced(
        self,
        tracker: Tracker,
        project: str,
        remote: RemoteIssue,
        comments: Sequence[RemoteComment],
    ) -> Issue:
        """The issue and all its comments as the tracker listed them, in one transaction
        (comments it no longer lists are marked deleted)."""
        issue, rows = self._records(tracker, project, remote, comments)
        return await self._storage.issues.write_synced(issue, rows)

    async def write_remote(
        self,
        tracker: Tracker,
        project: str,
        remote: RemoteIssue,
        comments: Sequence[RemoteComment] | None = None,
    ) -> Issue:
        """Write an issue as the tracker answered it (and, when given, its comments; the
        comments not given are left as they are)."""
        issue, rows = self._records(tracker, project, remote, comments or ())
        stored = await self._storage.issues.upsert(issue)
        for row in rows:
            await self._storage.issues.upsert_comment(
                msgspec.structs.replace(row, issue_id=stored.id)
            )
        return stored

    def _records(
        self,
        tracker: Tracker,
        project: str,
        remote: RemoteIssue,
        comments: Sequence[RemoteComment],
    ) -> tuple[Issue, list[IssueComment]]:
        """What Preloop keeps of an issue and its comments (new ids: a store keeps the ids of
        rows it has)."""
        now = self._clock.now()
        issue = Issue(
            id=new_id("iss"),
            account_id=tracker.account_id,
            tracker_id=tracker.id,
            project=project,
            number=remote.number,
            key=issue_key(tracker.kind, project, remote.number, remote.kind),
            external_id=remote.external_id,
            kind=remote.kind,
            title=remote.title,
            body=remote.body,
            state=remote.state,
            labels=remote.labels,
            assignees=remote.assignees,
            priority=remote.priority,
            author=remote.author,
            url=remote.url,
            created_at=remote.created_at,
            updated_at=remote.updated_at,
            synced_at=now,
            content_hash=content_hash(remote),
            extra=remote.extra,
        )
        rows = [
            IssueComment(
                id=new_id("cmt"),
                account_id=tracker.account_id,
                tracker_id=tracker.id,
                issue_id=issue.id,
                external_id=comment.external_id,
                body=comment.body,
                author=comment.author,
                kind=comment.kind,
                url=comment.url,
                created_at=comment.created_at,
                updated_at=comment.updated_at,
                synced_at=now,
            )
            for comment in comments
        ]
        return issue, rows


def next_poll(tracker: Tracker, now: datetime) -> datetime:
    """When a tracker polled at ``now`` is next due."""
    return now + timedelta(seconds=max(tracker.poll_seconds, 1))
