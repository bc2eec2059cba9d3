"""Duplicate detection end to end on every backend: the seeded set of
tests/unit/search/duplicates.py scanned in memory, on SQLite (exact search over float32 blobs)
and on PostgreSQL with pgvector (HNSW): the same pairs, the same candidates, resolutions kept
in the database."""

from __future__ import annotations

import msgspec

from hub.clock import FrozenClock
from hub.ports import Storage
from hub.search.duplicate_records import Resolution
from hub.search.duplicate_store import DuplicatePairStore
from hub.search.duplicates import Duplicates
from hub.search.embedders import HashingEmbedder
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.ports import TrackerStorage
from server.db import SqlStorage
from server.db.stores.duplicates import SqlDuplicatePairs
from tests.unit.search.duplicate_world import T0, seeded_issue, tracker
from tests.unit.search.duplicates import DUPLICATES, ISSUES, measure, similarities

from .records import new_account
from .test_issue_vectors import backend, backend_url, storage, trackers  # noqa: F401


def pairs_of(storage: Storage, trackers: TrackerStorage) -> DuplicatePairStore:  # noqa: F811
    if isinstance(storage, SqlStorage):
        return SqlDuplicatePairs(storage.database)
    assert isinstance(trackers, InMemoryTrackerStorage)
    return trackers.duplicates


async def test_the_scan_finds_the_seeded_duplicates_on_every_backend(
    backend: tuple[str, Storage, str | None],  # noqa: F811
    storage: Storage,  # noqa: F811
    trackers: TrackerStorage,  # noqa: F811
) -> None:
    kind = backend[0]
    account = await new_account(storage)
    await trackers.trackers.add(msgspec.structs.replace(tracker(), account_id=account))
    for name, text in ISSUES.items():
        issue = msgspec.structs.replace(seeded_issue(name, text), account_id=account)
        await trackers.issues.upsert(issue)
    duplicates = Duplicates(trackers, pairs_of(storage, trackers), HashingEmbedder, FrozenClock(T0))

    scan = await duplicates.scan(account, limit=100)
    one = await duplicates.issue(account, "acme/app#perf-3")
    await duplicates.resolve(
        account,
        one,
        await duplicates.issue(account, "iss-perf-4"),
        Resolution.NOT_DUPLICATE,
        canonical=None,
        actor="k",
    )
    after = await duplicates.of_issue(account, one)

    found = {(p.a.number, p.b.number) for p in scan.pairs}
    assert measure(await similarities(HashingEmbedder()), 0.45).found == found
    assert 8 == len(found & DUPLICATES)
    assert {"pgvector": "pgvector-hnsw"}.get(kind, "exact") == scan.engine
    assert [] == [c.issue.number for c in after.candidates]
