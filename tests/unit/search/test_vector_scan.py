"""The numpy narrowing of exact vector search (server/db/stores/_vector_scan.py) answers what
scoring every candidate in pure Python answers: the same ids, the same scores, the same ties."""

from __future__ import annotations

import random
from array import array

import pytest

from hub.search.embedders import normalised
from hub.search.vectors import top_k
from server.db.stores._vector_scan import from_blob, nearest_blobs


def _blob(vector: tuple[float, ...]) -> bytes:
    return array("f", vector).tobytes()


def _rows(count: int, dims: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    rows = [
        (f"i{n:05d}", _blob(normalised([rng.gauss(0, 1) for _ in range(dims)])))
        for n in range(count)
    ]
    twin = rows[7][1]  # exact ties: the same vector under several ids, across chunks
    rows += [(f"t{n:04d}", twin) for n in range(0, 3000, 97)]
    rows.append(("zero", _blob(tuple(0.0 for _ in range(dims)))))
    rng.shuffle(rows)
    return rows


def _reference(query, rows, k, min_score=None):  # type: ignore[no-untyped-def]
    candidates = [(i, from_blob(b)) for i, b in rows if any(from_blob(b))]
    return top_k(query, candidates, k, min_score=min_score)


@pytest.mark.parametrize("k", [1, 10, 37, 200])
def test_the_narrowed_answer_is_the_exact_answer(k: int) -> None:
    dims = 24
    rows = _rows(2500, dims, seed=k)
    twin = next(from_blob(b) for i, b in rows if i == "t0000")
    for query in (tuple(twin), normalised([0.5 - (n % 3) for n in range(dims)])):
        assert nearest_blobs(query, rows, dims, k) == _reference(query, rows, k)


def test_min_score_ties_and_zero_vectors() -> None:
    dims = 16
    rows = _rows(1500, dims, seed=3)
    twin = tuple(next(from_blob(b) for i, b in rows if i == "t0000"))
    found = nearest_blobs(twin, rows, dims, 50, min_score=0.5)
    assert found == _reference(twin, rows, 50, min_score=0.5)
    ties = [s.id for s in found if s.score == found[0].score]
    assert len(ties) >= 30  # every twin
    assert ties == sorted(ties)  # ordered by id
    assert all(s.score >= 0.5 for s in found)
    assert "zero" not in {s.id for s in nearest_blobs(twin, rows, dims, 5000)}


def test_a_zero_query_or_no_k_finds_nothing() -> None:
    rows = _rows(10, 4, seed=1)
    assert nearest_blobs((0.0, 0.0, 0.0, 0.0), rows, 4, 5) == []
    assert nearest_blobs((1.0, 0.0, 0.0, 0.0), rows, 4, 0) == []


def test_ties_beyond_the_short_list_keep_the_smallest_ids() -> None:
    """200 identical vectors in one chunk and k = 1: the short list (4k + 32) is smaller than
    the tie, and the answer is still the smallest id, as scoring every row gives."""
    same = _blob(normalised([1.0, 2.0, 3.0]))
    rows = [(f"z{n:03d}", same) for n in range(200, 0, -1)]
    rows += [(f"a{n:03d}", _blob(normalised([3.0, -1.0, float(n)]))) for n in range(300)]
    query = normalised([1.0, 2.0, 3.0])
    found = nearest_blobs(query, rows, 3, 1)
    assert found == _reference(query, rows, 1)
    assert found[0].id == "z001"
