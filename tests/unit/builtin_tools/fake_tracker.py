"""A scripted tracker that also writes (tests/unit/trackers/scripted_client.py reads only):
issues, pull requests and comments in dicts, every write noted in ``writes``, and
``fail_next`` making the next write fail with a tracker's error."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from hub.errors import TrackerError
from hub.trackers.records import (
    IssueChanges,
    IssueDraft,
    IssueKind,
    PullRequestChanges,
    PullRequestDraft,
    RemoteComment,
    RemoteIssue,
    RemotePullRequest,
    Tracker,
    TrackerKind,
)
from tests.unit.trackers.scripted_client import ScriptedTracker

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def remote(
    number: int,
    title: str = "",
    *,
    body: str = "",
    kind: IssueKind = IssueKind.ISSUE,
    labels: tuple[str, ...] = (),
    project: str = "acme/app",
) -> RemoteIssue:
    path = "pull" if kind is IssueKind.PULL_REQUEST else "issues"
    return RemoteIssue(
        external_id=f"{project}-{number}",
        number=str(number),
        kind=kind,
        title=title or f"Issue {number}",
        body=body,
        state="open",
        labels=labels,
        url=f"https://github.com/{project}/{path}/{number}",
        created_at=T0,
        updated_at=T0 + timedelta(minutes=number),
    )


class WritingTracker(ScriptedTracker):
    def __init__(self, kind: TrackerKind = TrackerKind.GITHUB) -> None:
        super().__init__(kind)
        self.writes: list[tuple[str, str, str, object]] = []  # (what, project, number, payload)
        self.fail_next: TrackerError | None = None
        self.diffs: dict[tuple[str, str], str] = {}
        self.gets = 0
        self._next = 100

    def _maybe_fail(self) -> None:
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure

    def _number(self) -> str:
        self._next += 1
        return str(self._next)

    async def get_issue(self, project: str, number: str) -> RemoteIssue:
        self.gets += 1
        self._maybe_fail()
        return await super().get_issue(project, number)

    async def create_issue(self, project: str, draft: IssueDraft) -> RemoteIssue:
        self._maybe_fail()
        number = self._number()
        created = msgspec.structs.replace(
            remote(int(number), draft.title, body=draft.description, project=project),
            labels=draft.labels,
            assignees=(draft.assignee,) if draft.assignee else (),
            priority=draft.priority,
        )
        self.put(project, created)
        self.writes.append(("create_issue", project, number, draft))
        return created

    async def update_issue(self, project: str, number: str, changes: IssueChanges) -> RemoteIssue:
        self._maybe_fail()
        current = await super().get_issue(project, number)
        fields = {
            "title": changes.title,
            "body": changes.description,
            "state": changes.status,
            "priority": changes.priority,
            "labels": changes.labels,
        }
        updated = msgspec.structs.replace(
            current,
            **{k: v for k, v in fields.items() if v is not None},
            updated_at=current.updated_at + timedelta(hours=1),
        )
        self.put(project, updated)
        self.writes.append(("update_issue", project, number, changes))
        return updated

    async def add_comment(
        self, project: str, number: str, body: str, **kw: object
    ) -> RemoteComment:
        self._maybe_fail()
        await super().get_issue(project, number)
        comments = self.comment_lists.setdefault((project, number), [])
        comment = RemoteComment(
            external_id=f"c{len(comments) + 1}",
            body=body,
            author="bot",
            created_at=T0,
            updated_at=T0,
            kind="review_comment" if kw.get("path") else "issue_comment",
            path=kw.get("path"),  # type: ignore[arg-type]  # the port's keyword, passed through
            line=kw.get("line"),  # type: ignore[arg-type]  # the port's keyword, passed through
        )
        comments.append(comment)
        self.writes.append(("add_comment", project, number, kw | {"body": body}))
        return comment

    async def update_comment(
        self, project: str, number: str, comment_id: str, **kw: object
    ) -> RemoteComment:
        self._maybe_fail()
        comments = self.comment_lists.get((project, number), [])
        for index, comment in enumerate(comments):
            if comment.external_id == comment_id:
                body = kw.get("body")
                updated = msgspec.structs.replace(
                    comment, body=body if isinstance(body, str) else comment.body
                )
                comments[index] = updated
                self.writes.append(("update_comment", project, number, kw))
                return updated
        raise TrackerError(
            f"GitHub: no comment {comment_id} on {project}#{number}",
            tracker="github",
            project=project,
            status=404,
        )

    async def get_pull_request(
        self, project: str, number: str, *, include_comments: bool = True, include_diff: bool = True
    ) -> RemotePullRequest:
        self.gets += 1
        self._maybe_fail()
        pr = await super().get_issue(project, number)
        return RemotePullRequest(
            pull_request=pr,
            comments=tuple(await self.comments(project, number)) if include_comments else (),
            diff=self.diffs.get((project, number)) if include_diff else None,
        )

    async def create_pull_request(self, project: str, draft: PullRequestDraft) -> RemoteIssue:
        self._maybe_fail()
        number = self._number()
        created = msgspec.structs.replace(
            remote(int(number), draft.title, body=draft.description, project=project),
            kind=IssueKind.PULL_REQUEST,
            extra={"source_branch": draft.source_branch, "target_branch": draft.target_branch},
        )
        self.put(project, created)
        self.writes.append(("create_pull_request", project, number, draft))
        return created

    async def update_pull_request(
        self, project: str, number: str, changes: PullRequestChanges
    ) -> RemoteIssue:
        self._maybe_fail()
        current = await super().get_issue(project, number)
        updated = msgspec.structs.replace(
            current,
            state=changes.state or current.state,
            title=changes.title or current.title,
            updated_at=current.updated_at + timedelta(hours=1),
        )
        self.put(project, updated)
        self.writes.append(("update_pull_request", project, number, changes))
        return updated


class Clients:
    """``TrackerClients`` answering each tracker by its id."""

    def __init__(self, **by_tracker: WritingTracker) -> None:
        self.by_tracker = by_tracker

    async def client(self, tracker: Tracker) -> WritingTracker:
        return self.by_tracker[tracker.id]


def tracker(
    tracker_id: str = "trk_gh",
    name: str = "gh",
    kind: TrackerKind = TrackerKind.GITHUB,
    projects: Sequence[str] = ("acme/app",),
    account_id: str = "acc",
    base_url: str = "https://api.github.com",
) -> Tracker:
    return Tracker(
        id=tracker_id,
        account_id=account_id,
        name=name,
        kind=kind,
        base_url=base_url,
        token_ref="env:TOKEN",
        projects=tuple(projects),
        created_at=T0,
        updated_at=T0,
    )
