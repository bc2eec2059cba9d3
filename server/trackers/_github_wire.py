"""GitHub's JSON and the tracker records, both ways: paths of a repository, numbers, states,
an issue's patch, and issues, comments and review comments as ``RemoteIssue`` and
``RemoteComment`` (server/trackers/github.py uses them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub.errors import TrackerError
from hub.trackers.records import IssueChanges, IssueKind, RemoteComment, RemoteIssue
from server.trackers._http import parse_time


def repo_path(project: str) -> str:
    owner, _, name = project.strip("/").partition("/")
    if not owner or not name or "/" in name:
        raise TrackerError(
            f"GitHub: project {project!r} is not owner/repo",
            tracker="github",
            project=project,
            status=422,
        )
    return f"/repos/{owner}/{name}"


def number_of(number: str) -> int:
    text = str(number).rsplit("#", 1)[-1]
    if not text.isdigit():
        raise TrackerError(
            f"GitHub: {number!r} is not an issue or pull request number",
            tracker="github",
            status=422,
        )
    return int(text)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def state_of(status: str, project: str) -> str:
    state = status.strip().lower()
    if state in ("open", "opened", "reopen", "reopened"):
        return "open"
    if state in ("closed", "close", "done"):
        return "closed"
    raise TrackerError(
        f"GitHub: status {status!r} is not open or closed (project {project})",
        tracker="github",
        project=project,
        status=422,
    )


def issue_patch(changes: IssueChanges, project: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if changes.title is not None:
        body["title"] = changes.title
    if changes.description is not None:
        body["body"] = changes.description
    if changes.status is not None:
        body["state"] = state_of(changes.status, project)
    if changes.labels is not None:
        body["labels"] = list(changes.labels)
    if changes.assignee is not None:
        body["assignees"] = [changes.assignee] if changes.assignee else []
    return body


def fields_of(issue: RemoteIssue) -> dict[str, Any]:
    return {name: getattr(issue, name) for name in issue.__struct_fields__}


def issue_of(row: dict[str, Any]) -> RemoteIssue:
    pull = row.get("pull_request")
    state = row.get("state") or "open"
    if pull is not None and pull.get("merged_at"):
        state = "merged"
    return RemoteIssue(
        external_id=str(row["id"]),
        number=str(row["number"]),
        kind=IssueKind.PULL_REQUEST if pull is not None else IssueKind.ISSUE,
        title=row.get("title") or "",
        body=row.get("body") or "",
        state=state,
        labels=tuple(label["name"] for label in row.get("labels") or []),
        assignees=tuple(user["login"] for user in row.get("assignees") or []),
        author=(row.get("user") or {}).get("login", ""),
        url=row.get("html_url") or "",
        created_at=parse_time(row["created_at"]),
        updated_at=parse_time(row["updated_at"]),
    )


def comment_of(row: dict[str, Any]) -> RemoteComment:
    return RemoteComment(
        external_id=str(row["id"]),
        body=row.get("body") or "",
        author=(row.get("user") or {}).get("login", ""),
        created_at=parse_time(row["created_at"]),
        updated_at=parse_time(row["updated_at"]),
        url=row.get("html_url") or "",
    )


def review_comment_of(row: dict[str, Any]) -> RemoteComment:
    reply_to = row.get("in_reply_to_id")
    return RemoteComment(
        external_id=str(row["id"]),
        body=row.get("body") or "",
        author=(row.get("user") or {}).get("login", ""),
        created_at=parse_time(row["created_at"]),
        updated_at=parse_time(row["updated_at"]),
        url=row.get("html_url") or "",
        kind="review_comment",
        path=row.get("path"),
        line=row.get("line"),
        thread_id=str(reply_to if reply_to is not None else row["id"]),
    )
