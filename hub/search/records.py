"""The records of issue search (issue 16): stored vectors, the kinds of search, and what a
search answers (which engine and which embedder served it)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec

from hub.trackers.records import Issue


class IssueVector(msgspec.Struct, frozen=True, kw_only=True):
    """The embedding of one issue by one embedder. Unique per (account, issue, model):
    ``model`` is the embedder's identity text (``provider:model@dims``); ``content_hash`` is
    the issue's ``content_hash`` when it was embedded (another hash: the vector is stale)."""

    account_id: str
    issue_id: str
    model: str
    content_hash: str
    vector: tuple[float, ...]
    embedded_at: datetime


class SearchType(StrEnum):
    FULLTEXT = "fulltext"  # words (the default, as upstream's ``search_type``)
    SIMILARITY = "similarity"  # nearest vectors of the query's embedding
    HYBRID = "hybrid"  # both, fused by reciprocal rank


class SearchHit(msgspec.Struct, frozen=True, kw_only=True):
    """One issue found and its score on the engine's own scale (cosine for similarity, the
    fused reciprocal-rank score for hybrid, matched words for full text)."""

    issue: Issue
    score: float


class SearchAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """What a search found, best first, and what served it: ``engine`` (``fulltext``,
    ``pgvector-hnsw``, ``exact``, ``hybrid-rrf(...)``) and ``model`` (the embedder's identity;
    ``None`` for full text). ``pending``: the account's issues the embedder has not embedded
    yet (the background indexer is still at work; similarity cannot find them until it is);
    0 for full text."""

    search_type: SearchType
    engine: str
    model: str | None
    hits: tuple[SearchHit, ...] = ()
    pending: int = 0
