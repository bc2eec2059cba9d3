"""Compliance of a synced issue over REST:

    GET /issues/{issue}/compliance?metric=DoR&improve=false

``issue`` is Preloop's issue id (``iss_...``) or the issue's key (``PROJ-12``, or
``owner/repo#12`` with ``/`` and ``#`` percent-encoded) or its URL, as the built-in tools take
it. The issue is read from the synced index (live from its tracker when it is not indexed yet)
and scored by ``Hub.compliance``: the model through the gateway when
``PRELOOP_SEARCH_COMPLIANCE_MODEL`` is set, else the catalogue's rules (hub/compliance). People
and agents may read it, like the issue itself.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

import msgspec
from litestar import Controller, Request, get
from litestar.params import QueryParameter

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


class IssueComplianceController(Controller):
    path = "/issues"
    tags = ["issues"]

    @get(
        "/{issue:str}/compliance",
        opt=roles(READ_OR_ACT, raises=(NotFoundError, ValidationError, TrackerError)),
    )
    async def compliance(
        self,
        request: Request[Any, Any, Any],
        issue: str,
        metric: Annotated[str, QueryParameter(pattern=_METRIC)] = "DoR",
        improve: Annotated[bool, QueryParameter()] = False,
    ) -> ComplianceReport:
        """How well the issue meets a compliance metric: ``DoR`` (Definition of Ready),
        ``INVEST`` or ``Risk`` (1.0 is low risk). Answers upstream's contract
        (``compliance_factor`` 0..1, ``reason``, ``suggestion``, ``annotated_description``)
        and names the ``engine`` (``rules`` or ``model:NAME``), whether the answer was
        ``cached``, and a ``fallback_reason`` when the model's answer could not be used.
        ``improve=true`` adds a proposed ``improved_description`` and its ``changes`` (nothing
        is written). 404 when no connected tracker has the issue."""
        hub, caller = hub_of(request), caller_of(request)
        if hub.trackers is None:
            raise ConfigError("this server keeps no tracker storage")
        scorer = hub.compliance or ComplianceService.rules_only(hub.clock)
        session = Session(caller.account_id, hub.trackers, hub.tracker_clients, hub.clock, scorer)
        reference = unquote(issue).strip()
        try:
            found = await session.indexed(await session.refs.locate(reference, "issue"))
        except BuiltinToolError as exc:
            raise NotFoundError(f"issue: {exc.message}") from exc
        scored = await scorer.assess(caller.account_id, found, metric, improve=improve)
        shown = {"issue": found.key, "issue_id": found.id, "title": found.title, "url": found.url}
        return msgspec.convert(shown | scored, ComplianceReport)
