"""A scripted in-memory ``TrackerClient`` for unit tests of the core's tracker code: its issues
live in a dict, pages are ``page_size`` issues, and a test can make a page fail once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from hub.errors import TrackerError
from hub.trackers.records import (
    IssueChanges,
    IssueDraft,
    IssuePage,
    ProjectInfo,
    PullRequestChanges,
    PullRequestDraft,
    RemoteComment,
    RemoteIssue,
    RemotePullRequest,
    Tracker,
    TrackerKind,
)


class ScriptedTracker:
    def __init__(self, kind: TrackerKind = TrackerKind.GITHUB, page_size: int = 2) -> None:
        self._kind = kind
        self.page_size = page_size
        self.issues: dict[tuple[str, str], RemoteIssue] = {}
        self.comment_lists: dict[tuple[str, str], list[RemoteComment]] = {}
        self.fail_on_page: int | None = None  # raise once when this page (0-based) is asked
        self.requests: list[tuple[str, datetime | None, str | None]] = []
        self.closed = 0

    @property
    def kind(self) -> TrackerKind:
        return self._kind

    def put(self, project: str, issue: RemoteIssue) -> None:
        self.issues[(project, issue.number)] = issue

    async def client(self, tracker: Tracker) -> ScriptedTracker:
        return self

    async def test_connection(self, project: str) -> ProjectInfo:
        return ProjectInfo(project=project, name=project)

    async def issues_since(
        self,
        project: str,
        since: datetime | None,
        *,
        page: str | None = None,
        etag: str | None = None,
    ) -> IssuePage:
        self.requests.append((project, since, page))
        index = int(page or 0)
        if self.fail_on_page == index:
            self.fail_on_page = None
            raise TrackerError("scripted failure", tracker="scripted", project=project)
        rows = sorted(
            (i for (p, _), i in self.issues.items() if p == project),
            key=lambda i: (i.updated_at, i.number),
        )
        rows = [i for i in rows if since is None or i.updated_at >= since]
        chunk = rows[index * self.page_size : (index + 1) * self.page_size]
        more = (index + 1) * self.page_size < len(rows)
        return IssuePage(items=tuple(chunk), next_page=str(index + 1) if more else None)

    async def get_issue(self, project: str, number: str) -> RemoteIssue:
        found = self.issues.get((project, number))
        if found is None:
            raise TrackerError(
                f"no issue {number}", tracker="scripted", project=project, status=404
            )
        return found

    async def comments(self, project: str, number: str) -> Sequence[RemoteComment]:
        return list(self.comment_lists.get((project, number), []))

    async def create_issue(self, project: str, draft: IssueDraft) -> RemoteIssue:
        raise NotImplementedError

    async def update_issue(self, project: str, number: str, changes: IssueChanges) -> RemoteIssue:
        current = await self.get_issue(project, number)
        updated = msgspec.structs.replace(
            current, title=changes.title if changes.title is not None else current.title
        )
        self.issues[(project, number)] = updated
        return updated

    async def add_comment(self, project: str, number: str, body: str, **_: object) -> RemoteComment:
        raise NotImplementedError

    async def update_comment(
        self, project: str, number: str, comment_id: str, **_: object
    ) -> RemoteComment:
        raise NotImplementedError

    async def get_pull_request(
        self, project: str, number: str, *, include_comments: bool = True, include_diff: bool = True
    ) -> RemotePullRequest:
        return RemotePullRequest(pull_request=await self.get_issue(project, number))

    async def create_pull_request(self, project: str, draft: PullRequestDraft) -> RemoteIssue:
        raise NotImplementedError

    async def update_pull_request(
        self, project: str, number: str, changes: PullRequestChanges
    ) -> RemoteIssue:
        raise NotImplementedError

    async def close(self) -> None:
        self.closed += 1
