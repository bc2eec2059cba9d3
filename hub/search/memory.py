"""In-memory vector index: the fake the unit tests plug in, held to the same contract suite as
the SQL store. It reads the issues of an ``InMemoryTrackerStorage`` (``vectors`` of that
storage is one of these) and searches exactly (hub/search/vectors.py ``top_k``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import msgspec

from hub.errors import NotFoundError, ValidationError
from hub.search.embedders import Vector
from hub.search.records import IssueVector
from hub.search.vectors import as_array, top_k
from hub.store_rules import check_limit, stored_copy
from hub.trackers.records import Issue, IssueQuery
from hub.trackers.search import matches

EXACT = "exact"


def model_dimensions(model: str) -> int:
    """The dimensions an identity text (``provider:model@dims``) names."""
    _, _, dims = model.rpartition("@")
    if not dims.isdigit() or int(dims) < 1:
        raise ValidationError(f"embedder identity {model!r} does not end in @<dimensions>")
    return int(dims)


def check_query_vector(model: str, vector: Sequence[float]) -> None:
    """``vector`` has the dimensions of ``model`` and only finite values (as float32, what
    every store keeps: a value beyond float32's range is refused too)."""
    dims = model_dimensions(model)
    if len(vector) != dims:
        raise ValidationError(
            f"a vector of {len(vector)} dimensions for {model} (which has {dims})"
        )
    if not all(map(math.isfinite, as_array(vector))):
        raise ValidationError(f"a vector for {model} holds NaN or an infinite value")


def check_vector(vector: IssueVector) -> None:
    check_query_vector(vector.model, vector.vector)


def as_float32(vector: IssueVector) -> IssueVector:
    """``vector`` with its values rounded to float32, as the SQL stores keep them."""
    return msgspec.structs.replace(vector, vector=tuple(as_array(vector.vector)))


def is_zero(vector: Sequence[float]) -> bool:
    """A vector of zeros (a featureless text): its cosine with anything is undefined, so it
    is near nothing (decision 0099)."""
    return not any(vector)


class InMemoryIssueVectors:
    """``issues``: the live issue table of the storage it sits beside (id → issue)."""

    engine = EXACT

    def __init__(self, issues: Callable[[], Mapping[str, Issue]]) -> None:
        self._issues = issues
        self._vectors: dict[tuple[str, str, str], IssueVector] = {}

    def _live(self) -> dict[tuple[str, str, str], IssueVector]:
        """The vectors whose issue still exists (a removed tracker took its issues along)."""
        issues = self._issues()
        self._vectors = {
            k: v
            for k, v in self._vectors.items()
            if (i := issues.get(v.issue_id)) is not None and i.account_id == v.account_id
        }
        return self._vectors

    async def put(self, vector: IssueVector) -> None:
        check_vector(vector)
        issue = self._issues().get(vector.issue_id)
        if issue is None or issue.account_id != vector.account_id:
            raise NotFoundError(
                f"issue {vector.issue_id!r} does not exist in account {vector.account_id!r}"
            )
        copy = stored_copy(as_float32(vector))
        self._live()[(vector.account_id, vector.issue_id, vector.model)] = copy

    async def get(self, account_id: str, issue_id: str, model: str) -> IssueVector | None:
        return self._live().get((account_id, issue_id, model))

    async def stale(self, model: str, limit: int = 100) -> Sequence[Issue]:
        check_limit(limit)
        vectors = self._live()
        found = [
            i
            for i in self._issues().values()
            if not i.deleted
            and (
                (v := vectors.get((i.account_id, i.id, model))) is None
                or v.content_hash != i.content_hash
            )
        ]
        found.sort(key=lambda i: (i.synced_at, i.id))
        return found[:limit]

    async def nearest(
        self,
        account_id: str,
        model: str,
        vector: Vector,
        query: IssueQuery,
        *,
        min_score: float | None = None,
        exclude: Sequence[str] = (),
    ) -> Sequence[tuple[Issue, float]]:
        check_limit(query.limit)
        check_query_vector(model, vector)
        if is_zero(vector):
            return []
        issues = self._issues()
        unfiltered = msgspec.structs.replace(query, text=None)
        skip = set(exclude)
        candidates = [
            (v.issue_id, v.vector)
            for (acct, issue_id, m), v in self._live().items()
            if acct == account_id
            and m == model
            and issue_id not in skip
            and not is_zero(v.vector)
            and matches(issues[issue_id], unfiltered)
        ]
        best = top_k(vector, candidates, query.limit, min_score=min_score)
        return [(issues[s.id], s.score) for s in best]

    async def count(self, account_id: str, model: str) -> int:
        return sum(1 for (a, _, m) in self._live() if a == account_id and m == model)


if TYPE_CHECKING:  # mypy proves the fake keeps the port's shape
    from hub.search.ports import IssueVectorStore

    _store: IssueVectorStore = InMemoryIssueVectors(dict)
