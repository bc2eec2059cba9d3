"""A small world for the search tests: in-memory tracker storage with one tracker and issues
written as a sync writes them (with a content hash)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import msgspec

from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.records import Issue, Tracker, TrackerKind

T0 = datetime(2026, 12, 1, tzinfo=UTC)
ACCOUNT = "acc"


def tracker(account_id: str = ACCOUNT, tracker_id: str = "trk_1") -> Tracker:
    return Tracker(
        id=tracker_id,
        account_id=account_id,
        name=tracker_id,
        kind=TrackerKind.GITHUB,
        base_url="https://api.github.com",
        token_ref="env:GH",
        projects=("o/r",),
        created_at=T0,
        updated_at=T0,
    )


def issue(
    number: int,
    title: str,
    body: str = "",
    *,
    account_id: str = ACCOUNT,
    tracker_id: str = "trk_1",
    state: str = "open",
) -> Issue:
    digest = hashlib.sha256(msgspec.json.encode([title, body, state])).hexdigest()
    return Issue(
        id=f"iss_{account_id}_{number:03d}",
        account_id=account_id,
        tracker_id=tracker_id,
        project="o/r",
        number=str(number),
        key=f"o/r#{number}",
        external_id=f"ext-{account_id}-{number}",
        title=title,
        body=body,
        state=state,
        created_at=T0,
        updated_at=T0 + timedelta(minutes=number),
        synced_at=T0 + timedelta(seconds=number),
        content_hash=digest,
    )


async def storage_with(*issues: Issue) -> InMemoryTrackerStorage:
    storage = InMemoryTrackerStorage()
    trackers = {(i.account_id, i.tracker_id) for i in issues} or {(ACCOUNT, "trk_1")}
    for account_id, tracker_id in sorted(trackers):
        await storage.trackers.add(tracker(account_id, tracker_id))
    for one in issues:
        await storage.issues.upsert(one)
    return storage
