"""Scoring issues for compliance: the model when one is configured, the rules otherwise, and the
cache in between.

    assess(account, issue, metric, improve)
      ─▶ no model configured ─▶ the rules (cheap, deterministic, not cached: decision 0107)
      ─▶ cache (account, issue, metric, mode, model:<name>) with the same content hash and
         catalogue digest ─▶ the kept answer (``cached: true``)
      ─▶ the model through the gateway ─▶ kept, answered
      ─▶ its answer unusable, or the gateway refused (budget, no route, provider down)
         ─▶ the rules, with ``fallback_reason`` (never kept: the model is asked again next time)

Every answer says its ``engine`` (``rules`` or ``model:<name>``) and its ``metric``.
"""

from __future__ import annotations

import logging
from typing import Any

from hub.clock import Clock
from hub.compliance import model, rules
from hub.compliance.catalogue import Catalogue, packaged_catalogue
from hub.compliance.ports import ComplianceResults
from hub.compliance.records import ComplianceResult, Mode, compliance_hash
from hub.errors import PreloopError
from hub.model_gateway.ports import ModelGateway
from hub.trackers.records import Issue

log = logging.getLogger("preloop.compliance")
_ERROR_CHARS = 300


class ComplianceService:
    """``gateway`` and ``model`` together pick the model scorer; without either, the rules."""

    def __init__(
        self,
        catalogue: Catalogue,
        results: ComplianceResults | None,
        clock: Clock,
        *,
        gateway: ModelGateway | None = None,
        model: str = "",
    ) -> None:
        self.catalogue = catalogue
        self._results = results
        self._clock = clock
        self._gateway = gateway
        self.model = model if gateway is not None else ""

    @classmethod
    def rules_only(cls, clock: Clock) -> ComplianceService:
        """The packaged catalogue's rules, nothing cached (no store, no model)."""
        return cls(packaged_catalogue(), None, clock)

    @property
    def engine(self) -> str:
        """The engine asked first: ``model:<name>`` or ``rules``."""
        return model.engine_of(self.model) if self.model else rules.ENGINE

    async def assess(
        self, account_id: str, issue: Issue, metric: str, *, improve: bool = False
    ) -> dict[str, Any]:
        """Upstream's contract for ``issue`` under ``metric`` (one of the catalogue's), plus
        ``engine``, ``metric`` and ``cached`` (and ``fallback_reason`` after a fallback)."""
        chosen = self.catalogue.metric(metric)
        mode: Mode = "improve" if improve else "estimate"
        if not self.model or self._gateway is None:
            return self._rules(chosen.name, issue, improve=improve)
        engine = model.engine_of(self.model)
        content = compliance_hash(issue)
        kept = None
        if self._results is not None:
            kept = await self._results.get(account_id, issue.id, metric, mode, engine)
        if kept and (kept.content_hash, kept.catalogue) == (content, self.catalogue.digest):
            return kept.result | {"engine": engine, "metric": metric, "cached": True}
        try:
            answer = await model.ask(
                self._gateway, self.model, account_id, chosen, issue, improve=improve
            )
        except Exception as exc:  # unusable answer, budget, no route, provider down: rules
            reason = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
            log.warning("compliance: %s fell back to the rules: %s", engine, reason)
            return self._rules(metric, issue, improve=improve) | {"fallback_reason": reason}
        if self._results is not None:
            await self._keep(
                ComplianceResult(
                    account_id=account_id,
                    issue_id=issue.id,
                    metric=metric,
                    mode=mode,
                    engine=engine,
                    content_hash=content,
                    catalogue=self.catalogue.digest,
                    result=answer,
                    created_at=self._clock.now(),
                )
            )
        return answer | {"engine": engine, "metric": metric, "cached": False}

    async def _keep(self, result: ComplianceResult) -> None:
        """Cache ``result``; a store that refuses (the issue was removed meanwhile, the database
        is down) costs the next request a model call, never this answer."""
        assert self._results is not None
        try:
            await self._results.put(result)
        except PreloopError as exc:
            log.warning("compliance: the answer for %s was not cached: %s", result.issue_id, exc)

    def _rules(self, metric: str, issue: Issue, *, improve: bool) -> dict[str, Any]:
        chosen = self.catalogue.metric(metric)
        scored = rules.improve(chosen, issue) if improve else rules.estimate(chosen, issue)
        return scored | {"engine": rules.ENGINE, "metric": metric, "cached": False}
