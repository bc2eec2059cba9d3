"""``GET /api/v1/issues/{issue}/compliance``: an issue scored against a compliance metric."""

from __future__ import annotations

import msgspec


class ComplianceAnnotation(msgspec.Struct, frozen=True, kw_only=True):
    text: str  # the part of the issue the note is about ("" when it is about what is missing)
    label: str  # the quality or check it concerns
    status: str  # pass | fail | info
    comment: str = ""


class ComplianceReport(msgspec.Struct, frozen=True, kw_only=True):
    """Upstream's contract (``compliance_factor`` 0..1, ``reason``, ``suggestion``,
    ``annotated_description``), what answered it (``engine``: ``rules`` or ``model:NAME``;
    ``cached``; ``fallback_reason`` when the model's answer could not be used) and, with
    ``improve``, the proposed description and its changes."""

    issue: str  # the issue's key (owner/repo#12, PROJ-7)
    issue_id: str
    title: str
    url: str
    metric: str  # DoR | INVEST | Risk
    engine: str
    cached: bool
    compliance_factor: float
    reason: str
    suggestion: str
    annotated_description: list[ComplianceAnnotation]
    checks: dict[str, bool] | None = None  # the rules: which checks passed
    fallback_reason: str | None = None
    improved_description: str | None = None
    changes: list[str] | None = None
