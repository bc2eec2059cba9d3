"""``IssueSearch`` over the in-memory storage: the three kinds of search, what each answer
says, reciprocal rank fusion, and the texts a search embeds (only the query)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hub.clock import FrozenClock
from hub.errors import ValidationError
from hub.search.embedders import EmbedderIdentity, HashingEmbedder, Vector
from hub.search.indexer import Indexer
from hub.search.records import SearchType
from hub.search.service import RRF_K, IssueSearch, depth, fuse
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.records import IssueQuery
from tests.unit.search.world import ACCOUNT, T0, issue, storage_with, tracker

ISSUES = (
    issue(1, "App crash on startup", "The app crashes right after the splash screen."),
    issue(2, "Startup is slow", "Cold start takes twenty seconds."),
    issue(3, "Crashes when starting offline", "No network: the app crashed while starting."),
    issue(4, "Dark mode colours", "The sidebar is unreadable in dark mode."),
)


class Recording:
    """The hashing embedder, remembering every text it was asked to embed."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder()
        self.texts: list[str] = []

    @property
    def identity(self) -> EmbedderIdentity:
        return self.inner.identity

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.texts.extend(texts)
        return await self.inner.embed(texts)


async def indexed() -> tuple[InMemoryTrackerStorage, Recording]:
    storage = await storage_with(*ISSUES)
    embedder = Recording()
    await Indexer(storage, embedder, FrozenClock(T0)).run_once()
    embedder.texts.clear()
    return storage, embedder


async def test_fulltext_answers_the_store_ranking_with_matched_word_scores() -> None:
    storage, embedder = await indexed()
    search = IssueSearch(storage, embedder)

    answer = await search.search(ACCOUNT, IssueQuery(text="startup crash"), SearchType.FULLTEXT)

    assert ("fulltext", "fulltext", None, 0) == (
        answer.search_type,
        answer.engine,
        answer.model,
        answer.pending,
    )
    # issue 1 has both words in its title (2 + 2), issue 2 one (2)
    assert [("iss_acc_001", 4.0), ("iss_acc_002", 2.0)] == [
        (h.issue.id, h.score) for h in answer.hits
    ]
    assert [] == embedder.texts  # full text embeds nothing


async def test_similarity_embeds_only_the_query_and_names_engine_and_model() -> None:
    storage, embedder = await indexed()
    search = IssueSearch(storage, embedder)

    answer = await search.search(
        ACCOUNT, IssueQuery(text="crashes on start", limit=2), SearchType.SIMILARITY
    )

    assert ("similarity", "exact", "local:hashing-v1@512") == (
        answer.search_type,
        answer.engine,
        answer.model,
    )
    assert ["crashes on start"] == embedder.texts  # never an issue's text
    assert 2 == len(answer.hits)
    assert {"iss_acc_001", "iss_acc_003"} == {h.issue.id for h in answer.hits}
    assert answer.hits[0].score >= answer.hits[1].score > 0


async def test_similarity_keeps_the_filters() -> None:
    storage, embedder = await indexed()
    await storage.issues.upsert(
        issue(5, "App crash on startup again", "Same crash after the splash.", state="closed")
    )
    await Indexer(storage, embedder, FrozenClock(T0)).run_once()
    search = IssueSearch(storage, embedder)

    answer = await search.search(
        ACCOUNT, IssueQuery(text="crash on startup", state="closed"), SearchType.SIMILARITY
    )

    assert ["iss_acc_005"] == [h.issue.id for h in answer.hits]


async def test_similarity_answers_what_is_embedded_and_says_how_many_wait() -> None:
    storage, embedder = await indexed()
    await storage.issues.upsert(issue(5, "App crash on startup, again"))
    await storage.issues.upsert(issue(6, "Crash on startup with a tablet"))
    search = IssueSearch(storage, embedder)

    answer = await search.search(ACCOUNT, IssueQuery(text="crash"), SearchType.SIMILARITY)

    assert 2 == answer.pending
    assert {"iss_acc_005", "iss_acc_006"}.isdisjoint(h.issue.id for h in answer.hits)
    await Indexer(storage, embedder, FrozenClock(T0)).run_once()
    again = await search.search(ACCOUNT, IssueQuery(text="crash"), SearchType.SIMILARITY)
    assert 0 == again.pending
    assert "iss_acc_005" in {h.issue.id for h in again.hits}


