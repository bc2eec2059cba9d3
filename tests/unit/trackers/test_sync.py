"""The sync engine (hub/trackers/sync.py) over in-memory storage and a scripted tracker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.clock import FrozenClock
from hub.errors import TrackerError
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.records import IssueQuery, RemoteComment, RemoteIssue, Tracker, TrackerKind
from hub.trackers.sync import Syncer
from tests.unit.trackers.scripted_client import ScriptedTracker

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def remote(number: int, minutes: int, title: str = "") -> RemoteIssue:
    return RemoteIssue(
        external_id=f"ext-{number}",
        number=str(number),
        title=title or f"Issue {number}",
        state="open",
        created_at=T0,
        updated_at=T0 + timedelta(minutes=minutes),
    )


async def setup(
    count: int = 5,
) -> tuple[InMemoryTrackerStorage, ScriptedTracker, Tracker, Syncer, FrozenClock]:
    storage = InMemoryTrackerStorage()
    scripted = ScriptedTracker()
    for n in range(1, count + 1):
        scripted.put("o/r", remote(n, n))
    scripted.comment_lists[("o/r", "1")] = [
        RemoteComment(external_id="c1", body="first", created_at=T0, updated_at=T0)
    ]
    tracker = Tracker(
        id="trk_1",
        account_id="acc",
        name="gh",
        kind=TrackerKind.GITHUB,
        base_url="https://api.github.com",
        token_ref="env:GH",
        projects=("o/r",),
        created_at=T0,
        updated_at=T0,
    )
    await storage.trackers.add(tracker)
    clock = FrozenClock(T0 + timedelta(days=1))
    return storage, scripted, tracker, Syncer(storage, scripted, clock), clock


async def test_a_first_scan_writes_every_issue_and_comment_once() -> None:
    storage, _, tracker, syncer, _ = await setup()
    report = await syncer.scan(tracker)
    assert (report.issues, report.comments, report.errors) == (5, 1, [])
    assert await storage.issues.count("acc", "trk_1") == 5
    again = await syncer.scan(tracker)  # incremental: only the last-updated issue again
    assert again.issues == 1
    assert await storage.issues.count("acc", "trk_1") == 5
    found = await storage.issues.find("acc", "o/r#1")
    assert [c.body for c in await storage.issues.comments("acc", found[0].id)] == ["first"]


async def test_a_crash_mid_scan_resumes_from_the_page_after_the_last_written() -> None:
    storage, scripted, tracker, syncer, _ = await setup()
    scripted.fail_on_page = 1
    report = await syncer.scan(tracker)
    assert report.issues == 2
    assert report.errors == ["scripted failure"]
    resumed = await syncer.scan(tracker)
    assert resumed.issues == 3  # pages 1 and 2, not page 0 again
    assert scripted.requests[-2][2] == "1"
    assert await storage.issues.count("acc", "trk_1") == 5


async def test_a_full_scan_marks_issues_the_tracker_no_longer_has_deleted() -> None:
    storage, scripted, tracker, syncer, clock = await setup()
    await syncer.scan(tracker)
    del scripted.issues[("o/r", "3")]
    clock.advance(60)
    report = await syncer.scan(tracker, full=True)
    assert report.deleted == 1
    hits = await storage.issues.search("acc", IssueQuery(text="Issue", limit=10))
    assert sorted(i.number for i in hits) == ["1", "2", "4", "5"]


async def test_a_tracker_error_names_the_project_on_its_cursor() -> None:
    storage, scripted, tracker, syncer, _ = await setup()
    scripted.fail_on_page = 0
    report = await syncer.scan(tracker)
    cursor = await storage.cursors.get("acc", "trk_1", "o/r")
    assert cursor is not None
    assert cursor.last_error == "scripted failure"
    assert report.errors == ["scripted failure"]
    with pytest.raises(TrackerError):
        await syncer.refresh_issue(tracker, "o/r", "99")
