"""The product description's REST API over synced trackers, and the trackers' webhooks.

    POST /projects/test-connection   {organization, project} → {success, message, details}
    GET  /issues/search              the synced index (full-text; the engine is named)
    POST /issues                     created in the tracker, then indexed (201)
    POST /webhooks/{tracker_id}      public: the tracker's own signature is the proof (202)

``organization`` + ``project`` are the tracker's own identifiers: GitHub owner + repo, GitLab
group (with subgroups) + project, Jira site (``acme.atlassian.net`` or ``acme``) + project key
(docs/decisions/0095). ``tracker`` picks one tracker when several sync the same project.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from hub.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    TrackerError,
    ValidationError,
)
from hub.records import Role
from hub.search.gateway_embedder import EmbeddingError
from hub.search.records import SearchAnswer, SearchType
from hub.trackers.records import Issue, IssueDraft, IssueQuery
from hub.wire import ConnectionTest, IssueSearchResults, IssueView, WebhookAccepted
from server.api.deps import caller_of, hub_of
from server.api.trackers import connection_test, trackers_of
from server.auth import AGENT, READ, public, roles
from server.hub_services import Hub

READ_OR_ACT = (*READ, Role.AGENT)  # reading issues: people, and the agents that work on them
Text = Annotated[str, msgspec.Meta(max_length=500)]


class ProjectRef(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A project by the tracker's own identifiers (``organization`` may be left out when
    ``project`` is the whole identifier: ``owner/repo``, ``group/project``, ``PROJ``)."""

    organization: Text | None = None
    project: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    tracker: Text | None = None


class IssueCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    organization: Text | None = None
    project: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    tracker: Text | None = None
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    description: Annotated[str, msgspec.Meta(max_length=65536)] = ""
    labels: Annotated[list[Text], msgspec.Meta(max_length=100)] = []
    priority: Text | None = None
    assignee: Text | None = None
    status: Text | None = None
    issue_type: Text | None = None  # Jira: "Task" when absent


def issue_view(issue: Issue, tracker: str) -> IssueView:
    return IssueView(
        id=issue.id,
        key=issue.key,
        tracker=tracker,
        project=issue.project,
        number=issue.number,
        kind=issue.kind.value,
        title=issue.title,
        description=issue.body,
        status=issue.state,
        labels=list(issue.labels),
        assignees=list(issue.assignees),
        priority=issue.priority,
        author=issue.author,
        url=issue.url,
        created_at=issue.created_at,
        updated_at=issue.updated_at,
        synced_at=issue.synced_at,
        extra=issue.extra,
    )


class ProjectController(Controller):
    path = "/projects"
    tags = ["issues"]

    @post("/test-connection", opt=roles(READ_OR_ACT, raises=(NotFoundError,)), status_code=200)
    async def test_connection(
        self, request: Request[Any, Any, Any], data: JSONBody[ProjectRef]
    ) -> ConnectionTest:
        """Whether the tracker syncing the project answers for it with its token:
        ``success``, a ``message`` (the tracker's error when it refuses) and the project's
        ``details``. 404 when no connected tracker syncs the project."""
        hub, caller = hub_of(request), caller_of(request)
        service = trackers_of(hub)
        where = await service.locate(
            caller.account_id, data.organization, data.project, tracker=data.tracker
        )
        test = await service.test_project(where.tracker, where.project)
        return connection_test(where.tracker, test)


