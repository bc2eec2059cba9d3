"""``IssueSearch``: the three kinds of search over synced issues (docs/decisions/0101).

    fulltext    IssueStore.search (words; FTS5 / tsvector where the store has them), each hit
                scored by matched words (title words count double: hub/trackers/search.py)
    similarity  the query embedded by the embedder, then IssueVectorStore.nearest under the
                embedder's identity; scored by cosine (only hits above 0: nothing in common
                is not a result)
    hybrid      both lists, each fetched ``depth(limit)`` deep, fused by reciprocal rank:
                score = Σ 1 / (RRF_K + rank), rank from 1 in each list; ties by issue id

A search embeds only the query, never an issue: issues are embedded by the background indexer
(hub/search/indexer.py). Until it has caught up, similarity finds what is embedded and the
answer's ``pending`` says how many of the account's issues it cannot see yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from hub.errors import ValidationError
from hub.search.embedders import Embedder
from hub.search.ports import IssueVectorStore
from hub.search.records import SearchAnswer, SearchHit, SearchType
from hub.store_rules import check_limit
from hub.trackers.ports import IssueStore, TrackerStore
from hub.trackers.records import Issue, IssueQuery
from hub.trackers.search import ENGINE as FULLTEXT
from hub.trackers.search import score, words

RRF_K = 60  # the constant of Cormack, Clarke and Büttcher (2009), as most engines use it
MIN_DEPTH = 30  # each list of a hybrid search is fetched at least this deep
# cosine above which a hit says something: a zero or negative cosine means no shared feature
MIN_SIMILARITY = 1e-6


class SearchStorage(Protocol):
    """What search reads of ``TrackerStorage``: its trackers, issues and issue vectors."""

    @property
    def trackers(self) -> TrackerStore: ...
    @property
    def issues(self) -> IssueStore: ...
    @property
    def vectors(self) -> IssueVectorStore: ...


def depth(limit: int) -> int:
    """How deep each list of a hybrid search is fetched for ``limit`` fused results."""
    return max(limit * 3, MIN_DEPTH)


def fuse(lists: Sequence[Sequence[Issue]], limit: int, k: int = RRF_K) -> list[SearchHit]:
    """Reciprocal rank fusion of ranked lists: each issue scores Σ 1 / (k + rank) over the
    lists it appears in (rank from 1); best first, ties by issue id; at most ``limit``."""
    scores: dict[str, float] = {}
    issues: dict[str, Issue] = {}
    for ranked in lists:
        for rank, issue in enumerate(ranked, start=1):
            scores[issue.id] = scores.get(issue.id, 0.0) + 1.0 / (k + rank)
            issues[issue.id] = issue
    best = sorted(scores, key=lambda i: (-scores[i], i))[:limit]
    return [SearchHit(issue=issues[i], score=scores[i]) for i in best]


class IssueSearch:
    def __init__(self, storage: SearchStorage, embedder: Embedder) -> None:
        self.storage = storage
        self.embedder = embedder

    @property
    def model(self) -> str:
        """The identity text the embedder's vectors are stored and searched under."""
        return str(self.embedder.identity)

    async def search(
        self, account_id: str, query: IssueQuery, search_type: SearchType
    ) -> SearchAnswer:
        """``query``'s filters narrow every kind; ``query.text`` is what is looked for
        (similarity and hybrid need one: a ``ValidationError`` naming ``query`` without)."""
        check_limit(query.limit)
        search_type = SearchType(search_type)
        if search_type is SearchType.FULLTEXT:
            return SearchAnswer(
                search_type=search_type,
                engine=FULLTEXT,
                model=None,
                hits=tuple(await self._fulltext(account_id, query)),
            )
        text = _needed_text(query, search_type)
        vectors = self.storage.vectors
        pending = await self.pending(account_id)
        if search_type is SearchType.SIMILARITY:
            hits = await self._similar(account_id, text, query)
            return SearchAnswer(
                search_type=search_type,
                engine=vectors.engine,
                model=self.model,
                hits=tuple(hits),
                pending=pending,
            )
        deeper = msgspec.structs.replace(query, limit=depth(query.limit))
        by_words = [h.issue for h in await self._fulltext(account_id, deeper)]
        by_meaning = [h.issue for h in await self._similar(account_id, text, deeper)]
        return SearchAnswer(
            search_type=search_type,
            engine=f"hybrid-rrf({FULLTEXT}+{vectors.engine})",
            model=self.model,
            hits=tuple(fuse([by_words, by_meaning], query.limit)),
            pending=pending,
        )

    async def similar_to_text(
        self,
        account_id: str,
        text: str,
        query: IssueQuery,
        *,
        min_score: float | None = None,
        exclude: Sequence[str] = (),
    ) -> list[SearchHit]:
        """The account's embedded issues nearest ``text`` (an issue's or a draft's text,
        hub/search/text.py), with ``query``'s filters (its ``text`` is ignored) and limit,
        scoring at least ``min_score`` (any score when ``None``), ``exclude`` left out."""
        (vector,) = await self.embedder.embed([text])
        found = await self.storage.vectors.nearest(
            account_id, self.model, vector, query, min_score=min_score, exclude=exclude
        )
        return [SearchHit(issue=issue, score=cosine) for issue, cosine in found]

    async def pending(self, account_id: str) -> int:
        """The account's issues (not deleted) without a vector of the embedder's model.
        Counted as issues minus vectors: an issue deleted after it was embedded still has its
        vector, so this can be lower than the truth, never higher (decision 0101)."""
        trackers = await self.storage.trackers.list(account_id)
        issues = 0
        for tracker in trackers:
            issues += await self.storage.issues.count(account_id, tracker.id)
        embedded = await self.storage.vectors.count(account_id, self.model)
        return max(0, issues - embedded)

    async def _fulltext(self, account_id: str, query: IssueQuery) -> list[SearchHit]:
        found = await self.storage.issues.search(account_id, query)
        query_words = words(query.text)
        return [SearchHit(issue=i, score=float(score(i, query_words))) for i in found]

    async def _similar(self, account_id: str, text: str, query: IssueQuery) -> list[SearchHit]:
        return await self.similar_to_text(account_id, text, query, min_score=MIN_SIMILARITY)


def _needed_text(query: IssueQuery, search_type: SearchType) -> str:
    text = (query.text or "").strip()
    if not text:
        raise ValidationError(
            f"query: a {search_type.value} search compares the query's meaning with the "
            "issues': give the words to look for (a fulltext search lists issues without one)"
        )
    return text
