"""The built-in tools that only read: ``get_issue``, ``search``, ``estimate_compliance``,
``improve_compliance`` (which proposes, writes nothing) and ``get_pull_request``. They answer
from the synced index; a live read (``refresh``, an issue not yet indexed, a diff) updates it
(docs/decisions/0090). Each takes the call's session and its decoded arguments and answers
the ``structuredContent`` of its result."""

from __future__ import annotations

import asyncio
from typing import Any

from hub.builtin_tools.arguments import Compliance, GetIssue, GetPullRequest, Search
from hub.builtin_tools.names import GET_PULL_REQUEST
from hub.builtin_tools.results import BuiltinToolError, comment_views, issue_view
from hub.builtin_tools.session import Session
from hub.errors import TrackerError, ValidationError
from hub.search.records import SearchType
from hub.trackers.records import Issue, IssueQuery
from hub.trackers.search import words

_SCORED_AT_ONCE = 4  # issues of one compliance call scored concurrently


async def get_issue(session: Session, args: GetIssue) -> dict[str, Any]:
    found = await session.refs.locate(args.issue, "issue")
    if found.issue is None or args.refresh:
        issue, source = await session.live(found), "live"
    else:
        issue, source = found.issue, "index"
    comments = await session.storage.issues.comments(session.account_id, issue.id)
    return {
        "issue": issue_view(issue, found.tracker.name),
        "comments": comment_views(comments),
        "source": source,
    }


def search_type_of(args: Search) -> SearchType:
    """The type asked for; else hybrid when the query has words, fulltext when it has none
    (it then lists the most recently updated issues) (docs/decisions/0101)."""
    if args.search_type is not None:
        return SearchType(args.search_type)
    return SearchType.HYBRID if words(args.query) else SearchType.FULLTEXT


async def search(session: Session, args: Search) -> dict[str, Any]:
    tracker_id = project = None
    if args.project is not None:
        tracker, project = await session.refs.project(args.project)
        tracker_id = tracker.id
    query = IssueQuery(text=args.query, tracker_id=tracker_id, project=project, limit=args.limit)
    try:
        answer = await session.issue_search().search(
            session.account_id, query, search_type_of(args)
        )
    except ValidationError as exc:  # e.g. a similarity search of a query without words
        raise BuiltinToolError(exc.message) from exc
    names = {t.id: t.name for t in await session.refs.trackers()}
    return {
        "search_type": answer.search_type.value,
        "engine": answer.engine,
        "model": answer.model,
        "pending": answer.pending,
        "query": args.query,
        "results": [
            _summary(h.issue, names.get(h.issue.tracker_id, "")) | {"score": round(h.score, 6)}
            for h in answer.hits
        ],
    }


async def estimate_compliance(session: Session, args: Compliance) -> dict[str, Any]:
    return await _compliance(session, args, improve=False)


async def improve_compliance(session: Session, args: Compliance) -> dict[str, Any]:
    return await _compliance(session, args, improve=True)


async def _compliance(session: Session, args: Compliance, *, improve: bool) -> dict[str, Any]:
    """Each issue scored (hub/compliance: the model when configured, else the rules), a few at
    a time (a model call takes a while); one that cannot be found gets an ``error`` entry of
    its own. Results keep the order of ``issues``."""
    limit = asyncio.Semaphore(_SCORED_AT_ONCE)

    async def one(reference: str) -> dict[str, Any]:
        async with limit:
            try:
                issue = await session.indexed(await session.refs.locate(reference, "issue"))
            except (BuiltinToolError, TrackerError) as exc:
                return {"issue": reference, "error": exc.message}
            shown = {"issue": issue.key, "title": issue.title, "url": issue.url}
            scored = await session.compliance.assess(
                session.account_id, issue, args.compliance_metric, improve=improve
            )
            return shown | scored

    results = await asyncio.gather(*(one(reference) for reference in args.issues))
    return {
        "engine": session.compliance.engine,
        "compliance_metric": args.compliance_metric,
        "results": list(results),
    }


async def get_pull_request(session: Session, args: GetPullRequest) -> dict[str, Any]:
    """From the index unless the diff (never indexed) or a refresh is asked for."""
    found = await session.pull_request(args.pull_request, GET_PULL_REQUEST)
    result: dict[str, Any]
    if found.issue is not None and not (args.include_diff or args.refresh):
        issue = found.issue
        result = {"source": "index"}
        if args.include_comments:
            stored = await session.storage.issues.comments(session.account_id, issue.id)
            result["comments"] = comment_views(stored)
    else:
        async with session.client(found.tracker) as client:
            live = await client.get_pull_request(
                found.project,
                found.number,
                include_comments=args.include_comments,
                include_diff=args.include_diff,
            )
        issue = await session.syncer.write_remote(
            found.tracker,
            found.project,
            live.pull_request,
            live.comments if args.include_comments else None,
        )
        result = {"source": "live"}
        if args.include_comments:
            result["comments"] = comment_views(live.comments)
        if args.include_diff:
            result["diff"] = live.diff
    return {"pull_request": issue_view(issue, found.tracker.name)} | result


def _summary(issue: Issue, tracker: str) -> dict[str, Any]:
    return {
        "id": issue.id,
        "key": issue.key,
        "tracker": tracker,
        "project": issue.project,
        "kind": issue.kind.value,
        "title": issue.title,
        "state": issue.state,
        "labels": list(issue.labels),
        "url": issue.url,
        "updated_at": issue.updated_at.isoformat(),
    }
