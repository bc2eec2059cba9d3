"""The built-in tools that write: each sends its change to the tracker (``TrackerClient``),
then writes what the tracker answered to the index (``Syncer.write_remote``, or the comment
under its issue). A tracker's refusal raises ``TrackerError`` before the index is touched
(docs/decisions/0090)."""

from __future__ import annotations

from typing import Any

from hub.builtin_tools.arguments import (
    AddComment,
    CreateIssue,
    CreatePullRequest,
    UpdateComment,
    UpdateIssue,
    UpdatePullRequest,
)
from hub.builtin_tools.names import ADD_COMMENT, UPDATE_COMMENT, UPDATE_PULL_REQUEST
from hub.builtin_tools.references import CODE_KINDS, Located, require_kind
from hub.builtin_tools.results import (
    BuiltinToolError,
    comment_view,
    duplicate_check_view,
    issue_view,
    possible_duplicates,
)
from hub.builtin_tools.session import Session
from hub.trackers.records import (
    Issue,
    IssueChanges,
    IssueDraft,
    IssueKind,
    PullRequestChanges,
    PullRequestDraft,
    RemoteComment,
    ReviewComment,
)


async def create_issue(session: Session, args: CreateIssue) -> dict[str, Any]:
    """Checks the draft for duplicates first (unless ``force``): with candidates nothing is
    created and they are answered (decision 0106)."""
    tracker, project = await session.refs.project(args.project)
    check = None
    if not args.force and session.duplicates is not None:
        check = await session.duplicates.of_draft(
            session.account_id, tracker.id, project, args.title, args.description
        )
        if check.candidates:
            return possible_duplicates(check, tracker.name)
    draft = IssueDraft(
        title=args.title,
        description=args.description,
        labels=args.labels,
        assignee=args.assignee,
        priority=args.priority,
        status=args.status,
    )
    async with session.client(tracker) as client:
        remote = await client.create_issue(project, draft)
    issue = await session.syncer.write_remote(tracker, project, remote)
    answer: dict[str, Any] = {
        "status": "created",
        "created": True,
        "issue": issue_view(issue, tracker.name),
    }
    if check is not None:
        answer["duplicate_check"] = duplicate_check_view(check)
    return answer


async def update_issue(session: Session, args: UpdateIssue) -> dict[str, Any]:
    changes = IssueChanges(
        title=args.title,
        description=args.description,
        status=args.status,
        priority=args.priority,
        assignee=args.assignee,
        labels=args.labels,
    )
    if changes == IssueChanges():
        raise BuiltinToolError(
            "nothing to change: give at least one of title, description, status, priority, "
            "assignee, labels"
        )
    found = await session.refs.locate(args.issue, "issue")
    async with session.client(found.tracker) as client:
        remote = await client.update_issue(found.project, found.number, changes)
    issue = await session.syncer.write_remote(found.tracker, found.project, remote)
    return {"status": "updated", "issue": issue_view(issue, found.tracker.name)}


async def add_comment(session: Session, args: AddComment) -> dict[str, Any]:
    """A comment; with ``path`` and ``line`` a review comment on a pull/merge request."""
    if (args.path is None) != (args.line is None):
        raise BuiltinToolError("a review comment needs both 'path' and 'line'")
    found = await session.refs.locate(args.target, "target")
    if args.path is not None:
        require_kind(found.tracker, CODE_KINDS, ADD_COMMENT)
        if found.issue is not None and found.issue.kind is not IssueKind.PULL_REQUEST:
            raise BuiltinToolError(
                f"'path' and 'line' make a review comment, but {found.issue.key} is an "
                "issue, not a pull or merge request"
            )
    async with session.client(found.tracker) as client:
        remote = await client.add_comment(
            found.project,
            found.number,
            args.comment,
            path=args.path,
            line=args.line,
            side=args.side,
            in_reply_to=args.in_reply_to,
        )
    return await _commented(session, found, remote, "created")


async def update_comment(session: Session, args: UpdateComment) -> dict[str, Any]:
    if args.body is None and args.resolved is None:
        raise BuiltinToolError("nothing to change: give 'body' or 'resolved'")
    found = await session.refs.locate(args.target, "target")
    if args.resolved is not None or args.thread_id is not None:  # review threads
        require_kind(found.tracker, CODE_KINDS, f"{UPDATE_COMMENT} with resolved or thread_id")
    async with session.client(found.tracker) as client:
        remote = await client.update_comment(
            found.project,
            found.number,
            args.comment_id,
            body=args.body,
            resolved=args.resolved,
            thread_id=args.thread_id,
            comment_type=args.comment_type,
        )
    return await _commented(session, found, remote, "updated")


async def update_pull_request(session: Session, args: UpdatePullRequest) -> dict[str, Any]:
    changes = PullRequestChanges(
        title=args.title,
        description=args.description,
        state=args.state,
        labels=args.labels,
        assignees=args.assignees,
        reviewers=args.reviewers,
        draft=args.draft,
        review_action=args.review_action,
        review_body=args.review_body,
        review_comments=tuple(
            ReviewComment(path=c.path, line=c.line, body=c.body, side=c.side)
            for c in args.review_comments
        ),
        add_reaction=args.add_reaction,
        remove_reaction=args.remove_reaction,
    )
    if changes == PullRequestChanges():
        raise BuiltinToolError("nothing to change: give a field, a review or a reaction")
    found = await session.pull_request(args.pull_request, UPDATE_PULL_REQUEST)
    async with session.client(found.tracker) as client:
        remote = await client.update_pull_request(found.project, found.number, changes)
    issue = await session.syncer.write_remote(found.tracker, found.project, remote)
    return {
        "status": "updated",
        "review": args.review_action,
        "pull_request": issue_view(issue, found.tracker.name),
    }


async def create_pull_request(session: Session, args: CreatePullRequest) -> dict[str, Any]:
    tracker, project = await session.refs.project(args.project, CODE_KINDS)
    draft = PullRequestDraft(
        title=args.title,
        source_branch=args.source_branch,
        target_branch=args.target_branch,
        description=args.description,
        draft=args.draft,
        assignees=args.assignees,
        reviewers=args.reviewers,
        labels=args.labels,
        milestone=args.milestone,
        extra_options=args.extra_options,
    )
    async with session.client(tracker) as client:
        remote = await client.create_pull_request(project, draft)
    issue = await session.syncer.write_remote(tracker, project, remote)
    return {"status": "created", "pull_request": issue_view(issue, tracker.name)}


async def _commented(
    session: Session, found: Located, remote: RemoteComment, status: str
) -> dict[str, Any]:
    issue: Issue = await session.indexed(found)
    await session.store_comment(found.tracker, issue, remote)
    return {
        "status": status,
        "comment": comment_view(remote),
        "target": {"key": issue.key, "url": issue.url, "id": issue.id},
    }
