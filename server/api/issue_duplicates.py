"""Duplicate detection over the REST API (issue 16; decisions 0105, 0106):

    GET  /issues/duplicates            candidate pairs of a project (or of every project)
    GET  /issues/{issue}/duplicates    one issue's candidates (``issue``: Preloop's id, or a key
                                       without ``/`` such as ``PROJ-12``)
    GET  /issues/duplicates/candidates?issue=   the same for any id, key or URL
    POST /issues/duplicates/resolve    a person marks a pair duplicate or not (admin, approver)

Reading is open to the roles that search issues (people and agents). ``confirm=true`` asks the
configured duplicate model through the model gateway for each pair shown (cached per pair and
content; 400 when no model is configured).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from hub.errors import ConfigError, NotFoundError
from hub.search.duplicate_records import (
    DuplicatePair,
    PairResolution,
    PairVerdict,
    Resolution,
)
from hub.search.duplicates import Duplicates, is_closed
from hub.trackers.records import Issue
from hub.wire import (
    DuplicateCandidates,
    DuplicateCandidateView,
    DuplicateIssue,
    DuplicatePairs,
    DuplicatePairView,
    DuplicateResolutionView,
    DuplicateResolved,
    DuplicateVerdictView,
)
from server.api.deps import caller_of, hub_of
from server.api.issues import READ_OR_ACT
from server.api.trackers import trackers_of
from server.auth import DECIDE, roles
from server.hub_services import Hub

Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
Threshold = Annotated[float, QueryParameter(ge=0, le=1)]  # 0: the embedder's own
Limit = Annotated[int, QueryParameter(ge=1, le=100)]
Flag = Annotated[bool, QueryParameter()]


class ResolveDuplicate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``issue`` and ``other``: Preloop's ids, keys or URLs; ``canonical`` (``duplicate``
    only): which of the two stays."""

    issue: Ref
    other: Ref
    resolution: Literal["duplicate", "not_duplicate"]
    canonical: Ref | None = None


def duplicates_of(hub: Hub) -> Duplicates:
    if hub.duplicates is None:
        raise ConfigError("this server keeps no tracker storage: no duplicate detection")
    return hub.duplicates


class Views:
    """Issues, verdicts and resolutions as the API shows them (tracker names looked up once)."""

    def __init__(self, names: dict[str, str], keys: dict[str, str] | None = None) -> None:
        self._names = names
        self._keys = keys or {}

    @classmethod
    async def of(cls, hub: Hub, account_id: str) -> Views:
        listed = await trackers_of(hub).list(account_id)
        return cls({t.id: t.name for t in listed})

    def issue(self, issue: Issue) -> DuplicateIssue:
        self._keys[issue.id] = issue.key
        return DuplicateIssue(
            id=issue.id,
            key=issue.key,
            tracker=self._names.get(issue.tracker_id, ""),
            project=issue.project,
            title=issue.title,
            url=issue.url,
            state=issue.state,
            closed=is_closed(issue),
        )

    def verdict(self, verdict: PairVerdict | None) -> DuplicateVerdictView | None:
        if verdict is None:
            return None
        return DuplicateVerdictView(
            model=verdict.model,
            classification=verdict.classification.value,
            reason=verdict.reason,
            suggestion=verdict.suggestion,
            asked_at=verdict.asked_at,
        )

    def resolution(self, resolution: PairResolution | None) -> DuplicateResolutionView | None:
        if resolution is None:
            return None
        canonical = resolution.canonical_id
        return DuplicateResolutionView(
            resolution=resolution.resolution.value,
            canonical=self._keys.get(canonical, canonical) if canonical else None,
            resolved_by=resolution.resolved_by,
            resolved_at=resolution.resolved_at,
        )