async def test_similarity_leaves_out_issues_with_nothing_in_common() -> None:
    storage, embedder = await indexed()
    search = IssueSearch(storage, embedder)

    answer = await search.search(ACCOUNT, IssueQuery(text="!!! ???"), SearchType.SIMILARITY)

    assert () == answer.hits  # the query has no features: its vector is zero


@pytest.mark.parametrize("search_type", [SearchType.SIMILARITY, SearchType.HYBRID])
@pytest.mark.parametrize("text", [None, "", "   "])
async def test_similarity_and_hybrid_need_a_query(
    search_type: SearchType, text: str | None
) -> None:
    storage, embedder = await indexed()
    search = IssueSearch(storage, embedder)

    with pytest.raises(ValidationError) as raised:
        await search.search(ACCOUNT, IssueQuery(text=text), search_type)

    assert raised.value.message.startswith("query: ")


async def test_hybrid_ranks_an_issue_found_by_both_above_one_found_by_one() -> None:
    storage, embedder = await indexed()
    search = IssueSearch(storage, embedder)

    answer = await search.search(ACCOUNT, IssueQuery(text="crash startup"), SearchType.HYBRID)

    assert ("hybrid", "hybrid-rrf(fulltext+exact)", "local:hashing-v1@512") == (
        answer.search_type,
        answer.engine,
        answer.model,
    )
    ids = [h.issue.id for h in answer.hits]
    # 1: both words in full text, nearest by meaning: first in both lists
    assert "iss_acc_001" == ids[0]
    assert 2.0 / (RRF_K + 1) == answer.hits[0].score
    # 3 ("Crashes when starting") shares no whole word with the query: found by meaning only
    fulltext = await search.search(ACCOUNT, IssueQuery(text="crash startup"), SearchType.FULLTEXT)
    assert "iss_acc_003" not in {h.issue.id for h in fulltext.hits}
    assert "iss_acc_003" in ids


def test_fuse_puts_an_issue_of_both_lists_above_the_head_of_one() -> None:
    a, b, c = (issue(n, f"issue {n}") for n in (1, 2, 3))

    fused = fuse([[b, a], [c, a]], limit=10)

    assert [a.id, b.id, c.id] == [h.issue.id for h in fused]  # b and c tie: by id
    assert [2 / 62, 1 / 61, 1 / 61] == [h.score for h in fused]
    assert [a.id] == [h.issue.id for h in fuse([[b, a], [c, a]], limit=1)]


def test_each_hybrid_list_is_fetched_deeper_than_the_limit() -> None:
    assert (30, 30, 60, 300) == (depth(1), depth(10), depth(20), depth(100))


async def test_similar_to_text_excludes_and_keeps_a_floor() -> None:
    storage, embedder = await indexed()
    search = IssueSearch(storage, embedder)
    text = "App crash on startup\n\nThe app crashes right after the splash screen."

    hits = await search.similar_to_text(ACCOUNT, text, IssueQuery(limit=10), min_score=0.3)
    without = await search.similar_to_text(
        ACCOUNT, text, IssueQuery(limit=10), min_score=0.3, exclude=["iss_acc_001"]
    )

    assert "iss_acc_001" == hits[0].issue.id
    assert 1.0 == pytest.approx(hits[0].score)
    assert all(h.score >= 0.3 for h in hits)
    assert "iss_acc_001" not in {h.issue.id for h in without}


async def test_another_account_is_never_searched() -> None:
    storage, embedder = await indexed()
    other = issue(9, "App crash on startup", account_id="other", tracker_id="trk_9")
    await storage.trackers.add(tracker("other", "trk_9"))
    await storage.issues.upsert(other)
    await Indexer(storage, embedder, FrozenClock(T0)).run_once()
    search = IssueSearch(storage, embedder)

    for search_type in SearchType:
        answer = await search.search(ACCOUNT, IssueQuery(text="crash startup"), search_type)
        assert "iss_other_009" not in {h.issue.id for h in answer.hits}
