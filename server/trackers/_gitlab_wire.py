"""GitLab's JSON and the tracker records, both ways: project paths, issue (``12``) and merge
request (``!12``) numbers, page tokens, state events, draft titles, emoji names, unified
diffs, and issues, merge requests and notes as ``RemoteIssue`` and ``RemoteComment``
(server/trackers/gitlab.py uses them)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hub.errors import TrackerError
from hub.trackers.records import IssueKind, RemoteComment, RemoteIssue
from server.trackers._http import parse_time

STREAMS = ("issues", "merge_requests")
STATES = {"opened": "open", "closed": "closed", "merged": "merged", "locked": "closed"}
EMOJI = {"+1": "thumbsup", "-1": "thumbsdown", "laugh": "laughing", "hooray": "tada"}


def project_path(project: str) -> str:
    path = project.strip("/")
    if not path:
        raise TrackerError("GitLab: the project is empty", tracker="gitlab", status=422)
    return f"/projects/{quote(path, safe='')}"


def parse_number(number: str) -> tuple[bool, int]:
    """(is a merge request, iid) of ``12``, ``#12``, ``!12``, ``group/project!12``."""
    text = str(number).strip()
    mr = "!" in text
    tail = text.rsplit("!" if mr else "#", 1)[-1]
    if not tail.isdigit():
        raise TrackerError(
            f"GitLab: {number!r} is not an issue (12) or merge request (!12) number",
            tracker="gitlab",
            status=422,
        )
    return mr, int(tail)


def mr_iid(number: str) -> int:
    return parse_number(number)[1]


def number_text(mr: bool, iid: int) -> str:
    return f"!{iid}" if mr else str(iid)


def item_path(project: str, mr: bool, iid: int) -> str:
    return f"{project_path(project)}/{'merge_requests' if mr else 'issues'}/{iid}"


def describe(mr: bool, iid: int) -> str:
    return f"merge request !{iid}" if mr else f"issue #{iid}"


def parse_page(page: str | None, project: str) -> tuple[str, int]:
    if page is None:
        return "issues", 1
    stream, _, number = page.partition(":")
    if stream not in STREAMS or not number.isdigit():
        raise TrackerError(
            f"GitLab: page token {page!r} is not one this adapter gave (project {project})",
            tracker="gitlab",
            project=project,
            status=422,
        )
    return stream, int(number)


def state_event(status: str, project: str) -> str:
    state = status.strip().lower()
    if state in ("open", "opened", "reopen", "reopened"):
        return "reopen"
    if state in ("closed", "close", "done"):
        return "close"
    raise TrackerError(
        f"GitLab: status {status!r} is not open or closed (project {project})",
        tracker="gitlab",
        project=project,
        status=422,
    )


def is_draft(title: str) -> bool:
    return title.lower().startswith(("draft:", "[draft]", "(draft)"))


def undraft(title: str) -> str:
    for mark in ("draft:", "[draft]", "(draft)"):
        if title.lower().startswith(mark):
            return title[len(mark) :].lstrip()
    return title


def emoji_name(name: str) -> str:
    return EMOJI.get(name, name)


def unified_diff(diff: dict[str, Any]) -> str:
    old, new = diff.get("old_path", ""), diff.get("new_path", "")
    head = f"diff --git a/{old} b/{new}\n"
    head += "--- /dev/null\n" if diff.get("new_file") else f"--- a/{old}\n"
    head += "+++ /dev/null\n" if diff.get("deleted_file") else f"+++ b/{new}\n"
    body = diff.get("diff") or ""
    return head + body + ("" if body.endswith("\n") or not body else "\n")


def issue_of(row: dict[str, Any], *, mr: bool) -> RemoteIssue:
    iid = int(row["iid"])
    extra: dict[str, Any] = {}
    if mr:
        extra = {
            "source_branch": row.get("source_branch"),
            "target_branch": row.get("target_branch"),
            "draft": bool(row.get("draft") or row.get("work_in_progress")),
            "merged": row.get("state") == "merged",
            "reviewers": [r["username"] for r in row.get("reviewers") or []],
            "head_sha": (row.get("diff_refs") or {}).get("head_sha") or row.get("sha"),
        }
    return RemoteIssue(
        external_id=str(row["id"]),
        number=number_text(mr, iid),
        kind=IssueKind.PULL_REQUEST if mr else IssueKind.ISSUE,
        title=row.get("title") or "",
        body=row.get("description") or "",
        state=STATES.get(row.get("state") or "", row.get("state") or "open"),
        labels=tuple(
            label if isinstance(label, str) else label.get("name", "")
            for label in row.get("labels") or []
        ),
        assignees=tuple(u["username"] for u in row.get("assignees") or []),
        author=(row.get("author") or {}).get("username", ""),
        url=row.get("web_url") or "",
        created_at=parse_time(row["created_at"]),
        updated_at=parse_time(row["updated_at"]),
        extra=extra,
    )


def comment_of(note: dict[str, Any], discussion: str | None) -> RemoteComment:
    position = note.get("position") or {}
    diff = note.get("type") == "DiffNote"
    return RemoteComment(
        external_id=str(note["id"]),
        body=note.get("body") or "",
        author=(note.get("author") or {}).get("username", ""),
        created_at=parse_time(note["created_at"]),
        updated_at=parse_time(note["updated_at"]),
        kind="review_comment" if diff else "issue_comment",
        path=position.get("new_path") or position.get("old_path") if diff else None,
        line=position.get("new_line") or position.get("old_line") if diff else None,
        thread_id=discussion,
    )
