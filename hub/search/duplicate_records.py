"""The records of duplicate detection (issue 16): a pair of issues as Preloop keeps it (the
model's cached verdict, a person's resolution), and what a duplicate check answers.

A pair is always kept in one order, ``issue_a < issue_b`` (``ordered``), so (x, y) and (y, x)
are one pair. ``PairVerdict`` remembers both issues' ``content_hash`` and the model it came
from: it answers again only while all three are unchanged (an edit of either issue, or another
model, asks again), so a verdict is never stale (decision 0105).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec

from hub.errors import ValidationError
from hub.trackers.records import Issue


class Classification(StrEnum):
    """A model's judgement of a candidate pair (upstream's ``duplicate_classification_v1``)."""

    DUPLICATE = "DUPLICATE"  # the same problem or request
    OVERLAPPING = "OVERLAPPING"  # related, partly the same work
    UNRELATED = "UNRELATED"  # similar words, different things
    UNCONFIRMED = "UNCONFIRMED"  # the model could not be asked, or its answer was not valid


class Resolution(StrEnum):
    """What a person decided about a pair."""

    DUPLICATE = "duplicate"
    NOT_DUPLICATE = "not_duplicate"  # never offered as a candidate again


class PairVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """A model's verdict on a pair, for the content it read (``hash_a``, ``hash_b``)."""

    model: str
    hash_a: str
    hash_b: str
    classification: Classification
    reason: str = ""
    suggestion: str = ""
    asked_at: datetime

    def answers(self, model: str, hash_a: str, hash_b: str) -> bool:
        """Whether this verdict still holds: same model, same content, and a real answer
        (an ``UNCONFIRMED`` one is asked again next time)."""
        return self.classification is not Classification.UNCONFIRMED and (
            self.model,
            self.hash_a,
            self.hash_b,
        ) == (model, hash_a, hash_b)


class PairResolution(msgspec.Struct, frozen=True, kw_only=True):
    """A person's decision on a pair: who, when, and (for ``duplicate``) which issue is the
    canonical one (``None``: not said)."""

    resolution: Resolution
    canonical_id: str | None = None
    resolved_by: str
    resolved_at: datetime


class DuplicatePair(msgspec.Struct, frozen=True, kw_only=True):
    """One stored pair (``issue_a < issue_b``): its cached verdict and its resolution."""

    account_id: str
    issue_a: str
    issue_b: str
    verdict: PairVerdict | None = None
    resolution: PairResolution | None = None


def ordered(one: str, other: str) -> tuple[str, str]:
    """The pair's stored order; an issue is never its own duplicate."""
    if one == other:
        raise ValidationError(f"an issue is not a duplicate of itself ({one!r})")
    return (one, other) if one < other else (other, one)


# --- what a check answers ---------------------------------------------------------------------
class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """An issue that may duplicate the one checked: its cosine ``score``, whether it is
    ``closed`` (kept, but marked), and what the model and people said of the pair."""

    issue: Issue
    score: float
    closed: bool
    verdict: PairVerdict | None = None
    resolution: PairResolution | None = None


class CandidatePair(msgspec.Struct, frozen=True, kw_only=True):
    """Two issues of a project that may be duplicates (``a.id < b.id``)."""

    a: Issue
    b: Issue
    score: float
    verdict: PairVerdict | None = None
    resolution: PairResolution | None = None


class DuplicateCheck(msgspec.Struct, frozen=True, kw_only=True):
    """The candidates of one issue or draft, best first, and what found them: the embedder
    identity (``model``), the vector ``engine``, the ``threshold``. ``ready`` is False when
    issues of the project were not embedded yet (``note`` says how many were seen)."""

    model: str
    engine: str
    threshold: float
    candidates: tuple[Candidate, ...] = ()
    ready: bool = True
    note: str = ""


class DuplicateScan(msgspec.Struct, frozen=True, kw_only=True):
    """Every candidate pair of a project (or the account), best first: ``issues`` were
    compared, ``embedded`` of them were embedded for this scan (not indexed yet)."""

    model: str
    engine: str
    threshold: float
    pairs: tuple[CandidatePair, ...] = ()
    issues: int = 0
    embedded: int = 0
