"""The wire types of duplicate detection (``/api/v1/issues/duplicates``, docs/search.md)."""

from __future__ import annotations

from datetime import datetime

import msgspec


class DuplicateIssue(msgspec.Struct, frozen=True, kw_only=True):
    """An issue of a pair, briefly (``closed``: its tracker says it is done)."""

    id: str
    key: str
    tracker: str
    project: str
    title: str
    url: str
    state: str
    closed: bool


class DuplicateVerdictView(msgspec.Struct, frozen=True, kw_only=True):
    """A model's verdict: ``classification`` DUPLICATE, OVERLAPPING, UNRELATED or UNCONFIRMED
    (the model could not be asked, or answered something else: ``reason`` says which)."""

    model: str
    classification: str
    reason: str
    suggestion: str
    asked_at: datetime


class DuplicateResolutionView(msgspec.Struct, frozen=True, kw_only=True):
    """A person's decision: ``duplicate`` (``canonical``: the key of the issue that stays,
    when named) or ``not_duplicate``."""

    resolution: str
    canonical: str | None
    resolved_by: str
    resolved_at: datetime


class DuplicateCandidateView(msgspec.Struct, frozen=True, kw_only=True):
    issue: DuplicateIssue
    score: float  # cosine, on the embedder's own scale
    verdict: DuplicateVerdictView | None = None
    resolution: DuplicateResolutionView | None = None


class DuplicateCandidates(msgspec.Struct, frozen=True, kw_only=True):
    """The issues that may duplicate ``issue``, best first, and what found them."""

    issue: DuplicateIssue
    model: str  # the embedder's identity
    engine: str  # pgvector-hnsw, exact, none
    threshold: float
    count: int
    candidates: list[DuplicateCandidateView]


class DuplicatePairView(msgspec.Struct, frozen=True, kw_only=True):
    a: DuplicateIssue
    b: DuplicateIssue
    score: float
    verdict: DuplicateVerdictView | None = None
    resolution: DuplicateResolutionView | None = None


class DuplicatePairs(msgspec.Struct, frozen=True, kw_only=True):
    """Candidate pairs of a project (or of the account), best first: ``issues`` compared,
    ``embedded`` of them embedded for this scan."""

    model: str
    engine: str
    threshold: float
    issues: int
    embedded: int
    count: int
    pairs: list[DuplicatePairView]


class DuplicateResolved(msgspec.Struct, frozen=True, kw_only=True):
    a: DuplicateIssue
    b: DuplicateIssue
    resolution: DuplicateResolutionView
    verdict: DuplicateVerdictView | None = None
