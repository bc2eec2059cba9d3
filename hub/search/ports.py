"""The port of the vector index of synced issues.

``IssueVectorStore``: one vector per (account, issue, embedder identity). The in-memory store
(hub/search/memory.py) and the SQL store (pgvector on PostgreSQL, float32 blobs with exact
search elsewhere) implement it; one contract suite runs on all. The rules of
hub/trackers/ports.py hold: every method is scoped by ``account_id`` (``stale`` spans accounts:
the indexer serves them all), ``get`` answers ``None`` when absent, datetimes are aware UTC, a
negative limit is a ``ValidationError``. Removing a tracker (or an issue) removes its vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hub.search.embedders import Vector
from hub.search.records import IssueVector
from hub.trackers.records import Issue, IssueQuery


class IssueVectorStore(Protocol):
    @property
    def engine(self) -> str:
        """What answers ``nearest``: ``pgvector-hnsw`` (an approximate index) or ``exact``
        (every candidate scored)."""
        ...

    async def put(self, vector: IssueVector) -> None:
        """Insert or replace the vector of (account, issue, model). ``NotFoundError`` when the
        account has no such issue; ``ValidationError`` when the vector's length is not the
        model's dimensions (the number after ``@``) or holds NaN or an infinite value. Values
        are kept as float32 (``get`` answers them rounded so)."""
        ...

    async def get(self, account_id: str, issue_id: str, model: str) -> IssueVector | None: ...

    async def stale(self, model: str, limit: int = 100) -> Sequence[Issue]:
        """Issues of every account, not deleted, that have no vector of ``model`` or one made
        from another ``content_hash``: what the indexer embeds next, least recently synced
        first (``synced_at``, then id)."""
        ...

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
        """Up to ``query.limit`` issues whose vector of ``model`` is nearest ``vector`` by
        cosine, best first (ties by issue id), each with its cosine. Every filter of ``query``
        applies except ``text``; deleted issues only with ``include_deleted``; issues whose
        vector is stale still count (their last vector). With ``min_score`` only those scoring
        at least that; ``exclude``: issue ids left out. A filtered search still answers
        ``limit`` rows when that many match (no post-filtering of a fixed candidate set).
        A vector of zeros (a featureless text) is near nothing: as ``vector`` the answer is
        empty, and stored vectors of zeros are never found (decision 0099). ``vector`` of
        other dimensions than the model's, or holding NaN or infinities: ``ValidationError``."""
        ...

    async def count(self, account_id: str, model: str) -> int:
        """How many of the account's issues have a vector of ``model`` (stale ones included)."""
        ...