class IssueController(Controller):
    path = "/issues"
    tags = ["issues"]

    @get("/search", opt=roles(READ_OR_ACT, raises=(NotFoundError, EmbeddingError)))
    async def search(
        self,
        request: Request[Any, Any, Any],
        organization: Annotated[str | None, QueryParameter(max_length=500)] = None,
        project: Annotated[str | None, QueryParameter(max_length=500)] = None,
        text: Annotated[str, QueryParameter(name="query", max_length=2000)] = "",
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
        search_type: Annotated[
            SearchType,
            QueryParameter(
                description="fulltext (the query's words), similarity (the query's meaning, "
                "by embeddings) or hybrid (both, fused by reciprocal rank)"
            ),
        ] = SearchType.FULLTEXT,
        status: Annotated[str | None, QueryParameter(max_length=500)] = None,
        labels: Annotated[list[str] | None, QueryParameter(max_items=100)] = None,
        assignee: Annotated[str | None, QueryParameter(max_length=500)] = None,
        priority: Annotated[str | None, QueryParameter(max_length=500)] = None,
        last_updated_before: Annotated[datetime | None, QueryParameter()] = None,
        last_updated_after: Annotated[datetime | None, QueryParameter()] = None,
        tracker: Annotated[str | None, QueryParameter(max_length=500)] = None,
    ) -> IssueSearchResults:
        """Search the synced issues and pull/merge requests. ``search_type`` ``fulltext``
        (the default): every query word may match the title or description (ranked by how
        many do, title words counting double, then the most recently updated);
        ``similarity``: the issues nearest the query's meaning (cosine of embeddings; a query
        is required); ``hybrid``: both lists fused by reciprocal rank. The filters narrow;
        ``labels`` (repeated, or comma-separated) must all be present. The answer names the
        ``search_type``, the ``engine`` and embedding ``model`` that answered, each result's
        ``score``, and ``pending``: issues not embedded yet (docs/search.md)."""
        hub, caller = hub_of(request), caller_of(request)
        service = trackers_of(hub)
        wanted = tuple(
            label.strip() for item in labels or () for label in item.split(",") if label.strip()
        )
        issue_query = IssueQuery(
            text=text or None,
            state=status or None,
            labels=wanted,
            assignee=assignee or None,
            priority=priority or None,
            updated_before=_aware(last_updated_before, "last_updated_before"),
            updated_after=_aware(last_updated_after, "last_updated_after"),
            limit=limit,
        )
        narrowed = await service.narrowed(
            caller.account_id,
            issue_query,
            organization=organization or None,
            project=project or None,
            tracker=tracker or None,
        )
        answer = await _search(hub, caller.account_id, narrowed, search_type)
        names = {t.id: t.name for t in await service.list(caller.account_id)}
        results = [
            msgspec.structs.replace(
                issue_view(h.issue, names.get(h.issue.tracker_id, "")), score=h.score
            )
            for h in answer.hits
        ]
        return IssueSearchResults(
            search_type=answer.search_type.value,
            engine=answer.engine,
            model=answer.model,
            pending=answer.pending,
            query=text,
            count=len(results),
            results=results,
        )

    @post("/", opt=roles(AGENT, raises=(NotFoundError, TrackerError)), status_code=201)
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[IssueCreate]
    ) -> IssueView:
        """Create an issue in the tracker syncing the project, then index it as the tracker
        answered (an agent or admin key). 502 with the tracker's message when it refuses."""
        hub, caller = hub_of(request), caller_of(request)
        service = trackers_of(hub)
        where = await service.locate(
            caller.account_id, data.organization, data.project, tracker=data.tracker
        )
        draft = IssueDraft(
            title=data.title,
            description=data.description,
            labels=tuple(data.labels),
            assignee=data.assignee,
            priority=data.priority,
            status=data.status,
            issue_type=data.issue_type,
        )
        issue = await service.create_issue(caller.account_id, where, draft, actor=caller.key_id)
        if hub.indexer is not None:  # embedded at once, in the background
            hub.indexer.kick()
        return issue_view(issue, where.tracker.name)


async def _search(hub: Hub, account_id: str, query: IssueQuery, kind: SearchType) -> SearchAnswer:
    if hub.issue_search is None:  # never with trackers (trackers_of refused already)
        raise ConfigError("this server has no issue search")
    return await hub.issue_search.search(account_id, query, kind)


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValidationError(f"{name}: give a time zone (e.g. 2026-01-31T00:00:00Z)")
    return value


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["trackers"]

    @post(
        "/{tracker_id:str}",
        opt=public(raises=(AuthenticationError, ConflictError, PayloadTooLargeError)),
        status_code=202,
    )
    async def receive(
        self, request: Request[Any, Any, Any], tracker_id: FromPath[str]
    ) -> WebhookAccepted:
        """A tracker's webhook delivery (no API key: the tracker's own signature is the proof:
        GitHub ``X-Hub-Signature-256``, GitLab ``X-Gitlab-Token`` or a Standard Webhooks
        signature, Jira ``X-Hub-Signature``). Stored in the durable inbox and answered 202 at
        once. 401 forged or unsigned, 409 a delivery id received before, 413 over the body
        limit, 400 not a JSON object: none of them changes anything."""
        hub = hub_of(request)
        service = trackers_of(hub)
        limit = hub.settings.server.max_body_bytes
        if (request.content_length or 0) > limit:
            raise _too_large(limit)
        account = await hub.identity.default_account()
        tracker = await service.by_id(account.id, tracker_id)
        body = await _read_capped(request, limit)
        delivery = await service.receive(tracker, dict(request.headers), body)
        return WebhookAccepted(
            id=delivery.id,
            delivery_id=delivery.delivery_id,
            event=delivery.event,
            state=delivery.state.value,
        )


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the delivery is over the server's limit of {limit} bytes")


async def _read_capped(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The raw body, refused as soon as it passes ``limit`` (never read whole first)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
