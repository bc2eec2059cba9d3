"""Processing the webhook inbox (hub/trackers/inbox.py) over in-memory storage and a scripted
tracker, with deliveries in the trackers' published payload shapes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.clock import FrozenClock
from hub.errors import TrackerError
from hub.trackers.inbox import About, InboxProcessor, about
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.records import (
    DeliveryState,
    IssuePage,
    RemoteComment,
    RemoteIssue,
    Tracker,
    TrackerKind,
    WebhookDelivery,
)
from hub.trackers.sync import Syncer
from tests.unit.trackers import payloads
from tests.unit.trackers.scripted_client import ScriptedTracker

T0 = datetime(2026, 12, 1, tzinfo=UTC)
REPO = "Codertocat/Hello-World"


def remote(number: str, title: str = "", minutes: int = 1) -> RemoteIssue:
    return RemoteIssue(
        external_id=f"ext-{number}",
        number=number,
        title=title or f"Issue {number}",
        state="open",
        created_at=T0,
        updated_at=T0 + timedelta(minutes=minutes),
    )


class Flaky(ScriptedTracker):
    """Fails ``get_issue`` with the errors queued in ``errors``, then answers."""

    def __init__(self, kind: TrackerKind = TrackerKind.GITHUB) -> None:
        super().__init__(kind)
        self.errors: list[TrackerError] = []
        self.fetched: list[tuple[str, str]] = []

    async def get_issue(self, project: str, number: str) -> RemoteIssue:
        self.fetched.append((project, number))
        if self.errors:
            raise self.errors.pop(0)
        return await super().get_issue(project, number)

    async def issues_since(self, *args: Any, **kwargs: Any) -> IssuePage:
        raise AssertionError("a delivery refreshes one issue, it does not scan")


async def setup(
    kind: TrackerKind = TrackerKind.GITHUB, projects: tuple[str, ...] = (REPO,)
) -> tuple[InMemoryTrackerStorage, Flaky, Tracker, InboxProcessor, FrozenClock]:
    storage = InMemoryTrackerStorage()
    scripted = Flaky(kind)
    tracker = Tracker(
        id="trk_1",
        account_id="acc",
        name="t",
        kind=kind,
        base_url="https://tracker.example",
        token_ref="env:T",
        projects=projects,
        created_at=T0,
        updated_at=T0,
    )
    await storage.trackers.add(tracker)
    clock = FrozenClock(T0 + timedelta(days=1))
    processor = InboxProcessor(storage, Syncer(storage, scripted, clock), clock)
    return storage, scripted, tracker, processor, clock


async def deliver(
    storage: InMemoryTrackerStorage, event: str, payload: dict[str, Any], n: int = 1
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        id=f"whd_{n}",
        account_id="acc",
        tracker_id="trk_1",
        delivery_id=f"delivery-{n}",
        event=event,
        payload=payload,
        received_at=T0 + timedelta(seconds=n),
    )
    assert await storage.inbox.add(delivery)
    return delivery


@pytest.mark.parametrize(
    ("kind", "event", "payload", "expected"),
    [
        (TrackerKind.GITHUB, "issues", payloads.github_issues(), About(project=REPO, number="1")),
        (
            TrackerKind.GITHUB,
            "issues",
            payloads.github_issues("deleted", 5),
            About(project=REPO, number="5", deleted=True),
        ),
        (
            TrackerKind.GITHUB,
            "issue_comment",
            payloads.github_issue_comment("deleted", 3),
            About(project=REPO, number="3"),  # a comment went, not the issue
        ),
        (
            TrackerKind.GITHUB,
            "pull_request",
            payloads.github_pull_request(number=2),
            About(project=REPO, number="2"),
        ),
        (TrackerKind.GITHUB, "ping", payloads.GITHUB_PING, None),
        (
            TrackerKind.GITLAB,
            "Issue Hook",
            payloads.gitlab_issue(23),
            About(project="gitlabhq/gitlab-test", number="23"),
        ),
        (
            TrackerKind.GITLAB,
            "Merge Request Hook",
            payloads.gitlab_merge_request(1),
            About(project="gitlabhq/gitlab-test", number="!1"),
        ),
        (
            TrackerKind.GITLAB,
            "Note Hook",
            payloads.gitlab_note_on_merge_request(4),
            About(project="gitlabhq/gitlab-test", number="!4"),
        ),
        (
            TrackerKind.GITLAB,
            "Note Hook",
            payloads.gitlab_note_on_issue(17),
            About(project="gitlabhq/gitlab-test", number="17"),
        ),
        (TrackerKind.GITLAB, "Note Hook", payloads.gitlab_note_on_commit(), None),
        (
            TrackerKind.JIRA,
            "jira:issue_updated",
            payloads.jira_issue(),
            About(project="TEST", number="TEST-42"),
        ),
        (
            TrackerKind.JIRA,
            "",
            payloads.jira_issue("jira:issue_deleted"),
            About(project="TEST", number="TEST-42", deleted=True),
        ),
        (
            TrackerKind.JIRA,
            "comment_created",
            payloads.jira_comment_created("OPS-7"),
            About(project="OPS", number="OPS-7"),
        ),
        (TrackerKind.JIRA, "", {"webhookEvent": "project_created"}, None),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_delivery_is_about_the_issue_its_payload_names(
    kind: TrackerKind, event: str, payload: dict[str, Any], expected: About | None
) -> None:
    assert expected == about(kind, event, payload)


async def test_a_delivery_refreshes_its_issue_and_comments_from_the_tracker() -> None:
    storage, scripted, _, processor, _ = await setup()
    scripted.put(REPO, remote("1", "Fetched title"))
    scripted.comment_lists[(REPO, "1")] = [
        RemoteComment(external_id="c1", body="hi", created_at=T0, updated_at=T0)
    ]
    delivery = await deliver(storage, "issues", payloads.github_issues("edited", 1))

    run = await processor.run_once()

    assert (1, 1) == (run.claimed, run.done)
    [issue] = await storage.issues.find("acc", f"{REPO}#1")
    assert "Fetched title" == issue.title  # the tracker's answer, not the payload's
    assert ["hi"] == [c.body for c in await storage.issues.comments("acc", issue.id)]
    stored = await storage.inbox.get("acc", delivery.id)
    assert stored is not None
    assert DeliveryState.DONE == stored.state
    assert (await processor.run_once()).claimed == 0


async def test_gitlab_and_jira_deliveries_refresh_their_issues() -> None:
    storage, scripted, _, processor, _ = await setup(
        TrackerKind.GITLAB, projects=("gitlabhq/gitlab-test",)
    )
    scripted.put("gitlabhq/gitlab-test", remote("!4", "An MR"))
    await deliver(storage, "Note Hook", payloads.gitlab_note_on_merge_request(4))

    await processor.run_once()

    assert [("gitlabhq/gitlab-test", "!4")] == scripted.fetched
    jira_storage, jira, _, jira_processor, _ = await setup(TrackerKind.JIRA, projects=("TEST",))
    jira.put("TEST", remote("TEST-42", "From Jira"))
    await deliver(jira_storage, "", payloads.jira_issue())
    await jira_processor.run_once()
    [issue] = await jira_storage.issues.find("acc", "TEST-42")
    assert "From Jira" == issue.title


async def test_a_delivery_names_its_project_in_the_trackers_case_and_rows_keep_ours() -> None:
    storage, scripted, _, processor, _ = await setup(projects=("codertocat/hello-world",))
    scripted.put("codertocat/hello-world", remote("1", "Fetched"))
    await deliver(storage, "issues", payloads.github_issues("edited", 1))  # Codertocat/Hello-World

    assert 1 == (await processor.run_once()).done

    assert [("codertocat/hello-world", "1")] == scripted.fetched
    [issue] = await storage.issues.find("acc", "codertocat/hello-world#1")
    assert "Fetched" == issue.title


async def test_deliveries_about_projects_not_synced_and_pings_change_nothing() -> None:
    storage, scripted, _, processor, _ = await setup(projects=("someone/else",))
    await deliver(storage, "issues", payloads.github_issues(), n=1)
    await deliver(storage, "ping", payloads.GITHUB_PING, n=2)

    run = await processor.run_once()

    assert (2, 2) == (run.claimed, run.done)
    assert [] == scripted.fetched
    assert 0 == await storage.issues.count("acc", "trk_1", include_deleted=True)


async def test_a_deleted_issue_is_marked_deleted_without_asking_the_tracker() -> None:
    storage, scripted, tracker, processor, clock = await setup()
    scripted.put(REPO, remote("5"))
    await Syncer(storage, scripted, clock).refresh_issue(tracker, REPO, "5")  # synced before
    scripted.fetched.clear()
    await deliver(storage, "issues", payloads.github_issues("deleted", 5))

    await processor.run_once()

    assert [] == scripted.fetched
    assert 0 == await storage.issues.count("acc", "trk_1")
    assert 1 == await storage.issues.count("acc", "trk_1", include_deleted=True)


async def test_an_issue_the_tracker_no_longer_has_is_marked_deleted() -> None:
    storage, scripted, tracker, processor, clock = await setup()
    scripted.put(REPO, remote("1"))
    await Syncer(storage, scripted, clock).refresh_issue(tracker, REPO, "1")
    del scripted.issues[(REPO, "1")]  # the scripted tracker answers 404
    delivery = await deliver(storage, "issues", payloads.github_issues("transferred", 1))

    run = await processor.run_once()

    assert 1 == run.done
    assert 0 == await storage.issues.count("acc", "trk_1")
    stored = await storage.inbox.get("acc", delivery.id)
    assert stored is not None
    assert DeliveryState.DONE == stored.state


async def test_a_failing_delivery_is_retried_later_each_time_then_given_up() -> None:
    storage, scripted, _, processor, clock = await setup()
    scripted.put(REPO, remote("1"))
    scripted.errors = [
        TrackerError(f"GitHub answered 502 (attempt {n})", tracker="t", status=502)
        for n in range(1, 6)
    ]
    delivery = await deliver(storage, "issues", payloads.github_issues())
    waits = []

    for _ in range(5):
        run = await processor.run_once()
        stored = await storage.inbox.get("acc", delivery.id)
        assert stored is not None
        assert stored.claimed_until is not None
        waits.append((stored.claimed_until - clock.now()).total_seconds())
        assert (await processor.run_once()).claimed == 0  # not before its time
        clock.advance(waits[-1])

    assert [30.0, 60.0, 120.0, 240.0] == waits[:4]  # growing; then it gives up
    assert (0, 1) == (run.retried, run.failed)
    stored = await storage.inbox.get("acc", delivery.id)
    assert stored is not None
    assert (DeliveryState.FAILED, 5, "GitHub answered 502 (attempt 5)") == (
        stored.state,
        stored.attempts,
        stored.error,
    )
    assert (await processor.run_once()).claimed == 0


async def test_a_rate_limited_delivery_waits_as_long_as_the_tracker_asks() -> None:
    storage, scripted, _, processor, clock = await setup()
    scripted.put(REPO, remote("1"))
    scripted.errors = [TrackerError("rate limited", tracker="t", status=429, retry_after=900)]
    delivery = await deliver(storage, "issues", payloads.github_issues())

    run = await processor.run_once()

    stored = await storage.inbox.get("acc", delivery.id)
    assert stored is not None
    assert (1, clock.now() + timedelta(seconds=900)) == (run.retried, stored.claimed_until)
    clock.advance(900)
    assert 1 == (await processor.run_once()).done


async def test_one_failing_delivery_does_not_hold_up_the_others() -> None:
    storage, scripted, _, processor, _ = await setup()
    scripted.put(REPO, remote("2"))
    scripted.errors = [TrackerError("boom", tracker="t", status=500)]
    await deliver(storage, "issues", payloads.github_issues(number=1), n=1)
    await deliver(storage, "issues", payloads.github_issues(number=2), n=2)

    run = await processor.run_once()

    assert (2, 1, 1) == (run.claimed, run.done, run.retried)
    assert 1 == await storage.issues.count("acc", "trk_1")


async def test_a_kick_wakes_the_waiting_loop_at_once() -> None:
    _, _, _, processor, _ = await setup()
    waiting = asyncio.create_task(processor.wait(3600))
    await asyncio.sleep(0)
    assert not waiting.done()

    processor.kick()

    await asyncio.wait_for(waiting, timeout=5)
