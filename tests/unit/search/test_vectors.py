"""Cosine similarity and the exact top-k: scores, order, ties broken by id, filters."""

from __future__ import annotations

import math

import pytest

from hub.search import HashingEmbedder, Scored, as_array, cosine, top_k


def test_cosine_of_known_vectors() -> None:
    assert 1.0 == cosine([1.0, 0.0], [3.0, 0.0])
    assert 0.0 == cosine([1.0, 0.0], [0.0, 2.0])
    assert math.isclose(-1.0, cosine([1.0, 1.0], [-2.0, -2.0]))
    assert math.isclose(1 / math.sqrt(2), cosine([1.0, 0.0], [1.0, 1.0]))


def test_cosine_with_a_zero_vector_is_zero() -> None:
    assert 0.0 == cosine([0.0, 0.0], [1.0, 0.0])


def test_vectors_of_different_dimensions_are_refused() -> None:
    with pytest.raises(ValueError, match="different dimensions"):
        cosine([1.0, 0.0], [1.0, 0.0, 0.0])


def test_top_k_is_best_first_and_cut_at_k() -> None:
    candidates = [("a", [0.0, 1.0]), ("b", [1.0, 0.0]), ("c", [0.6, 0.8]), ("d", [-1.0, 0.0])]

    found = top_k([2.0, 0.0], candidates, 3)

    assert ["b", "c", "a"] == [s.id for s in found]
    assert [1.0, 0.6, 0.0] == [round(s.score, 6) for s in found]


def test_ties_are_broken_by_id() -> None:
    same = [1.0, 0.0]
    candidates = [("m", same), ("c", same), ("x", [0.0, 1.0]), ("a", same), ("k", same)]

    assert ["a", "c", "k"] == [s.id for s in top_k(same, candidates, 3)]


def test_min_score_leaves_out_weaker_candidates() -> None:
    candidates = [("a", [0.0, 1.0]), ("b", [1.0, 0.0]), ("c", [0.6, 0.8])]

    found = top_k([1.0, 0.0], candidates, 10, min_score=0.5)

    assert ["b", "c"] == [s.id for s in found]


def test_no_candidates_or_k_zero_find_nothing() -> None:
    assert [] == top_k([1.0], [], 5)
    assert [] == top_k([1.0], [("a", [1.0])], 0)


async def test_float32_arrays_of_embedded_texts_find_the_near_copy_first() -> None:
    embedder = HashingEmbedder()
    texts = {
        "1": "Export to CSV drops the labels column",
        "2": "Slack notifications are sent twice",
        "3": "Export to CSV drops the labels columns",
    }
    vectors = dict(zip(texts, await embedder.embed(list(texts.values())), strict=True))
    candidates = [(i, as_array(v)) for i, v in vectors.items() if i != "1"]

    found = top_k(vectors["1"], candidates, 2)

    assert ["3", "2"] == [s.id for s in found]
    assert found[0].score > 0.8 > found[1].score
    assert isinstance(found[0], Scored)
