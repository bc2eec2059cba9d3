"""The background indexer over the in-memory storage: incremental by content hash, a change
of embedder re-embeds everything, and a failing embedder never stops it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import msgspec
import pytest

from hub.clock import FrozenClock
from hub.errors import ValidationError
from hub.search.embedders import EmbedderIdentity, HashingEmbedder, Vector
from hub.search.indexer import MAX_BACKOFF_SECONDS, Indexer
from hub.search.text import issue_text
from hub.search.vectors import as_array
from tests.unit.search.world import ACCOUNT, T0, issue, storage_with

ISSUES = tuple(issue(n, f"Issue number {n}", f"Body of issue {n}.") for n in range(1, 6))


class Counting:
    """An embedder (the hashing one underneath) that counts calls and texts, and fails
    while ``error`` is set."""

    def __init__(self, dimensions: int = 512) -> None:
        self.inner = HashingEmbedder(dimensions)
        self.calls: list[list[str]] = []
        self.error: Exception | None = None

    @property
    def identity(self) -> EmbedderIdentity:
        return self.inner.identity

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        if self.error is not None:
            raise self.error
        self.calls.append(list(texts))
        return await self.inner.embed(texts)


async def test_every_issue_is_embedded_once_in_one_call_per_batch() -> None:
    storage = await storage_with(*ISSUES)
    embedder = Counting()
    indexer = Indexer(storage, embedder, FrozenClock(T0), batch=3)

    assert [3, 2, 0] == [await indexer.run_once() for _ in range(3)]

    assert [3, 2] == [len(call) for call in embedder.calls]
    assert 5 == await storage.vectors.count(ACCOUNT, "local:hashing-v1@512")
    stored = await storage.vectors.get(ACCOUNT, "iss_acc_001", "local:hashing-v1@512")
    assert stored is not None
    assert ISSUES[0].content_hash == stored.content_hash
    assert T0 == stored.embedded_at
    expected = (await HashingEmbedder().embed([issue_text(ISSUES[0])]))[0]
    assert tuple(as_array(expected)) == stored.vector  # as float32, as every store keeps it


async def test_an_edited_issue_is_embedded_again_once() -> None:
    storage = await storage_with(*ISSUES)
    embedder = Counting()
    indexer = Indexer(storage, embedder, FrozenClock(T0))
    await indexer.run_once()
    embedder.calls.clear()

    edited = issue(2, "Issue number 2", "A new body.")
    await storage.issues.upsert(edited)

    assert [1, 0] == [await indexer.run_once(), await indexer.run_once()]
    assert [[issue_text(edited)]] == embedder.calls
    stored = await storage.vectors.get(ACCOUNT, "iss_acc_002", "local:hashing-v1@512")
    assert stored is not None
    assert edited.content_hash == stored.content_hash


async def test_a_change_of_embedder_re_embeds_everything_and_keeps_the_old_vectors() -> None:
    storage = await storage_with(*ISSUES)
    await Indexer(storage, Counting(), FrozenClock(T0)).run_once()

    smaller = Counting(64)  # another identity: local:hashing-v1@64
    indexer = Indexer(storage, smaller, FrozenClock(T0))
    assert "local:hashing-v1@64" == indexer.model

    assert 5 == await indexer.run_once()
    assert 5 == await storage.vectors.count(ACCOUNT, "local:hashing-v1@64")
    assert 5 == await storage.vectors.count(ACCOUNT, "local:hashing-v1@512")  # kept (0102)
    assert 0 == await indexer.run_once()


async def test_deleted_issues_are_not_embedded() -> None:
    storage = await storage_with(*ISSUES)
    await storage.issues.upsert(msgspec.structs.replace(ISSUES[0], deleted=True))

    assert 4 == await Indexer(storage, Counting(), FrozenClock(T0)).run_once()


async def test_the_next_step_comes_at_once_after_a_full_batch() -> None:
    storage = await storage_with(*ISSUES)
    indexer = Indexer(storage, Counting(), FrozenClock(T0), batch=3)

    assert [0.0, 5.0, 5.0] == [await indexer.step(5.0) for _ in range(3)]


async def test_a_failing_embedder_is_logged_once_retried_later_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = await storage_with(*ISSUES)
    embedder = Counting()
    embedder.error = ValidationError("gateway: no provider routes embeddings-model")
    indexer = Indexer(storage, embedder, FrozenClock(T0))

    with caplog.at_level(logging.INFO, logger="preloop.search"):
        delays = [await indexer.step(5.0) for _ in range(9)]
        assert "gateway: no provider routes embeddings-model" == indexer.failing
        embedder.error = ConnectionError("refused")
        await indexer.step(5.0)
        embedder.error = None
        after = await indexer.step(5.0)

    assert [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0] == delays
    assert MAX_BACKOFF_SECONDS == delays[-1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert 2 == len(warnings)  # once per message, not once per retry
    assert "no provider routes embeddings-model" in warnings[0]
    assert "ConnectionError('refused')" in warnings[1]
    assert 5.0 == after
    assert indexer.failing is None
    assert 5 == await storage.vectors.count(ACCOUNT, "local:hashing-v1@512")


class Short:
    """An embedder that loses a vector."""

    identity = EmbedderIdentity("test", "short", 4)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        return [(1.0, 0.0, 0.0, 0.0)] * (len(texts) - 1)


async def test_an_embedder_answering_too_few_vectors_is_a_failure() -> None:
    storage = await storage_with(*ISSUES)
    indexer = Indexer(storage, Short(), FrozenClock(T0))

    assert 5.0 == await indexer.step(5.0)
    assert indexer.failing is not None
    assert "answered 4 vectors for 5 texts" in indexer.failing
    assert 0 == await storage.vectors.count(ACCOUNT, "test:short@4")


async def test_a_kick_wakes_the_wait() -> None:
    indexer = Indexer(await storage_with(), Counting(), FrozenClock(T0))

    indexer.kick()
    await indexer.wait(3600)  # returns at once: kicked (a missed kick would hang the test)
