"""The sync engine (hub/trackers/sync.py) on every tracker storage: a crash in the middle of a
sync resumes without duplicates, "not modified" answers, full scans when due."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from hub.clock import FrozenClock
from hub.errors import TrackerError
from hub.ports import Storage
from hub.trackers.ports import TrackerStorage
from hub.trackers.records import (
    IssuePage,
    IssueQuery,
    RemoteComment,
    RemoteIssue,
    Tracker,
    TrackerKind,
)
from hub.trackers.sync import Syncer
from tests.unit.trackers.scripted_client import ScriptedTracker

from .records import new_account

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


def note(external_id: str, minutes: int = 0) -> RemoteComment:
    at = T0 + timedelta(minutes=minutes)
    return RemoteComment(external_id=external_id, body=external_id, created_at=at, updated_at=at)


class Crash(Exception):
    """The process dies here (what no handler in the engine may swallow)."""


class CrashingTracker(ScriptedTracker):
    """Dies while fetching the comments of issue ``crash_at`` (the issues of its page before
    it are written, the page's cursor is not)."""

    crash_at: str | None = None

    async def comments(self, project: str, number: str) -> list[RemoteComment]:
        if number == self.crash_at:
            self.crash_at = None
            raise Crash
        return list(await super().comments(project, number))


class ETagTracker(ScriptedTracker):
    """Answers an ETag over the first page's content and "not modified" when it matches."""

    async def issues_since(
        self,
        project: str,
        since: datetime | None,
        *,
        page: str | None = None,
        etag: str | None = None,
    ) -> IssuePage:
        answer = await super().issues_since(project, since, page=page)
        if page is not None:
            return answer
        tag = hashlib.sha256(repr((since, answer.items, answer.next_page)).encode()).hexdigest()
        if etag == tag:
            return IssuePage(not_modified=True, etag=tag)
        return IssuePage(items=answer.items, next_page=answer.next_page, etag=tag)


async def _tracker(storage: Storage, trackers: TrackerStorage) -> Tracker:
    account = await new_account(storage, "acme")
    tracker = Tracker(
        id="trk_1",
        account_id=account,
        name="gh",
        kind=TrackerKind.GITHUB,
        base_url="https://api.github.com",
        token_ref="env:GH",
        projects=("o/r",),
        created_at=T0,
        updated_at=T0,
    )
    await trackers.trackers.add(tracker)
    return tracker


def _fill(scripted: ScriptedTracker, count: int) -> None:
    for n in range(1, count + 1):
        scripted.put("o/r", remote(n, n))
        scripted.comment_lists[("o/r", str(n))] = [note(f"c{n}")]


async def _comment_count(trackers: TrackerStorage, tracker: Tracker) -> int:
    issues = await trackers.issues.search(tracker.account_id, IssueQuery(limit=1000))
    return sum([len(await trackers.issues.comments(tracker.account_id, i.id)) for i in issues])


async def test_a_crash_in_the_middle_of_a_page_resumes_without_duplicates(
    storage: Storage, trackers: TrackerStorage
) -> None:
    tracker = await _tracker(storage, trackers)
    scripted = CrashingTracker(page_size=2)
    _fill(scripted, 5)
    scripted.crash_at = "4"  # page 1 (issues 3 and 4): issue 3 is written, then the crash
    clock = FrozenClock(T0 + timedelta(days=1))

    with pytest.raises(Crash):
        await Syncer(trackers, scripted, clock).scan(tracker)
    assert 3 == await trackers.issues.count(tracker.account_id, tracker.id)
    cursor = await trackers.cursors.get(tracker.account_id, tracker.id, "o/r")
    assert cursor is not None
    assert "1" == cursor.page  # page 0 is done; page 1 is where the next scan resumes

    clock.advance(60)
    report = await Syncer(trackers, scripted, clock).scan(tracker)  # a new process

    assert (3, []) == (report.issues, report.errors)  # pages 1 and 2
    assert ("o/r", None, "1") == scripted.requests[-2]  # the full scan's page 1 again
    assert 5 == await trackers.issues.count(tracker.account_id, tracker.id, include_deleted=True)
    assert 0 == report.deleted  # the issues written before the crash count for the scan
    assert 5 == await _comment_count(trackers, tracker)
    done = await trackers.cursors.get(tracker.account_id, tracker.id, "o/r")
    assert done is not None
    assert (None, None, T0 + timedelta(minutes=5)) == (
        done.page,
        done.full_scan_started_at,
        done.updated_since,
    )
    assert done.last_full_scan_at is not None


async def test_a_page_token_the_tracker_refuses_is_dropped_and_the_scan_starts_over(
    storage: Storage, trackers: TrackerStorage
) -> None:
    tracker = await _tracker(storage, trackers)
    scripted = ScriptedTracker(page_size=2)
    _fill(scripted, 5)
    clock = FrozenClock(T0 + timedelta(days=1))
    syncer = Syncer(trackers, scripted, clock)
    await syncer.scan(tracker)  # the full scan
    for n in range(6, 11):
        scripted.put("o/r", remote(n, n))
    scripted.fail_on_page = 1
    await syncer.scan(tracker)  # an incremental scan stops after its first page
    scripted.fail_on_page = 1  # the resumed token fails: expired, say

    refused = await syncer.scan(tracker)

    cursor = await trackers.cursors.get(tracker.account_id, tracker.id, "o/r")
    assert cursor is not None
    assert (["scripted failure"], None, "scripted failure") == (
        refused.errors,
        cursor.page,
        cursor.last_error,
    )
    again = await syncer.scan(tracker)
    assert ([], 10) == (again.errors, await trackers.issues.count(tracker.account_id, tracker.id))
    assert scripted.requests[-3][1] == T0 + timedelta(minutes=6)  # from updated_since


async def test_not_modified_skips_the_project_and_a_change_is_fetched(
    storage: Storage, trackers: TrackerStorage
) -> None:
    tracker = await _tracker(storage, trackers)
    scripted = ETagTracker(page_size=10)
    _fill(scripted, 3)
    clock = FrozenClock(T0 + timedelta(days=1))
    syncer = Syncer(trackers, scripted, clock)
    await syncer.scan(tracker)  # full: no ETag sent
    first = await syncer.scan(tracker)  # incremental: another query, its ETag kept
    assert (1, 0) == (first.issues, first.not_modified)

    unchanged = await syncer.scan(tracker)

    assert (0, 1) == (unchanged.issues, unchanged.not_modified)
    scripted.put("o/r", remote(2, 10, title="Edited"))
    changed = await syncer.scan(tracker)
    assert (2, 0) == (changed.issues, changed.not_modified)  # issue 3 again, and issue 2
    found = await trackers.issues.get_by_number(tracker.account_id, tracker.id, "o/r", "2")
    assert found is not None
    assert "Edited" == found.title


async def test_the_etag_of_an_answer_of_several_pages_is_not_kept(
    storage: Storage, trackers: TrackerStorage
) -> None:
    # "Not modified" for a first page would say nothing of the pages after it.
    tracker = await _tracker(storage, trackers)
    scripted = ETagTracker(page_size=2)
    _fill(scripted, 5)
    syncer = Syncer(trackers, scripted, FrozenClock(T0 + timedelta(days=1)))
    await syncer.scan(tracker)

    cursor = await trackers.cursors.get(tracker.account_id, tracker.id, "o/r")

    assert cursor is not None
    assert cursor.etag is None


async def test_a_full_scan_runs_once_full_scan_seconds_passed(
    storage: Storage, trackers: TrackerStorage
) -> None:
    tracker = await _tracker(storage, trackers)
    scripted = ScriptedTracker(page_size=10)
    _fill(scripted, 3)
    clock = FrozenClock(T0 + timedelta(days=1))
    syncer = Syncer(trackers, scripted, clock, full_scan_seconds=3600)
    await syncer.scan(tracker)
    del scripted.issues[("o/r", "2")]
    clock.advance(3599)

    incremental = await syncer.scan(tracker)

    assert (0, T0 + timedelta(minutes=3)) == (incremental.deleted, scripted.requests[-1][1])
    clock.advance(1)
    due = await syncer.scan(tracker)
    assert (1, None) == (due.deleted, scripted.requests[-1][1])  # since None: everything
    assert 2 == await trackers.issues.count(tracker.account_id, tracker.id)
    cursor = await trackers.cursors.get(tracker.account_id, tracker.id, "o/r")
    assert cursor is not None
    assert clock.now() == cursor.last_full_scan_at


async def test_comments_the_tracker_no_longer_lists_are_marked_deleted(
    storage: Storage, trackers: TrackerStorage
) -> None:
    tracker = await _tracker(storage, trackers)
    scripted = ScriptedTracker(page_size=10)
    scripted.put("o/r", remote(1, 1))
    scripted.comment_lists[("o/r", "1")] = [note("c1", 1), note("c2", 2)]
    syncer = Syncer(trackers, scripted, FrozenClock(T0 + timedelta(days=1)))
    await syncer.scan(tracker)
    scripted.comment_lists[("o/r", "1")] = [note("c2", 2)]

    issue = await syncer.refresh_issue(tracker, "o/r", "1")

    kept = await trackers.issues.comments(tracker.account_id, issue.id)
    assert ["c2"] == [c.external_id for c in kept]


async def test_a_tracker_error_is_kept_on_the_cursor_and_other_projects_still_sync(
    storage: Storage, trackers: TrackerStorage
) -> None:
    tracker = await _tracker(storage, trackers)

    class OneProjectFails(ScriptedTracker):
        async def issues_since(
            self,
            project: str,
            since: datetime | None,
            *,
            page: str | None = None,
            etag: str | None = None,
        ) -> IssuePage:
            if project == "o/gone":
                raise TrackerError("o/gone: 404", tracker="gh", project=project, status=404)
            return await super().issues_since(project, since, page=page, etag=etag)

    scripted = OneProjectFails()
    _fill(scripted, 2)
    both = Tracker(**{**_as_dict(tracker), "projects": ("o/gone", "o/r")})

    report = await Syncer(trackers, scripted, FrozenClock(T0)).scan(both)

    assert (["o/gone: 404"], 2) == (report.errors, report.issues)
    gone = await trackers.cursors.get(tracker.account_id, tracker.id, "o/gone")
    assert gone is not None
    assert "o/gone: 404" == gone.last_error


def _as_dict(tracker: Tracker) -> dict[str, object]:
    return {name: getattr(tracker, name) for name in tracker.__struct_fields__}