class IssueDuplicatesController(Controller):
    path = "/issues"
    tags = ["issues"]

    @get("/duplicates", opt=roles(READ_OR_ACT, raises=(NotFoundError,)))
    async def pairs(
        self,
        request: Request[Any, Any, Any],
        organization: Annotated[str | None, QueryParameter(max_length=500)] = None,
        project: Annotated[str | None, QueryParameter(max_length=500)] = None,
        tracker: Annotated[str | None, QueryParameter(max_length=500)] = None,
        threshold: Threshold = 0.0,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        confirm: Flag = False,
    ) -> DuplicatePairs:
        """Pairs of synced issues that may be duplicates, best first: every pair of a project
        (``project``, with ``organization`` and ``tracker`` as in ``/issues/search``; without
        it every project, each within itself) whose cosine is at or above ``threshold`` (the
        embedder's own when absent or 0). Pairs resolved ``not_duplicate`` are left out.
        ``confirm=true`` adds the duplicate model's verdict to each pair (400 when none is
        configured). Issues not embedded yet are embedded for the scan (``embedded``)."""
        hub, caller = hub_of(request), caller_of(request)
        duplicates = duplicates_of(hub)
        tracker_id, where = None, None
        if project:
            located = await trackers_of(hub).locate(
                caller.account_id, organization, project, tracker=tracker
            )
            tracker_id, where = located.tracker.id, located.project
        elif tracker:
            tracker_id = (await trackers_of(hub).get(caller.account_id, tracker)).id
        scan = await duplicates.scan(
            caller.account_id,
            tracker_id=tracker_id,
            project=where,
            threshold=threshold,
            limit=limit,
            confirm=confirm,
        )
        views = await Views.of(hub, caller.account_id)
        shown = [
            DuplicatePairView(
                a=views.issue(p.a),
                b=views.issue(p.b),
                score=round(p.score, 6),
                verdict=views.verdict(p.verdict),
                resolution=views.resolution(p.resolution),
            )
            for p in scan.pairs
        ]
        return DuplicatePairs(
            model=scan.model,
            engine=scan.engine,
            threshold=scan.threshold,
            issues=scan.issues,
            embedded=scan.embedded,
            count=len(shown),
            pairs=shown,
        )

    @get("/{issue:str}/duplicates", opt=roles(READ_OR_ACT, raises=(NotFoundError,)))
    async def candidates(
        self,
        request: Request[Any, Any, Any],
        issue: FromPath[str],
        threshold: Threshold = 0.0,
        limit: Limit = 5,
        any_project: Flag = False,
        confirm: Flag = False,
    ) -> DuplicateCandidates:
        """The synced issues that may duplicate ``issue`` (Preloop's id, or a key without a
        ``/`` such as Jira's ``PROJ-12``; for ``owner/repo#12`` or a URL use
        ``/issues/duplicates/candidates?issue=``), best first: same project unless
        ``any_project``, closed ones included (``closed``), pairs resolved ``not_duplicate``
        left out. ``confirm=true`` adds the duplicate model's verdicts."""
        return await _candidates(request, issue, threshold, limit, any_project, confirm)

    @get("/duplicates/candidates", opt=roles(READ_OR_ACT, raises=(NotFoundError,)))
    async def candidates_of(
        self,
        request: Request[Any, Any, Any],
        issue: Annotated[str, QueryParameter(min_length=1, max_length=1000)],
        threshold: Threshold = 0.0,
        limit: Limit = 5,
        any_project: Flag = False,
        confirm: Flag = False,
    ) -> DuplicateCandidates:
        """As ``/issues/{issue}/duplicates``, the issue named by ``issue``: Preloop's id, its
        key (``owner/repo#12``, ``group/app!3``, ``PROJ-12``) or its URL."""
        return await _candidates(request, issue, threshold, limit, any_project, confirm)

    @post("/duplicates/resolve", opt=roles(DECIDE, raises=(NotFoundError,)), status_code=200)
    async def resolve(
        self, request: Request[Any, Any, Any], data: JSONBody[ResolveDuplicate]
    ) -> DuplicateResolved:
        """Record a person's decision on a pair (admin or approver): ``duplicate`` (with the
        ``canonical`` issue when one of the two stays) or ``not_duplicate`` (never offered as
        a candidate again). A later decision replaces it; every one is audited
        (``issue.duplicate_resolved``)."""
        hub, caller = hub_of(request), caller_of(request)
        duplicates = duplicates_of(hub)
        account = caller.account_id
        one = await duplicates.issue(account, data.issue, "issue")
        other = await duplicates.issue(account, data.other, "other")
        canonical = (
            await duplicates.issue(account, data.canonical, "canonical") if data.canonical else None
        )
        pair: DuplicatePair = await duplicates.resolve(
            account,
            one,
            other,
            Resolution(data.resolution),
            canonical=canonical,
            actor=caller.key_id,
        )
        views = await Views.of(hub, account)
        a, b = (one, other) if one.id == pair.issue_a else (other, one)
        a_view, b_view = views.issue(a), views.issue(b)
        resolution = views.resolution(pair.resolution)
        assert resolution is not None  # just written
        return DuplicateResolved(
            a=a_view, b=b_view, resolution=resolution, verdict=views.verdict(pair.verdict)
        )


async def _candidates(
    request: Request[Any, Any, Any],
    reference: str,
    threshold: float | None,
    limit: int,
    any_project: bool,
    confirm: bool,
) -> DuplicateCandidates:
    hub, caller = hub_of(request), caller_of(request)
    duplicates = duplicates_of(hub)
    found = await duplicates.issue(caller.account_id, reference)
    check = await duplicates.of_issue(
        caller.account_id,
        found,
        threshold=threshold,
        limit=limit,
        any_project=any_project,
        confirm=confirm,
    )
    views = await Views.of(hub, caller.account_id)
    shown = [
        DuplicateCandidateView(
            issue=views.issue(c.issue),
            score=round(c.score, 6),
            verdict=views.verdict(c.verdict),
            resolution=views.resolution(c.resolution),
        )
        for c in check.candidates
    ]
    return DuplicateCandidates(
        issue=views.issue(found),
        model=check.model,
        engine=check.engine,
        threshold=check.threshold,
        count=len(shown),
        candidates=shown,
    )
