"""A built-in tool's result: ``structuredContent`` and the same as JSON text for clients that
read only text (the MCP specification's advice); refusals and tracker errors as ``isError``
results saying why. Issues and comments are shown by ``issue_view``/``comment_view``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from hub.errors import TrackerError, ValidationError
from hub.search.duplicate_records import DuplicateCheck
from hub.tool_results import ToolResult
from hub.trackers.records import Issue, IssueComment, RemoteComment

_pretty = msgspec.json.Encoder(order="sorted")


class BuiltinToolError(ValidationError):
    """A built-in call that cannot be run as asked (a bad argument, an unknown issue, a tool
    the tracker cannot do): answered ``isError`` with ``message``, nothing written."""

    title = "Built-in tool refused"


def ok(structured: dict[str, Any]) -> ToolResult:
    text = _pretty.encode(structured).decode()
    return ToolResult.of(
        {
            "content": [{"type": "text", "text": text}],
            "structuredContent": structured,
            "isError": False,
        }
    )


def refused(tool: str, message: str) -> ToolResult:
    return _error(message, {"error": message, "tool": tool})


def tracker_failed(tool: str, exc: TrackerError) -> ToolResult:
    """The tracker's refusal, in its own words (the adapters name tracker and project)."""
    details: dict[str, Any] = {"error": exc.message, "tool": tool, "tracker": exc.tracker}
    if exc.project:
        details["project"] = exc.project
    if exc.status is not None:
        details["status"] = exc.status
    if exc.retry_after is not None:
        details["retry_after"] = exc.retry_after
    return _error(exc.message, details)


def _error(message: str, details: dict[str, Any]) -> ToolResult:
    return ToolResult.of(
        {
            "content": [{"type": "text", "text": message}],
            "structuredContent": details,
            "isError": True,
        }
    )


def issue_view(issue: Issue, tracker_name: str) -> dict[str, Any]:
    """An issue (or pull/merge request) as the tools answer it."""
    view: dict[str, Any] = {
        "id": issue.id,
        "key": issue.key,
        "tracker": tracker_name,
        "project": issue.project,
        "number": issue.number,
        "kind": issue.kind.value,
        "title": issue.title,
        "description": issue.body,
        "state": issue.state,
        "labels": list(issue.labels),
        "assignees": list(issue.assignees),
        "priority": issue.priority,
        "author": issue.author,
        "url": issue.url,
        "created_at": issue.created_at.isoformat(),
        "updated_at": issue.updated_at.isoformat(),
        "synced_at": issue.synced_at.isoformat(),
    }
    if issue.extra:
        view["details"] = msgspec.to_builtins(issue.extra)
    return view


def comment_view(comment: IssueComment | RemoteComment) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": comment.external_id,
        "kind": comment.kind,
        "author": comment.author,
        "body": comment.body,
        "url": comment.url,
        "created_at": comment.created_at.isoformat(),
        "updated_at": comment.updated_at.isoformat(),
    }
    if isinstance(comment, RemoteComment):
        for name in ("path", "line", "thread_id"):
            if (value := getattr(comment, name)) is not None:
                view[name] = value
    return view


def comment_views(comments: Sequence[IssueComment | RemoteComment]) -> list[dict[str, Any]]:
    return [comment_view(c) for c in comments]


def duplicate_check_view(check: DuplicateCheck) -> dict[str, Any]:
    """How ``create_issue`` looked for duplicates: the embedder, engine and threshold, and
    whether the project's issues were all embedded (``note`` says what was not compared)."""
    view: dict[str, Any] = {
        "model": check.model,
        "engine": check.engine,
        "threshold": check.threshold,
        "index_ready": check.ready,
    }
    if check.note:
        view["note"] = check.note
    return view


def possible_duplicates(check: DuplicateCheck, tracker_name: str) -> dict[str, Any]:
    """``create_issue``'s answer when the draft may duplicate synced issues: nothing was
    created; the candidates, best first, and how to create it anyway (decision 0106)."""
    return {
        "status": "possible_duplicates",
        "created": False,
        "message": f"{len(check.candidates)} synced issue(s) may already cover this: nothing "
        "was created. Comment on one of them, or call create_issue again with the same "
        "arguments and force: true to create it anyway.",
        "candidates": [
            {
                "id": c.issue.id,
                "key": c.issue.key,
                "tracker": tracker_name,
                "title": c.issue.title,
                "url": c.issue.url,
                "state": c.issue.state,
                "closed": c.closed,
                "score": round(c.score, 4),
            }
            for c in check.candidates
        ],
        "duplicate_check": duplicate_check_view(check),
    }
