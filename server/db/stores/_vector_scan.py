"""Exact nearest vectors over float32 blobs, fast: numpy scores every candidate in float32 and
keeps a short list, which ``hub.search.vectors.top_k`` then scores exactly as every store does
(the same cosines, the same ties by id on SQLite, on PostgreSQL without pgvector and in
memory).

The short list is safe: of each chunk of candidates, those whose float32 score is within
``_SLACK`` of the chunk's ``keep``-th best (or better) are kept, ties and near-ties included,
so an exact top-k member can only be dropped if ``keep`` others beat it by more than float32's
rounding can explain. A float32 dot product of unit vectors is off by far less than
``_SLACK`` (about 1e-7 per dimension summed). Zero vectors are near nothing (as the port says)
and never kept.

Measured on the development machine: 10,000 candidates of 512 dimensions, ~1 s per query
scored in pure Python, ~25 ms with this narrowing (docs/performance.md, "Issue search").
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence

import numpy as np

from hub.search.vectors import Scored, top_k

_SLACK = 1e-4  # float32 scores this close to the cut are kept and scored exactly
_CHUNK = 1000


def to_blob(vector: Sequence[float]) -> bytes:
    """``vector`` as stored: little-endian float32 bytes."""
    values = array("f", vector)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


def from_blob(data: bytes) -> array[float]:
    """A stored vector (little-endian float32) as ``array('f')``."""
    values = array("f")
    values.frombytes(data)
    if sys.byteorder == "big":
        values.byteswap()
    return values


def nearest_blobs(
    query: Sequence[float],
    rows: Iterable[tuple[str, bytes]],
    dimensions: int,
    k: int,
    *,
    min_score: float | None = None,
) -> list[Scored]:
    """The ``k`` rows (id, float32 blob of ``dimensions`` values) nearest ``query`` by cosine,
    best first, ties by id; only those scoring at least ``min_score`` when given; zero vectors
    left out. The same answer as ``top_k`` over every row, in a fraction of the time."""
    if k <= 0:
        return []
    unit = np.asarray(query, dtype=np.float64)
    norm = float(np.linalg.norm(unit))
    if norm == 0.0:
        return []
    unit32 = (unit / norm).astype(np.float32)
    keep = 4 * k + 32
    kept: list[tuple[str, bytes]] = []
    chunk: list[tuple[str, bytes]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= _CHUNK:
            kept += _narrow(chunk, unit32, dimensions, keep, min_score)
            if len(kept) > 4 * keep:  # the short list itself stays short
                kept = _narrow(kept, unit32, dimensions, keep, min_score)
            chunk = []
    if chunk:
        kept += _narrow(chunk, unit32, dimensions, keep, min_score)
    candidates = [(id_, from_blob(blob)) for id_, blob in kept]
    return top_k(query, candidates, k, min_score=min_score)


def _narrow(
    rows: list[tuple[str, bytes]],
    unit32: np.ndarray,
    dimensions: int,
    keep: int,
    min_score: float | None,
) -> list[tuple[str, bytes]]:
    """The rows that may belong to the best ``keep`` (see the module docstring)."""
    matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype="<f4")
    matrix = matrix.reshape(len(rows), dimensions)
    scores = matrix @ unit32
    mask = np.any(matrix != 0, axis=1)  # a vector of zeros is near nothing
    if min_score is not None:
        mask &= scores >= min_score - _SLACK
    live = np.flatnonzero(mask)
    if len(live) > keep:
        cut = np.partition(scores[live], len(live) - keep)[len(live) - keep]
        live = live[scores[live] >= cut - _SLACK]
    return [rows[int(i)] for i in live]
