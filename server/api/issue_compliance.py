"""Compliance of a synced issue over REST:

    GET /issues/{issue}/compliance?metric=DoR&improve=false

``issue`` is Preloop's issue id (``iss_...``) or a key without ``/`` (``PROJ-12``): a ``/``
cannot travel inside one path segment (servers decode ``%2F`` before routing), so any reference
the built-in tools take (``owner/repo#12``, a URL) also works as a query parameter:

    GET /issues/compliance?issue=owner/repo%2312&metric=INVEST

The issue is read from the synced index (live from its tracker when it is not indexed yet)
and scored by ``Hub.compliance``: the model through the gateway when
``PRELOOP_SEARCH_COMPLIANCE_MODEL`` is set, else the catalogue's rules (hub/compliance). People
and agents may read it, like the issue itself.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter

from hub.builtin_tools.results import BuiltinToolError
from hub.builtin_tools.session import Session
from hub.compliance.catalogue import METRICS
from hub.compliance.service import ComplianceService
from hub.errors import ConfigError, NotFoundError, TrackerError, ValidationError
from hub.wire import ComplianceReport
from server.api.deps import caller_of, hub_of
from server.api.issues import READ_OR_ACT
from server.auth import roles

_METRIC = f"^({'|'.join(METRICS)})$"


Metric = Annotated[str, QueryParameter(pattern=_METRIC)]
Improve = Annotated[bool, QueryParameter()]
_RAISES = (NotFoundError, ValidationError, TrackerError)


class IssueComplianceController(Controller):
    path = "/issues"
    tags = ["issues"]

    @get("/{issue:str}/compliance", opt=roles(READ_OR_ACT, raises=_RAISES))
    async def compliance(
        self,
        request: Request[Any, Any, Any],
        issue: FromPath[str],
        metric: Metric = "DoR",
        improve: Improve = False,
    ) -> ComplianceReport:
        """How well the issue meets a compliance metric: ``DoR`` (Definition of Ready),
        ``INVEST`` or ``Risk`` (1.0 is low risk). ``issue`` is Preloop's issue id or a key
        without ``/`` (``PROJ-12``); for ``owner/repo#12`` or a URL use
        ``GET /issues/compliance?issue=...``. Answers upstream's contract
        (``compliance_factor`` 0..1, ``reason``, ``suggestion``, ``annotated_description``)
        and names the ``engine`` (``rules`` or ``model:NAME``), whether the answer was
        ``cached``, and a ``fallback_reason`` when the model's answer could not be used.
        ``improve=true`` adds a proposed ``improved_description`` and its ``changes`` (nothing
        is written). 404 when no connected tracker has the issue."""
        return await _report(request, issue, metric, improve=improve)

    @get("/compliance", opt=roles(READ_OR_ACT, raises=_RAISES))
    async def compliance_of(
        self,
        request: Request[Any, Any, Any],
        issue: Annotated[str, QueryParameter(min_length=1, max_length=2000)],
        metric: Metric = "DoR",
        improve: Improve = False,
    ) -> ComplianceReport:
        """``GET /issues/{issue}/compliance`` for any reference the built-in tools take, in
        the query: an id, a key (``owner/repo#12``, ``group/project!3``, ``PROJ-12``) or the
        issue's URL."""
        return await _report(request, issue, metric, improve=improve)


async def _report(
    request: Request[Any, Any, Any], reference: str, metric: str, *, improve: bool
) -> ComplianceReport:
    hub, caller = hub_of(request), caller_of(request)
    if hub.trackers is None:
        raise ConfigError("this server keeps no tracker storage")
    scorer = hub.compliance or ComplianceService.rules_only(hub.clock)
    session = Session(
        caller.account_id,
        hub.trackers,
        hub.tracker_clients,
        hub.clock,
        hub.search_embedder,
        compliance=scorer,
    )
    try:
        found = await session.indexed(await session.refs.locate(reference.strip(), "issue"))
    except BuiltinToolError as exc:
        raise NotFoundError(f"issue: {exc.message}") from exc
    scored = await scorer.assess(caller.account_id, found, metric, improve=improve)
    shown = {"issue": found.key, "issue_id": found.id, "title": found.title, "url": found.url}
    return msgspec.convert(shown | scored, ComplianceReport)
