"""The hashing embedder: deterministic across processes, unit vectors of its dimensions, any
text (empty, non-ASCII) accepted, and an identity that names it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from hub.search import Embedder, EmbedderIdentity, HashingEmbedder
from hub.search.embedders import features

ROOT = Path(__file__).parents[3]
TEXTS = ["Login fails with 500 after a password reset", "Ünïcödé: 日本語のテキスト 🚀", "x"]


def test_the_same_text_gives_the_same_vector_in_another_process() -> None:
    script = (
        "import asyncio, json, sys\n"
        "from hub.search import HashingEmbedder\n"
        "texts = json.loads(sys.stdin.read())\n"
        "print(json.dumps(asyncio.run(HashingEmbedder().embed(texts))))\n"
    )
    # another process has another str hash salt: a vector built on hash() would differ
    env = {"PYTHONHASHSEED": "12345", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(TEXTS),
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    ).stdout

    assert [list(HashingEmbedder().embed_one(t)) for t in TEXTS] == json.loads(out)


async def test_a_known_text_has_a_known_vector() -> None:
    # pins the scheme: a change of features, weights or hashing must change the model name
    [vector] = await HashingEmbedder(dimensions=8).embed(["crash on save"])

    expected = [-0.2741, 0.2056, 0.2056, 0.4796, 0.4111, -0.2056, -0.4111, -0.4796]
    assert expected == [round(x, 4) for x in vector]


async def test_vectors_are_unit_length_with_the_embedders_dimensions() -> None:
    for dimensions in (1, 64, 512):
        vectors = await HashingEmbedder(dimensions).embed(TEXTS)

        assert [dimensions] * len(TEXTS) == [len(v) for v in vectors]
        assert all(math.isclose(1.0, math.hypot(*v), rel_tol=1e-9) for v in vectors)


async def test_an_empty_or_featureless_text_gives_the_zero_vector() -> None:
    vectors = await HashingEmbedder(16).embed(["", "  ...  --- !!! "])

    assert [(0.0,) * 16] * 2 == vectors


async def test_an_empty_batch_gives_no_vectors() -> None:
    assert [] == await HashingEmbedder().embed([])


async def test_case_and_punctuation_do_not_matter_but_words_do() -> None:
    embedder = HashingEmbedder()
    a, b, c = await embedder.embed(["Crash on SAVE!", "crash, on save", "crash on load"])

    assert a == b
    assert a != c


def test_non_ascii_words_are_features() -> None:
    found = dict(features("Grüße 日本"))

    expected = {"w:grüße", "w:日本", "b:grüße 日本", "t: gr", "t:üße", "t: 日本", "t:日本 "}
    assert expected <= set(found)


def test_the_identity_names_provider_model_and_dimensions() -> None:
    embedder: Embedder = HashingEmbedder()

    assert "local:hashing-v1@512" == str(embedder.identity)
    assert "local:hashing-v1@64" == str(HashingEmbedder(64).identity)
    assert EmbedderIdentity("local", "hashing-v1", 512) == embedder.identity


def test_the_identity_is_a_frozen_record() -> None:
    identity = HashingEmbedder().identity

    with pytest.raises(AttributeError):
        identity.model = "other"  # type: ignore[misc]
    assert identity == msgspec.json.decode(msgspec.json.encode(identity), type=EmbedderIdentity)


def test_dimensions_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        HashingEmbedder(0)
