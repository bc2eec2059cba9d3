"""Syncing from the GitHub fake over real HTTP into SQLite, through the real adapter and
custody: Link pages, comments, ETag/304, edits, deletions noticed by a full scan, and the
inbox refreshing what a signed-shape delivery names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from hub.clock import FrozenClock
from hub.model_gateway.custody import Custody, EnvBackend
from hub.records import Account
from hub.trackers.inbox import InboxProcessor
from hub.trackers.records import (
    DeliveryState,
    IssueKind,
    IssueQuery,
    Tracker,
    TrackerKind,
    WebhookDelivery,
)
from hub.trackers.sync import Syncer
from server.db import SqlStorage, open_storage
from server.db.stores.trackers import SqlTrackerStorage
from server.trackers import HttpTrackerClients
from server.trackers.github import GitHubClient
from tests.integration.fakes.github import TOKEN, FakeGitHub
from tests.integration.trackers.conftest import Waits

REPO = "acme/app"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


class SmallPages(HttpTrackerClients):
    """The real clients (token from custody), asking GitHub for ``per_page`` issues a page."""

    def __init__(self, custody: Custody, waits: Waits, per_page: int) -> None:
        super().__init__(custody, retry=waits.policy)
        self._per_page = per_page
        self._waits = waits

    async def client(self, tracker: Tracker) -> GitHubClient:
        token = await self._custody.resolve(tracker.account_id, tracker.token_ref)
        return GitHubClient(
            tracker.base_url,
            token,
            token_ref=tracker.token_ref,
            retry=self._waits.policy,
            per_page=self._per_page,
        )


@pytest.fixture
async def storage(sqlite_url: str) -> AsyncIterator[SqlStorage]:
    opened = await open_storage(sqlite_url, migrate=False)
    assert isinstance(opened, SqlStorage)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_github_repository_syncs_into_sqlite_page_by_page_and_then_by_etag(
    github: tuple[FakeGitHub, str], waits: Waits, storage: SqlStorage
) -> None:
    fake, url = github
    fake.add_repo(REPO)
    for n in range(1, 24):
        fake.add_issue(REPO, f"Issue {n}", f"Body {n}", labels=("bug",) if n % 2 else ())
    fake.add_pull(REPO, "Fix the login", "Fixes #1", head="fix")
    fake.add_comment(REPO, 1, "First!")
    fake.add_comment(REPO, 1, "Second")
    fake.add_comment(REPO, 24, "Looks good")
    trackers = SqlTrackerStorage.beside(storage)
    account = "acct_1"
    await storage.accounts.add(Account(id=account, name="acme", created_at=T0))
    tracker = Tracker(
        id="trk_gh",
        account_id=account,
        name="github",
        kind=TrackerKind.GITHUB,
        base_url=url,
        token_ref="env:GITHUB_TOKEN",
        projects=(REPO,),
        created_at=T0,
        updated_at=T0,
    )
    await trackers.trackers.add(tracker)
    custody = Custody(
        {"env": EnvBackend({"GITHUB_TOKEN": TOKEN}, ["GITHUB_TOKEN"])},
        auditor=None,  # type: ignore[arg-type]  # resolving a token audits nothing
    )
    clock = FrozenClock(T0)
    syncer = Syncer(trackers, SmallPages(custody, waits, per_page=10), clock)

    first = await syncer.scan(tracker)

    assert (24, 3, [], 0) == (first.issues, first.comments, first.errors, first.not_modified)
    listed = fake.requests_to("GET", f"/repos/{REPO}/issues")
    assert [None, "2", "3"] == [r.query.get("page") for r in listed]  # three Link pages
    assert 24 == await trackers.issues.count(account, tracker.id)
    [pull] = await trackers.issues.find(account, f"{REPO}#24")
    assert (IssueKind.PULL_REQUEST, "Fix the login") == (pull.kind, pull.title)
    [one] = await trackers.issues.find(account, f"{REPO}#1")
    assert ["First!", "Second"] == [c.body for c in await trackers.issues.comments(account, one.id)]
    bugs = await trackers.issues.search(account, IssueQuery(labels=("bug",), limit=100))
    assert 12 == len(bugs)

    clock.advance(60)
    again = await syncer.scan(tracker)  # since the newest: one page, its ETag kept
    unchanged = await syncer.scan(tracker)  # the same request: 304

    assert (1, 0) == (again.issues, again.not_modified)
    assert (0, 1) == (unchanged.issues, unchanged.not_modified)
    last = fake.requests_to("GET", f"/repos/{REPO}/issues")[-1]
    assert last.headers.get("if-none-match")
    fake.touch(REPO, 5, title="Issue 5, edited")
    fake.add_comment(REPO, 5, "Edited the title")
    changed = await syncer.scan(tracker)
    assert ([], 2) == (changed.errors, changed.issues)  # the newest again, and issue 5
    edited = await trackers.issues.get_by_number(account, tracker.id, REPO, "5")
    assert edited is not None
    assert "Issue 5, edited" == edited.title
    assert ["Edited the title"] == [
        c.body for c in await trackers.issues.comments(account, edited.id)
    ]

    del fake.repos[REPO]["issues"][7]  # gone from GitHub (deleted, or transferred away)
    clock.advance(60)
    full = await syncer.scan(tracker, full=True)
    assert (24, 1) == (full.issues + full.deleted, full.deleted)
    assert 23 == await trackers.issues.count(account, tracker.id)
    assert 24 == await trackers.issues.count(account, tracker.id, include_deleted=True)

    fake.touch(REPO, 3, title="Issue 3, edited on GitHub")
    await trackers.inbox.add(
        WebhookDelivery(
            id="whd_1",
            account_id=account,
            tracker_id=tracker.id,
            delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
            event="issues",
            payload={"action": "edited", "issue": {"number": 3}, "repository": {"full_name": REPO}},
            received_at=T0 + timedelta(minutes=3),
        )
    )
    run = await InboxProcessor(trackers, syncer, clock).run_once()
    assert 1 == run.done
    refreshed = await trackers.issues.get_by_number(account, tracker.id, REPO, "3")
    assert refreshed is not None
    assert "Issue 3, edited on GitHub" == refreshed.title
    delivered = await trackers.inbox.get(account, "whd_1")
    assert delivered is not None
    assert DeliveryState.DONE == delivered.state
