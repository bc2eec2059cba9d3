"""Embedders: text to unit vectors, each embedder named by an identity.

The port is ``Embedder``: an ``identity`` (provider, model, dimensions; written
``provider:model@dims``) and ``async embed(texts)``, which answers one L2-normalised vector per
text, in order. Vectors of different identities never mix: a stored vector is kept with the
identity that made it, a search compares only vectors of one identity, and a change of model
re-embeds (decision 0097).

``HashingEmbedder`` is the offline default: no provider, no model download, no dependency
beyond the stdlib. It hashes features of the text (signed feature hashing) into a fixed number
of dimensions:

- the lower-cased words (runs of letters and digits, as ``hub.trackers.search``), weight 1.0;
- word bigrams, weight 0.7 (word order: "cannot login" is not "login cannot");
- the character trigrams of each word padded with a space on both sides, weight 0.3 each
  (spelling variants and inflections: "crash", "crashes", "crashed" share trigrams).

Each feature is hashed with BLAKE2b (never Python's ``hash``, which is salted per process), so
the same text gives the same vector in every process, on every platform and every version.
It finds **lexical near-duplicates only**: two texts that say the same thing in other words
score low, and its scores are on its own scale (a paraphrase scores 0.3-0.65 where a
sentence-embedding model scores 0.8-0.9). A similarity threshold therefore belongs to one
embedder identity and is never carried over to another.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

import msgspec

Vector = tuple[float, ...]  # one embedding; an embedder's vectors have length 1 (or are all zero)

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_PERSON = b"preloop-hash-v1"  # BLAKE2b personalisation: a new scheme gets a new model name


class EmbedderIdentity(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which embedder made a vector: ``provider`` (``local``, ``gateway``, …), ``model`` and the
    vector's ``dimensions``. ``str()`` gives ``provider:model@dims``, the key vectors are
    stored and searched under."""

    provider: str
    model: str
    dimensions: int

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}@{self.dimensions}"


class Embedder(Protocol):
    """Turns texts into unit vectors of ``identity.dimensions`` floats, one per text, in
    order. An empty or featureless text gives the zero vector (its cosine with anything is 0)."""

    @property
    def identity(self) -> EmbedderIdentity: ...

    async def embed(self, texts: Sequence[str]) -> list[Vector]: ...


def normalised(values: Sequence[float]) -> Vector:
    """``values`` scaled to length 1; all zeros stay zeros."""
    norm = math.hypot(*values)
    if norm == 0.0:
        return tuple(0.0 for _ in values)
    return tuple(v / norm for v in values)


WORD_WEIGHT = 1.0
BIGRAM_WEIGHT = 0.7
TRIGRAM_WEIGHT = 0.3


class HashingEmbedder:
    """Signed feature hashing of words, word bigrams and character trigrams (see the module
    docstring); deterministic everywhere, about 0.1-0.2 ms per short text, lexical only."""

    MODEL = "hashing-v1"
    # cosine at or above which two texts are duplicate candidates, for this embedder only:
    # measured on tests/unit/search/duplicates.py, decision 0097
    DUPLICATE_THRESHOLD = 0.45

    def __init__(self, dimensions: int = 512) -> None:
        if dimensions < 1:
            raise ValueError(f"dimensions must be at least 1, not {dimensions}")
        self._identity = EmbedderIdentity("local", self.MODEL, dimensions)

    @property
    def identity(self) -> EmbedderIdentity:
        return self._identity

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        return [self.embed_one(text) for text in texts]

    def embed_one(self, text: str) -> Vector:
        """The vector of one text, synchronously (``embed`` is this for each text)."""
        dims = self._identity.dimensions
        values = [0.0] * dims
        for feature, weight in features(text):
            index, sign = _slot(feature, dims)
            values[index] += sign * weight
        return normalised(values)


def features(text: str) -> list[tuple[str, float]]:
    """The weighted features of ``text``; each kind is prefixed so that a word, a bigram and
    a trigram with the same characters land in different slots."""
    words = _WORD.findall(text.lower())
    found: list[tuple[str, float]] = [(f"w:{w}", WORD_WEIGHT) for w in words]
    found += [(f"b:{a} {b}", BIGRAM_WEIGHT) for a, b in itertools.pairwise(words)]
    for word in words:
        padded = f" {word} "
        found += [(f"t:{padded[i : i + 3]}", TRIGRAM_WEIGHT) for i in range(len(padded) - 2)]
    return found


@lru_cache(maxsize=65536)
def _slot(feature: str, dimensions: int) -> tuple[int, float]:
    """The dimension and sign of ``feature``: 8 bytes of BLAKE2b, the low 63 bits pick the
    dimension, the top bit the sign."""
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8, person=_PERSON).digest()
    number = int.from_bytes(digest, "big")
    return (number & 0x7FFF_FFFF_FFFF_FFFF) % dimensions, (-1.0 if number >> 63 else 1.0)
