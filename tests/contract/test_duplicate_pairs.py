"""The duplicate-pair store (hub/search/duplicate_store.py ``DuplicatePairStore``) on every
backend: pairs kept in one order, verdicts and resolutions written apart, scoped by account,
removed with their issues."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.errors import NotFoundError, ValidationError
from hub.ports import Storage
from hub.search.duplicate_records import (
    Classification,
    DuplicatePair,
    PairResolution,
    PairVerdict,
    Resolution,
)
from hub.search.duplicate_store import DuplicatePairStore
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.ports import TrackerStorage
from server.db import SqlStorage
from server.db.stores.duplicates import SqlDuplicatePairs

from .records import new_account
from .test_trackers import T0, issue, tracker


@pytest.fixture
def pairs(storage: Storage, trackers: TrackerStorage) -> DuplicatePairStore:
    if isinstance(storage, SqlStorage):
        return SqlDuplicatePairs(storage.database)
    assert isinstance(trackers, InMemoryTrackerStorage)
    return trackers.duplicates


def verdict(kind: Classification = Classification.DUPLICATE) -> PairVerdict:
    return PairVerdict(
        model="gpt-fake",
        hash_a="a" * 64,
        hash_b="b" * 64,
        classification=kind,
        reason="same crash",
        suggestion="close the newer one",
        asked_at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
    )


def resolution(
    kind: Resolution = Resolution.DUPLICATE, canonical: str | None = None
) -> PairResolution:
    return PairResolution(
        resolution=kind, canonical_id=canonical, resolved_by="key_admin", resolved_at=T0
    )


async def seeded(storage: Storage, trackers: TrackerStorage) -> tuple[str, list[str]]:
    account = await new_account(storage)
    trk = tracker(account)
    await trackers.trackers.add(trk)
    ids = [(await trackers.issues.upsert(issue(trk, n))).id for n in (1, 2, 3)]
    return account, ids


async def test_a_pair_is_one_row_in_either_order_with_verdict_and_resolution_apart(
    storage: Storage, trackers: TrackerStorage, pairs: DuplicatePairStore
) -> None:
    account, (one, two, _) = await seeded(storage, trackers)

    await pairs.save_verdict(account, two, one, verdict())
    await pairs.resolve(account, one, two, resolution(canonical=one))
    await pairs.save_verdict(account, one, two, verdict(Classification.OVERLAPPING))

    expected = DuplicatePair(
        account_id=account,
        issue_a=min(one, two),
        issue_b=max(one, two),
        verdict=verdict(Classification.OVERLAPPING),
        resolution=resolution(canonical=one),
    )
    assert expected == await pairs.get(account, two, one)
    assert expected == await pairs.get(account, one, two)
    assert [expected] == list(await pairs.involving(account, [two]))
    assert await pairs.get(account, one, "iss_nope") is None


async def test_a_resolution_is_replaced_and_the_verdict_stays(
    storage: Storage, trackers: TrackerStorage, pairs: DuplicatePairStore
) -> None:
    account, (one, two, three) = await seeded(storage, trackers)
    await pairs.resolve(account, one, two, resolution())
    await pairs.resolve(account, one, three, resolution())

    await pairs.resolve(account, two, one, resolution(Resolution.NOT_DUPLICATE))

    found = await pairs.get(account, one, two)
    assert found is not None
    assert found.verdict is None
    assert found.resolution == resolution(Resolution.NOT_DUPLICATE)
    both = await pairs.involving(account, [one])
    assert [sorted((one, two)), sorted((one, three))] == sorted(
        [[p.issue_a, p.issue_b] for p in both]
    )
    assert [] == list(await pairs.involving(account, []))


async def test_pairs_belong_to_their_account_and_name_its_issues(
    storage: Storage, trackers: TrackerStorage, pairs: DuplicatePairStore
) -> None:
    account, (one, two, _) = await seeded(storage, trackers)
    other, (elsewhere, *_) = await seeded(storage, trackers)
    await pairs.resolve(account, one, two, resolution())

    assert await pairs.get(other, one, two) is None
    assert [] == list(await pairs.involving(other, [one, two]))
    with pytest.raises(NotFoundError):
        await pairs.resolve(account, one, elsewhere, resolution())  # another account's issue
    with pytest.raises(NotFoundError):
        await pairs.save_verdict(account, one, "iss_missing", verdict())
    with pytest.raises(ValidationError, match="itself"):
        await pairs.resolve(account, one, one, resolution())


async def test_removing_a_tracker_removes_the_pairs_of_its_issues(
    storage: Storage, trackers: TrackerStorage, pairs: DuplicatePairStore
) -> None:
    account, (one, two, _) = await seeded(storage, trackers)
    await pairs.save_verdict(account, one, two, verdict())
    (trk,) = await trackers.trackers.list(account)

    await trackers.trackers.remove(account, trk.id)

    assert await pairs.get(account, one, two) is None
    assert [] == list(await pairs.involving(account, [one, two]))
