"""The tracker storage (hub/trackers/ports.py ``TrackerStorage``) on every backend: trackers,
synced issues and comments, sync cursors and the webhook inbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from hub.errors import ConflictError, NotFoundError, ValidationError
from hub.ports import Storage
from hub.trackers.ports import TrackerStorage
from hub.trackers.records import (
    DeliveryState,
    Issue,
    IssueComment,
    IssueKind,
    IssueQuery,
    SyncCursor,
    Tracker,
    TrackerKind,
    WebhookDelivery,
)
from hub.trackers.search import matches, rank
from server.db import SqlStorage, make_engine
from server.db.stores.trackers import SqlTrackerStorage

from .records import new_account

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NAIVE = datetime(2026, 12, 1, 9, 0)


def at(seconds: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds)


def tracker(account: str, name: str = "gh", **extra: Any) -> Tracker:
    fields: dict[str, Any] = {
        "id": f"trk_{account[-8:]}_{name}",
        "account_id": account,
        "name": name,
        "kind": TrackerKind.GITHUB,
        "base_url": "https://api.github.com",
        "token_ref": "env:GH_TOKEN",
        "projects": ("octo/app",),
        "created_at": T0,
        "updated_at": T0,
    }
    return Tracker(**(fields | extra))


def issue(trk: Tracker, number: int, **extra: Any) -> Issue:
    project = extra.pop("project", "octo/app")
    fields: dict[str, Any] = {
        "id": f"iss_{trk.id}_{number}",
        "account_id": trk.account_id,
        "tracker_id": trk.id,
        "project": project,
        "number": str(number),
        "key": f"{project}#{number}",
        "external_id": f"ext-{number}",
        "title": f"Issue {number}",
        "state": "open",
        "url": f"https://github.com/{project}/issues/{number}",
        "created_at": T0,
        "updated_at": at(number),
        "synced_at": at(1000),
    }
    return Issue(**(fields | extra))


def comment(target: Issue, external_id: str, created: float = 0, **extra: Any) -> IssueComment:
    fields: dict[str, Any] = {
        "id": f"cmt_{target.id}_{external_id}",
        "account_id": target.account_id,
        "tracker_id": target.tracker_id,
        "issue_id": target.id,
        "external_id": external_id,
        "body": f"comment {external_id}",
        "created_at": at(created),
        "updated_at": at(created),
        "synced_at": at(1000),
    }
    return IssueComment(**(fields | extra))


def delivery(trk: Tracker, delivery_id: str, received: float = 0, **extra: Any) -> WebhookDelivery:
    fields: dict[str, Any] = {
        "id": f"whd_{trk.id}_{delivery_id}",
        "account_id": trk.account_id,
        "tracker_id": trk.id,
        "delivery_id": delivery_id,
        "event": "issues",
        "payload": {"action": "opened", "issue": {"number": 1}},
        "received_at": at(received),
    }
    return WebhookDelivery(**(fields | extra))


async def _setup(storage: Storage, trackers: TrackerStorage) -> tuple[str, Tracker]:
    account = await new_account(storage, "acme")
    trk = tracker(account)
    await trackers.trackers.add(trk)
    return account, trk


# --- trackers ---------------------------------------------------------------------------
async def test_a_tracker_is_kept_and_read_back_by_id_and_name(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account = await new_account(storage, "acme")
    full = tracker(
        account,
        "jira",
        kind=TrackerKind.JIRA,
        projects=("PROJ", "OPS"),
        webhook_secret_ref="local:jira-hook",
        username="ada@example.com",
        poll_seconds=60,
        next_poll_at=at(30),
    )
    await trackers.trackers.add(full)
    await trackers.trackers.add(tracker(account, "Alpha"))
    await trackers.trackers.add(tracker(account, "beta"))

    assert full == await trackers.trackers.get(account, full.id)
    assert full == await trackers.trackers.get_by_name(account, "jira")
    assert await trackers.trackers.get_by_name(account, "nope") is None
    assert await trackers.trackers.get(account, "trk_missing") is None
    assert ["Alpha", "beta", "jira"] == [t.name for t in await trackers.trackers.list(account)]


async def test_tracker_names_are_unique_per_account_and_accounts_must_exist(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    other = await new_account(storage, "globex")

    with pytest.raises(ConflictError):
        await trackers.trackers.add(tracker(account, "gh", id="trk_second"))
    with pytest.raises(ConflictError):  # the same id
        await trackers.trackers.add(tracker(account, "other", id=trk.id))
    with pytest.raises(NotFoundError):
        await trackers.trackers.add(tracker("acct_missing", "gh"))
    await trackers.trackers.add(tracker(other, "gh"))  # another account may use the name
    assert [trk] == list(await trackers.trackers.list(account))


async def test_a_tracker_is_updated_in_place(storage: Storage, trackers: TrackerStorage) -> None:
    account, trk = await _setup(storage, trackers)
    await trackers.trackers.add(tracker(account, "lab", kind=TrackerKind.GITLAB))
    changed = msgspec.structs.replace(
        trk, name="github", projects=("octo/app", "octo/lib"), poll_seconds=0, updated_at=at(9)
    )

    await trackers.trackers.update(changed)

    assert changed == await trackers.trackers.get(account, trk.id)
    with pytest.raises(ConflictError):
        await trackers.trackers.update(msgspec.structs.replace(changed, name="lab"))
    with pytest.raises(NotFoundError):
        await trackers.trackers.update(tracker(account, "ghost", id="trk_ghost"))
    assert changed == await trackers.trackers.get(account, trk.id)


async def test_another_account_sees_nothing_and_cannot_write_under_a_tracker_it_lacks(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    other = await new_account(storage, "globex")
    await trackers.issues.upsert(issue(trk, 1))
    await trackers.inbox.add(delivery(trk, "d1"))

    assert await trackers.trackers.get(other, trk.id) is None
    assert await trackers.trackers.get_by_name(other, "gh") is None
    assert [] == list(await trackers.trackers.list(other))
    assert await trackers.issues.get(other, f"iss_{trk.id}_1") is None
    assert [] == list(await trackers.issues.find(other, "octo/app#1"))
    assert [] == list(await trackers.issues.search(other, IssueQuery(text="issue")))
    assert await trackers.issues.get_by_number(other, trk.id, "octo/app", "1") is None
    assert 0 == await trackers.issues.count(other, trk.id)
    assert await trackers.inbox.get(other, f"whd_{trk.id}_d1") is None
    assert [] == list(await trackers.inbox.list(other))
    foreign = msgspec.structs.replace(trk, account_id=other)
    with pytest.raises(NotFoundError):
        await trackers.issues.upsert(issue(foreign, 2))
    with pytest.raises(NotFoundError):
        await trackers.cursors.put(SyncCursor(account_id=other, tracker_id=trk.id, project="p"))
    with pytest.raises(NotFoundError):
        await trackers.inbox.add(delivery(foreign, "d2"))
    with pytest.raises(NotFoundError):
        await trackers.trackers.remove(other, trk.id)
    with pytest.raises(NotFoundError):
        await trackers.inbox.finish(other, f"whd_{trk.id}_d1", now=at(1))
    assert 0 == await trackers.issues.mark_deleted(other, trk.id, "octo/app", at(10_000))
    assert 1 == await trackers.issues.count(account, trk.id)


async def test_removing_a_tracker_removes_everything_synced_from_it(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    kept = tracker(account, "kept")
    await trackers.trackers.add(kept)
    for owner in (trk, kept):
        stored = await trackers.issues.upsert(issue(owner, 1))
        await trackers.issues.upsert_comment(comment(stored, "c1"))
        await trackers.cursors.put(
            SyncCursor(account_id=account, tracker_id=owner.id, project="octo/app")
        )
        await trackers.inbox.add(delivery(owner, "d1"))

    await trackers.trackers.remove(account, trk.id)

    assert await trackers.trackers.get(account, trk.id) is None
    assert 0 == await trackers.issues.count(account, trk.id, include_deleted=True)
    assert await trackers.issues.get(account, f"iss_{trk.id}_1") is None
    assert [] == list(await trackers.issues.comments(account, f"iss_{trk.id}_1"))
    assert [kept.id] == [c.tracker_id for c in await trackers.cursors.list(account)]
    assert [kept.id] == [d.tracker_id for d in await trackers.inbox.list(account)]
    assert 1 == await trackers.issues.count(account, kept.id)
    assert 1 == len(await trackers.issues.comments(account, f"iss_{kept.id}_1"))
    with pytest.raises(NotFoundError):
        await trackers.trackers.remove(account, trk.id)
    # the name is free again, and nothing of the old tracker comes back with it
    await trackers.trackers.add(trk)
    assert 0 == await trackers.issues.count(account, trk.id, include_deleted=True)


# --- background polls ---------------------------------------------------------------------
async def test_due_trackers_are_those_polled_never_or_before_now_most_overdue_first(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account = await new_account(storage, "acme")
    other = await new_account(storage, "globex")
    rows = [
        tracker(account, "later", next_poll_at=at(60)),
        tracker(account, "now", next_poll_at=at(0)),
        tracker(account, "old", next_poll_at=at(-60)),
        tracker(account, "never"),
        tracker(account, "off", poll_seconds=0),
        tracker(other, "theirs", next_poll_at=at(-30)),
    ]
    for row in rows:
        await trackers.trackers.add(row)

    due = await trackers.trackers.due(at(0))

    assert ["never", "old", "theirs", "now"] == [t.name for t in due]
    assert ["never", "old"] == [t.name for t in await trackers.trackers.due(at(0), limit=2)]
    with pytest.raises(ValidationError):
        await trackers.trackers.due(at(0), limit=-1)
    with pytest.raises(ValidationError):
        await trackers.trackers.due(NAIVE)


async def test_a_due_poll_is_claimed_once_by_compare_and_set(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)

    wins = await asyncio.gather(
        *(trackers.trackers.claim_poll(account, trk.id, None, at(300)) for _ in range(5))
    )

    assert 1 == sum(wins)
    stored = await trackers.trackers.get(account, trk.id)
    assert stored is not None
    assert at(300) == stored.next_poll_at
    assert not await trackers.trackers.claim_poll(account, trk.id, None, at(600))  # stale
    assert await trackers.trackers.claim_poll(account, trk.id, at(300), at(600))
    assert not await trackers.trackers.claim_poll(account, "trk_missing", None, at(600))
    other = await new_account(storage, "globex")
    assert not await trackers.trackers.claim_poll(other, trk.id, at(600), at(900))
    with pytest.raises(ValidationError):
        await trackers.trackers.claim_poll(account, trk.id, at(600), NAIVE)


# --- issues -------------------------------------------------------------------------------
async def test_upserting_an_issue_twice_keeps_one_row_and_its_first_id(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    first = issue(
        trk,
        7,
        labels=("bug", "p1"),
        assignees=("ada",),
        priority="High",
        extra={"draft": False, "reviewers": ["bob"]},
        kind=IssueKind.PULL_REQUEST,
        content_hash="abc",
    )

    assert first == await trackers.issues.upsert(first)
    again = msgspec.structs.replace(first, id="iss_new", title="Renamed", synced_at=at(2000))
    stored = await trackers.issues.upsert(again)

    assert msgspec.structs.replace(again, id=first.id) == stored
    assert stored == await trackers.issues.get(account, first.id)
    assert await trackers.issues.get(account, "iss_new") is None
    assert 1 == await trackers.issues.count(account, trk.id)
    with pytest.raises(ConflictError):  # a new issue may not take another's id
        await trackers.issues.upsert(issue(trk, 8, id=first.id))
    with pytest.raises(NotFoundError):
        await trackers.issues.upsert(issue(tracker(account, "ghost", id="trk_ghost"), 1))


async def test_issues_are_found_by_number_key_and_url(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    lab = tracker(account, "lab", kind=TrackerKind.GITLAB)
    await trackers.trackers.add(lab)
    one = await trackers.issues.upsert(issue(trk, 1))
    same_key = await trackers.issues.upsert(issue(lab, 1, url=""))  # octo/app#1 there too
    await trackers.issues.upsert(issue(trk, 2, project="octo/lib"))

    by_number = await trackers.issues.get_by_number(account, trk.id, "octo/app", "1")
    assert one == by_number
    assert await trackers.issues.get_by_number(account, trk.id, "octo/lib", "1") is None
    assert sorted([one.id, same_key.id]) == [
        i.id for i in await trackers.issues.find(account, "octo/app#1")
    ]
    assert [one] == list(await trackers.issues.find(account, one.url))
    assert [] == list(await trackers.issues.find(account, ""))
    assert [] == list(await trackers.issues.find(account, "octo/app#9"))


async def test_a_full_scan_marks_what_it_did_not_write_deleted(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    for n in (1, 2, 3):
        await trackers.issues.upsert(issue(trk, n, synced_at=at(100)))
    await trackers.issues.upsert(issue(trk, 4, project="octo/lib", synced_at=at(100)))
    await trackers.issues.upsert(issue(trk, 2, synced_at=at(300)))  # written by the scan

    assert 2 == await trackers.issues.mark_deleted(account, trk.id, "octo/app", at(200))

    assert 2 == await trackers.issues.count(account, trk.id)
    assert 4 == await trackers.issues.count(account, trk.id, include_deleted=True)
    gone = await trackers.issues.get_by_number(account, trk.id, "octo/app", "1")
    assert gone is not None
    assert gone.deleted
    assert 0 == await trackers.issues.mark_deleted(account, trk.id, "octo/app", at(200))
    with pytest.raises(ValidationError):
        await trackers.issues.mark_deleted(account, trk.id, "octo/app", NAIVE)
    # a deleted issue written again (the tracker has it after all) is live again
    await trackers.issues.upsert(issue(trk, 1, synced_at=at(400)))
    assert 3 == await trackers.issues.count(account, trk.id)


async def test_comments_are_upserted_and_listed_oldest_first_without_deleted_ones(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    target = await trackers.issues.upsert(issue(trk, 1))
    other = await trackers.issues.upsert(issue(trk, 2))
    await trackers.issues.upsert_comment(comment(target, "c2", created=20))
    await trackers.issues.upsert_comment(comment(target, "c1", created=10))
    await trackers.issues.upsert_comment(comment(target, "c3", created=30, deleted=True))
    await trackers.issues.upsert_comment(comment(other, "c1", created=5))
    edited = await trackers.issues.upsert_comment(
        comment(target, "c1", created=10, id="cmt_other", body="edited", kind="review_comment")
    )

    listed = await trackers.issues.comments(account, target.id)

    assert ["c1", "c2"] == [c.external_id for c in listed]
    assert edited == listed[0]
    assert (f"cmt_{target.id}_c1", "edited", "review_comment") == (
        edited.id,
        edited.body,
        edited.kind,
    )
    assert ["c1"] == [c.external_id for c in await trackers.issues.comments(account, other.id)]
    with pytest.raises(NotFoundError):
        await trackers.issues.upsert_comment(comment(issue(trk, 9), "c1"))
    with pytest.raises(ConflictError):
        await trackers.issues.upsert_comment(comment(target, "c9", id=f"cmt_{target.id}_c2"))


async def test_a_synced_issue_is_written_with_all_its_comments_and_the_rest_deleted(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    first = await trackers.issues.upsert(issue(trk, 1))
    await trackers.issues.upsert_comment(comment(first, "gone", created=1))
    await trackers.issues.upsert_comment(comment(first, "kept", created=2))
    other = await trackers.issues.upsert(issue(trk, 2))
    await trackers.issues.upsert_comment(comment(other, "theirs", created=1))
    again = issue(trk, 1, id="iss_again", title="Edited", synced_at=at(2000))
    rows = [
        comment(again, "kept", created=2, id="cmt_x", body="edited"),
        comment(again, "new", created=3, id="cmt_new"),
    ]

    stored = await trackers.issues.write_synced(again, rows)

    assert (first.id, "Edited") == (stored.id, stored.title)
    listed = await trackers.issues.comments(account, first.id)
    assert [("kept", "edited", f"cmt_{first.id}_kept"), ("new", "comment new", "cmt_new")] == [
        (c.external_id, c.body, c.id) for c in listed
    ]
    assert ["theirs"] == [c.external_id for c in await trackers.issues.comments(account, other.id)]
    none = await trackers.issues.write_synced(issue(trk, 1, synced_at=at(3000)), [])
    assert [] == list(await trackers.issues.comments(account, none.id))
    with pytest.raises(NotFoundError):
        await trackers.issues.write_synced(issue(tracker(account, "x", id="trk_missing"), 3), [])


def _corpus(trk: Tracker, lab: Tracker) -> list[Issue]:
    return [
        issue(
            trk,
            1,
            title="Login fails on Safari",
            body="the login button does nothing",
            labels=("bug", "ui"),
            assignees=("ada",),
            priority="High",
        ),
        issue(
            trk,
            2,
            title="Add dark mode",
            body="users asked for login theming",
            labels=("feature",),
            state="closed",
        ),
        issue(
            trk,
            3,
            title="Crash in parser",
            body="stack trace attached",
            labels=("bug",),
            assignees=("bob", "ada"),
            priority="high",
            kind=IssueKind.PULL_REQUEST,
        ),
        issue(trk, 4, title="Straße sign-in broken", body="Ümlaut names fail", state="Open"),
        issue(
            trk,
            5,
            title="\u212aelvin units",
            body="temperature in \u0130stanbul",
            state="\u212aept",
        ),
        issue(trk, 6, title="login login", body="", deleted=True),
        issue(trk, 7, title="Parser speedup", body="", updated_at=at(3)),  # ties issue 3
        issue(lab, 8, title="Login page", body="", project="group/web"),
        issue(trk, 9, title="Nothing here", body="LOGIN in capitals", project="octo/lib"),
    ]


QUERIES = [
    IssueQuery(),
    IssueQuery(limit=3),
    IssueQuery(limit=0),
    IssueQuery(text="login"),
    IssueQuery(text="LOGIN safari", limit=2),
    IssueQuery(text="parser"),
    IssueQuery(text="kelvin"),
    IssueQuery(text="istanbul"),
    IssueQuery(text="straße"),
    IssueQuery(text="ümlaut names"),
    IssueQuery(text="sign"),
    IssueQuery(text="log"),  # a part of a word is not a word
    IssueQuery(text="  "),
    IssueQuery(text="login", include_deleted=True),
    IssueQuery(state="open"),
    IssueQuery(state="OPEN", text="login"),
    IssueQuery(state="kept"),
    IssueQuery(state="closed"),
    IssueQuery(labels=("bug",)),
    IssueQuery(labels=("bug", "ui")),
    IssueQuery(labels=("bu",)),
    IssueQuery(assignee="ada"),
    IssueQuery(assignee="ad"),
    IssueQuery(priority="HIGH"),
    IssueQuery(kind=IssueKind.PULL_REQUEST),
    IssueQuery(kind=IssueKind.ISSUE, text="login"),
    IssueQuery(project="octo/lib"),
    IssueQuery(project="group/web", text="login"),
    IssueQuery(updated_after=at(3), updated_before=at(5)),
    IssueQuery(updated_after=at(8)),
]


def _query_id(query: IssueQuery) -> str:
    set_fields = msgspec.structs.asdict(query).items()
    defaults = msgspec.structs.asdict(IssueQuery()).items()
    return ",".join(f"{k}={v}" for k, v in set_fields if (k, v) not in defaults) or "all"


@pytest.mark.parametrize("query", QUERIES, ids=_query_id)
async def test_search_answers_what_the_matching_rules_answer(
    storage: Storage, trackers: TrackerStorage, query: IssueQuery
) -> None:
    account, trk = await _setup(storage, trackers)
    lab = tracker(account, "lab", kind=TrackerKind.GITLAB)
    await trackers.trackers.add(lab)
    corpus = _corpus(trk, lab)
    for row in corpus:
        await trackers.issues.upsert(row)
    other = await new_account(storage, "globex")
    theirs = tracker(other, "gh")
    await trackers.trackers.add(theirs)
    await trackers.issues.upsert(issue(theirs, 1, title="login"))
    expected = rank([i for i in corpus if matches(i, query)], query.text)[: query.limit]

    found = await trackers.issues.search(account, query)

    assert [i.key for i in expected] == [i.key for i in found]
    assert expected == list(found)


async def test_search_ranks_title_words_double_then_newest_then_id(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    await trackers.issues.upsert(issue(trk, 1, title="cache", body="eviction"))
    await trackers.issues.upsert(issue(trk, 2, title="eviction", body="cache"))
    await trackers.issues.upsert(issue(trk, 3, title="other", body="cache eviction"))
    await trackers.issues.upsert(issue(trk, 4, title="cache eviction", body=""))
    await trackers.issues.upsert(issue(trk, 5, title="cache", body="", updated_at=at(1)))

    found = await trackers.issues.search(account, IssueQuery(text="cache eviction"))

    assert ["4", "2", "1", "3", "5"] == [i.number for i in found]


async def test_search_pages_through_many_issues_without_text(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    for n in range(1, 451):  # more than one batch of the SQL store
        await trackers.issues.upsert(issue(trk, n, labels=("rare",) if n % 150 == 0 else ()))

    found = await trackers.issues.search(account, IssueQuery(labels=("rare",), limit=10))

    assert ["450", "300", "150"] == [i.number for i in found]


async def test_search_refuses_a_negative_limit_and_naive_times(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, _ = await _setup(storage, trackers)
    with pytest.raises(ValidationError):
        await trackers.issues.search(account, IssueQuery(limit=-1))
    with pytest.raises(ValidationError):
        await trackers.issues.search(account, IssueQuery(updated_after=NAIVE))


async def test_naive_datetimes_are_refused(storage: Storage, trackers: TrackerStorage) -> None:
    account, trk = await _setup(storage, trackers)
    with pytest.raises(ValidationError):
        await trackers.trackers.add(tracker(account, "naive", created_at=NAIVE))
    with pytest.raises(ValidationError):
        await trackers.issues.upsert(issue(trk, 1, updated_at=NAIVE))
    with pytest.raises(ValidationError):
        await trackers.inbox.claim(NAIVE, at(60))


# --- sync cursors -------------------------------------------------------------------------
async def test_a_cursor_is_replaced_per_project_and_listed_by_tracker_then_project(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    lab = tracker(account, "lab", id="trk_a_lab")
    await trackers.trackers.add(lab)
    first = SyncCursor(
        account_id=account,
        tracker_id=trk.id,
        project="octo/app",
        updated_since=at(5),
        etag='W/"abc"',
        page="2",
        page_since=at(1),
        full_scan_started_at=at(2),
        last_full_scan_at=at(-100),
        last_sync_at=at(3),
        last_error="boom",
        issues_synced=12,
    )
    await trackers.cursors.put(first)
    assert first == await trackers.cursors.get(account, trk.id, "octo/app")
    cleared = SyncCursor(account_id=account, tracker_id=trk.id, project="octo/app")
    await trackers.cursors.put(cleared)
    await trackers.cursors.put(SyncCursor(account_id=account, tracker_id=trk.id, project="b"))
    await trackers.cursors.put(SyncCursor(account_id=account, tracker_id=lab.id, project="z"))

    assert cleared == await trackers.cursors.get(account, trk.id, "octo/app")
    assert await trackers.cursors.get(account, trk.id, "nope") is None
    listed = [(c.tracker_id, c.project) for c in await trackers.cursors.list(account)]
    assert sorted(listed) == listed
    assert 3 == len(listed)
    assert [(trk.id, "b"), (trk.id, "octo/app")] == [
        (c.tracker_id, c.project) for c in await trackers.cursors.list(account, trk.id)
    ]
    with pytest.raises(NotFoundError):
        await trackers.cursors.put(
            SyncCursor(account_id=account, tracker_id="trk_missing", project="p")
        )


# --- the webhook inbox --------------------------------------------------------------------
async def test_a_replayed_delivery_is_refused_and_changes_nothing(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    first = delivery(trk, "gh-1")

    assert await trackers.inbox.add(first)
    assert not await trackers.inbox.add(delivery(trk, "gh-1", received=50, id="whd_replay"))

    assert first == await trackers.inbox.get(account, first.id)
    assert await trackers.inbox.get(account, "whd_replay") is None
    assert [first] == list(await trackers.inbox.list(account))
    with pytest.raises(ConflictError):  # a different delivery may not take the row's id
        await trackers.inbox.add(delivery(trk, "gh-2", id=first.id))
    with pytest.raises(NotFoundError):
        await trackers.inbox.add(delivery(tracker(account, "x", id="trk_missing"), "gh-3"))


async def test_claimed_deliveries_are_leased_and_come_back_once_the_lease_ends(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    other = await new_account(storage, "globex")
    theirs = tracker(other, "gh")
    await trackers.trackers.add(theirs)
    for n, owner in ((3, trk), (1, trk), (2, theirs)):
        await trackers.inbox.add(delivery(owner, f"d{n}", received=n))

    first = await trackers.inbox.claim(at(10), at(70), limit=2)

    assert [("d1", 1, at(70)), ("d2", 1, at(70))] == [
        (d.delivery_id, d.attempts, d.claimed_until) for d in first
    ]
    assert ["d3"] == [d.delivery_id for d in await trackers.inbox.claim(at(10), at(70))]
    assert [] == list(await trackers.inbox.claim(at(20), at(80)))  # all leased
    d1 = first[0]
    await trackers.inbox.finish(account, d1.id, now=at(30), error="tracker down")
    await trackers.inbox.finish(other, first[1].id, now=at(30))
    failed = await trackers.inbox.get(account, d1.id)
    assert failed is not None
    assert (DeliveryState.PENDING, "tracker down") == (failed.state, failed.error)
    assert [] == list(await trackers.inbox.claim(at(69), at(100)))  # still its lease

    again = await trackers.inbox.claim(at(70), at(130))

    assert [("d1", 2), ("d3", 2)] == [(d.delivery_id, d.attempts) for d in again]
    await trackers.inbox.finish(account, d1.id, now=at(80), error="still down", give_up=True)
    await trackers.inbox.finish(account, again[1].id, now=at(80))
    assert [] == list(await trackers.inbox.claim(at(1000), at(1060)))
    done = await trackers.inbox.get(other, first[1].id)
    gave_up = await trackers.inbox.get(account, d1.id)
    assert done is not None
    assert gave_up is not None
    assert (DeliveryState.DONE, at(30), None) == (done.state, done.processed_at, done.error)
    assert (DeliveryState.FAILED, at(80), "still down") == (
        gave_up.state,
        gave_up.processed_at,
        gave_up.error,
    )
    with pytest.raises(NotFoundError):
        await trackers.inbox.finish(account, "whd_missing", now=at(90))
    with pytest.raises(ValidationError):
        await trackers.inbox.claim(at(0), at(1), limit=-1)


async def test_a_failed_delivery_can_be_retried_later_than_its_lease(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    await trackers.inbox.add(delivery(trk, "d1"))
    [claimed] = await trackers.inbox.claim(at(0), at(60))

    await trackers.inbox.finish(account, claimed.id, now=at(5), error="429", retry_at=at(300))

    assert [] == list(await trackers.inbox.claim(at(299), at(360)))
    [again] = await trackers.inbox.claim(at(300), at(360))
    assert (2, "429", DeliveryState.PENDING) == (again.attempts, again.error, again.state)
    with pytest.raises(ValidationError):
        await trackers.inbox.finish(account, claimed.id, now=at(5), error="x", retry_at=NAIVE)


async def test_the_inbox_lists_newest_first_per_tracker(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    lab = tracker(account, "lab")
    await trackers.trackers.add(lab)
    await trackers.inbox.add(delivery(trk, "a", received=1))
    await trackers.inbox.add(delivery(lab, "b", received=2))
    await trackers.inbox.add(delivery(trk, "c", received=3))

    assert ["c", "b", "a"] == [d.delivery_id for d in await trackers.inbox.list(account)]
    assert ["c", "a"] == [d.delivery_id for d in await trackers.inbox.list(account, trk.id)]
    assert ["c"] == [d.delivery_id for d in await trackers.inbox.list(account, limit=1)]
    with pytest.raises(ValidationError):
        await trackers.inbox.list(account, limit=-1)


async def test_concurrent_claims_take_each_delivery_once(
    storage: Storage, trackers: TrackerStorage
) -> None:
    _, trk = await _setup(storage, trackers)
    for n in range(12):
        await trackers.inbox.add(delivery(trk, f"d{n:02}", received=n))

    batches = await asyncio.gather(*(trackers.inbox.claim(at(100), at(160), 3) for _ in range(6)))
    rest = await trackers.inbox.claim(at(100), at(160), 100)  # what a race left (PostgreSQL)

    claimed = [d.delivery_id for batch in [*batches, rest] for d in batch]
    assert sorted(claimed) == [f"d{n:02}" for n in range(12)]  # each once


# --- SQL only: across processes (one engine each, as replicas have) -------------------------
async def test_replicas_claim_each_delivery_and_each_due_poll_once(sql_url: str) -> None:
    replicas = [SqlStorage(make_engine(sql_url)) for _ in range(3)]
    try:
        account = await new_account(replicas[0], "acme")
        stores = [SqlTrackerStorage.beside(r) for r in replicas]
        trk = tracker(account)
        await stores[0].trackers.add(trk)
        for n in range(20):
            await stores[0].inbox.add(delivery(trk, f"d{n:02}", received=n))

        batches, polls = await asyncio.gather(
            asyncio.gather(*(s.inbox.claim(at(100), at(160), 4) for s in stores * 2)),
            asyncio.gather(
                *(s.trackers.claim_poll(account, trk.id, None, at(300)) for s in stores * 2)
            ),
        )

        rest = await stores[1].inbox.claim(at(100), at(160), 100)  # what a race left
        claimed = sorted(d.delivery_id for batch in [*batches, rest] for d in batch)
        assert [f"d{n:02}" for n in range(20)] == claimed
        assert 1 == sum(polls)
    finally:
        for replica in replicas:
            await replica.close()
