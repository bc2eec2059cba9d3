"""Running Preloop's built-in tools: the pipeline's companion of the ``Upstream`` port
(hub/tool_calls/runs.py ``BuiltinRunner``). A call reaches :meth:`BuiltinTools.run` only
after every check an upstream call passes (role, allow-list, policy, approval, the attempt
record); what it answers is recorded like an upstream's result.

    run(account, tool, arguments) ─▶ arguments decoded (arguments.py; bad ─▶ isError naming it)
      reads  ─▶ the synced index (Hub.trackers); ``refresh: true`` or an issue not yet
                 indexed ─▶ the tracker, live, and the index updated (Syncer)
      writes ─▶ the tracker (Hub.tracker_clients ─▶ TrackerClient) ─▶ the index updated
                 (Syncer.write_remote, the comment upserted)
      a tracker's refusal (TrackerError) ─▶ isError with the tracker's message

The trackers are read from ``access`` on every call (the Hub's ``trackers`` and
``tracker_clients``), so a test or the composition root may set them after start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from hub.builtin_tools import compliance
from hub.builtin_tools.arguments import (
    AddComment,
    Compliance,
    CreateIssue,
    CreatePullRequest,
    GetIssue,
    GetPullRequest,
    Search,
    UpdateComment,
    UpdateIssue,
    UpdatePullRequest,
    decode,
)
from hub.builtin_tools.definitions import DEFINITIONS
from hub.builtin_tools.names import (
    ADD_COMMENT,
    CODE_REVIEW_TOOLS,
    CREATE_ISSUE,
    CREATE_PULL_REQUEST,
    ESTIMATE_COMPLIANCE,
    GET_ISSUE,
    GET_PULL_REQUEST,
    IMPROVE_COMPLIANCE,
    SEARCH,
    UPDATE_COMMENT,
    UPDATE_ISSUE,
    UPDATE_PULL_REQUEST,
)
from hub.builtin_tools.references import (
    CODE_KINDS,
    NO_TRACKER,
    Located,
    References,
    require_kind,
)
from hub.builtin_tools.results import (
    BuiltinToolError,
    comment_view,
    comment_views,
    issue_view,
    ok,
    refused,
    tracker_failed,
)
from hub.clock import Clock
from hub.errors import PreloopError, TrackerError
from hub.ids import new_id
from hub.tool_results import ToolResult
from hub.trackers.ports import TrackerClient, TrackerClients, TrackerStorage
from hub.trackers.records import (
    Issue,
    IssueChanges,
    IssueComment,
    IssueDraft,
    IssueKind,
    IssueQuery,
    PullRequestChanges,
    PullRequestDraft,
    RemoteComment,
    ReviewComment,
    Tracker,
)
from hub.trackers.search import ENGINE as SEARCH_ENGINE
from hub.trackers.sync import Syncer


class TrackerAccess(Protocol):
    """Where the built-in tools find the trackers (server/hub_services.py's ``Hub``)."""

    @property
    def trackers(self) -> TrackerStorage | None: ...

    @property
    def tracker_clients(self) -> TrackerClients | None: ...


@dataclass(frozen=True, slots=True)
class _Call:
    """One call's account and what it reaches."""

    account_id: str
    storage: TrackerStorage
    clients: TrackerClients | None
    syncer: Syncer | None
    refs: References


class BuiltinTools:
    def __init__(self, access: TrackerAccess, clock: Clock) -> None:
        self._access = access
        self._clock = clock
        self._handlers: dict[str, Callable[[_Call, Any], Awaitable[dict[str, Any]]]] = {
            GET_ISSUE: self._get_issue,
            CREATE_ISSUE: self._create_issue,
            UPDATE_ISSUE: self._update_issue,
            SEARCH: self._search,
            ESTIMATE_COMPLIANCE: self._estimate,
            IMPROVE_COMPLIANCE: self._improve,
            ADD_COMMENT: self._add_comment,
            UPDATE_COMMENT: self._update_comment,
            GET_PULL_REQUEST: self._get_pull_request,
            UPDATE_PULL_REQUEST: self._update_pull_request,
            CREATE_PULL_REQUEST: self._create_pull_request,
        }

    async def listed(self, account_id: str) -> list[dict[str, Any]]:
        """The definitions of the tools the account can use: none without a connected
        tracker, the pull-request tools only with a GitHub or GitLab one
        (docs/decisions/0091)."""
        storage = self._access.trackers
        if storage is None:
            return []
        kinds = {t.kind for t in await storage.trackers.list(account_id)}
        if not kinds:
            return []
        code = bool(kinds & CODE_KINDS)
        return [d for d in DEFINITIONS if code or d["name"] not in CODE_REVIEW_TOOLS]

    async def run(self, account_id: str, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """One call of ``tool``; its own failures are ``isError`` results, never raised."""
        handler = self._handlers.get(tool)
        if handler is None:
            return refused(tool, f"{tool!r} is not one of Preloop's built-in tools")
        try:
            args = decode(tool, arguments)
            call = self._call(account_id)
            if not await call.refs.trackers():
                raise BuiltinToolError(NO_TRACKER)
            return ok(await handler(call, args))
        except BuiltinToolError as exc:
            return refused(tool, f"{tool}: {exc.message}")
        except TrackerError as exc:
            return tracker_failed(tool, exc)
        except PreloopError as exc:  # a store refused: say so, as a tool error
            return refused(tool, f"{tool} failed in Preloop: {exc.message}")

    def _call(self, account_id: str) -> _Call:
        storage = self._access.trackers
        if storage is None:
            raise BuiltinToolError(NO_TRACKER)
        clients = self._access.tracker_clients
        syncer = Syncer(storage, clients, self._clock) if clients is not None else None
        return _Call(account_id, storage, clients, syncer, References(storage, account_id))

    # -- reads -------------------------------------------------------------------------------

    async def _get_issue(self, call: _Call, args: GetIssue) -> dict[str, Any]:
        found = await call.refs.locate(args.issue, "issue")
        if found.issue is None or args.refresh:
            issue, source = await self._live(call, found), "live"
        else:
            issue, source = found.issue, "index"
        comments = await call.storage.issues.comments(call.account_id, issue.id)
        return {
            "issue": issue_view(issue, found.tracker.name),
            "comments": comment_views(comments),
            "source": source,
        }

    async def _search(self, call: _Call, args: Search) -> dict[str, Any]:
        tracker_id = project = None
        if args.project is not None:
            tracker, project = await call.refs.project(args.project)
            tracker_id = tracker.id
        query = IssueQuery(
            text=args.query, tracker_id=tracker_id, project=project, limit=args.limit
        )
        issues = await call.storage.issues.search(call.account_id, query)
        names = {t.id: t.name for t in await call.refs.trackers()}
        return {
            "engine": SEARCH_ENGINE,
            "query": args.query,
            "results": [_summary(i, names.get(i.tracker_id, "")) for i in issues],
        }

    async def _estimate(self, call: _Call, args: Compliance) -> dict[str, Any]:
        return await self._compliance(call, args, compliance.estimate)

    async def _improve(self, call: _Call, args: Compliance) -> dict[str, Any]:
        return await self._compliance(call, args, compliance.improve)

    async def _compliance(
        self, call: _Call, args: Compliance, check: Callable[[Issue], dict[str, Any]]
    ) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        for reference in args.issues:
            try:
                found = await call.refs.locate(reference, "issue")
                issue = found.issue or await self._live(call, found)
            except (BuiltinToolError, TrackerError) as exc:
                results.append({"issue": reference, "error": _message(exc)})
                continue
            results.append(
                {"issue": issue.key, "title": issue.title, "url": issue.url} | check(issue)
            )
        return {
            "engine": compliance.ENGINE,
            "compliance_metric": args.compliance_metric,
            "results": results,
        }

    async def _get_pull_request(self, call: _Call, args: GetPullRequest) -> dict[str, Any]:
        found = await self._pull_request(call, args.pull_request, GET_PULL_REQUEST)
        result: dict[str, Any]
        if found.issue is not None and not (args.include_diff or args.refresh):
            issue = found.issue
            result = {"source": "index"}
            if args.include_comments:
                stored = await call.storage.issues.comments(call.account_id, issue.id)
                result["comments"] = comment_views(stored)
        else:
            async with self._client(call, found.tracker) as client:
                live = await client.get_pull_request(
                    found.project,
                    found.number,
                    include_comments=args.include_comments,
                    include_diff=args.include_diff,
                )
            issue = await self._syncer(call).write_remote(
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

    # -- writes ------------------------------------------------------------------------------

    async def _create_issue(self, call: _Call, args: CreateIssue) -> dict[str, Any]:
        tracker, project = await call.refs.project(args.project)
        draft = IssueDraft(
            title=args.title,
            description=args.description,
            labels=args.labels,
            assignee=args.assignee,
            priority=args.priority,
            status=args.status,
        )
        async with self._client(call, tracker) as client:
            remote = await client.create_issue(project, draft)
        issue = await self._syncer(call).write_remote(tracker, project, remote)
        return {"status": "created", "issue": issue_view(issue, tracker.name)}

    async def _update_issue(self, call: _Call, args: UpdateIssue) -> dict[str, Any]:
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
                "nothing to change: give at least one of title, description, status, "
                "priority, assignee, labels"
            )
        found = await call.refs.locate(args.issue, "issue")
        async with self._client(call, found.tracker) as client:
            remote = await client.update_issue(found.project, found.number, changes)
        issue = await self._syncer(call).write_remote(found.tracker, found.project, remote)
        return {"status": "updated", "issue": issue_view(issue, found.tracker.name)}

    async def _add_comment(self, call: _Call, args: AddComment) -> dict[str, Any]:
        if (args.path is None) != (args.line is None):
            raise BuiltinToolError("a review comment needs both 'path' and 'line'")
        found = await call.refs.locate(args.target, "target")
        review = args.path is not None
        if review:
            require_kind(found.tracker, CODE_KINDS, ADD_COMMENT)
            if found.issue is not None and found.issue.kind is not IssueKind.PULL_REQUEST:
                raise BuiltinToolError(
                    f"'path' and 'line' make a review comment, but {found.issue.key} is an "
                    "issue, not a pull or merge request"
                )
        async with self._client(call, found.tracker) as client:
            remote = await client.add_comment(
                found.project,
                found.number,
                args.comment,
                path=args.path,
                line=args.line,
                side=args.side,
                in_reply_to=args.in_reply_to,
            )
        issue = await self._indexed(call, found)
        await self._store_comment(call, found.tracker, issue, remote)
        return {
            "status": "created",
            "comment": comment_view(remote),
            "target": {"key": issue.key, "url": issue.url, "id": issue.id},
        }

    async def _update_comment(self, call: _Call, args: UpdateComment) -> dict[str, Any]:
        if args.body is None and args.resolved is None:
            raise BuiltinToolError("nothing to change: give 'body' or 'resolved'")
        found = await call.refs.locate(args.target, "target")
        require_kind(found.tracker, CODE_KINDS, UPDATE_COMMENT)
        async with self._client(call, found.tracker) as client:
            remote = await client.update_comment(
                found.project,
                found.number,
                args.comment_id,
                body=args.body,
                resolved=args.resolved,
                thread_id=args.thread_id,
                comment_type=args.comment_type,
            )
        issue = await self._indexed(call, found)
        await self._store_comment(call, found.tracker, issue, remote)
        return {
            "status": "updated",
            "comment": comment_view(remote),
            "target": {"key": issue.key, "url": issue.url, "id": issue.id},
        }

    async def _update_pull_request(self, call: _Call, args: UpdatePullRequest) -> dict[str, Any]:
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
        found = await self._pull_request(call, args.pull_request, UPDATE_PULL_REQUEST)
        async with self._client(call, found.tracker) as client:
            remote = await client.update_pull_request(found.project, found.number, changes)
        issue = await self._syncer(call).write_remote(found.tracker, found.project, remote)
        return {
            "status": "updated",
            "review": args.review_action,
            "pull_request": issue_view(issue, found.tracker.name),
        }

    async def _create_pull_request(self, call: _Call, args: CreatePullRequest) -> dict[str, Any]:
        tracker, project = await call.refs.project(args.project, CODE_KINDS)
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
        async with self._client(call, tracker) as client:
            remote = await client.create_pull_request(project, draft)
        issue = await self._syncer(call).write_remote(tracker, project, remote)
        return {"status": "created", "pull_request": issue_view(issue, tracker.name)}

    # -- helpers -----------------------------------------------------------------------------

    async def _pull_request(self, call: _Call, reference: str, tool: str) -> Located:
        found = await call.refs.locate(reference, "pull_request")
        require_kind(found.tracker, CODE_KINDS, tool)
        if found.issue is not None and found.issue.kind is not IssueKind.PULL_REQUEST:
            raise BuiltinToolError(
                f"{found.issue.key} is an issue, not a pull or merge request (use get_issue "
                "or update_issue)"
            )
        return found

    async def _live(self, call: _Call, found: Located) -> Issue:
        """Read an issue (or pull/merge request) from its tracker and index it."""
        if not found.pull_request:
            return await self._syncer(call).refresh_issue(
                found.tracker, found.project, found.number
            )
        async with self._client(call, found.tracker) as client:
            live = await client.get_pull_request(
                found.project, found.number, include_comments=True, include_diff=False
            )
        return await self._syncer(call).write_remote(
            found.tracker, found.project, live.pull_request, live.comments
        )

    async def _indexed(self, call: _Call, found: Located) -> Issue:
        return found.issue if found.issue is not None else await self._live(call, found)

    async def _store_comment(
        self, call: _Call, tracker: Tracker, issue: Issue, remote: RemoteComment
    ) -> None:
        await call.storage.issues.upsert_comment(
            IssueComment(
                id=new_id("cmt"),
                account_id=call.account_id,
                tracker_id=tracker.id,
                issue_id=issue.id,
                external_id=remote.external_id,
                body=remote.body,
                author=remote.author,
                kind=remote.kind,
                url=remote.url,
                created_at=remote.created_at,
                updated_at=remote.updated_at,
                synced_at=self._clock.now(),
            )
        )

    def _syncer(self, call: _Call) -> Syncer:
        if call.syncer is None:
            raise BuiltinToolError(NO_CLIENTS)
        return call.syncer

    @asynccontextmanager
    async def _client(self, call: _Call, tracker: Tracker) -> AsyncIterator[TrackerClient]:
        if call.clients is None:
            raise BuiltinToolError(NO_CLIENTS)
        client = await call.clients.client(tracker)
        try:
            yield client
        finally:
            await client.close()


NO_CLIENTS = (
    "this Preloop server cannot reach issue trackers (no tracker clients are configured); "
    "only reads from the synced index work"
)


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


def _message(exc: BuiltinToolError | TrackerError) -> str:
    return exc.message
