"""The sync engine (hub/trackers/sync.py) driving the real adapters over the fakes, through
``HttpTrackerClients``: what the adapters answer fits the engine (GitHub's 304 on an
unchanged first page, GitLab's issues and merge requests told apart, Jira's cursor)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.clock import FrozenClock
from hub.model_gateway.custody import Custody, EnvBackend
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.records import IssueKind, Tracker, TrackerKind
from hub.trackers.sync import Syncer
from server.trackers import HttpTrackerClients
from tests.integration.fakes import github as gh
from tests.integration.fakes import gitlab as gl
from tests.integration.fakes import jira as jr

T0 = datetime(2026, 12, 1, tzinfo=UTC)
ENV = {"GH_TOKEN": gh.TOKEN, "GL_TOKEN": gl.TOKEN, "JIRA_TOKEN": jr.TOKEN}


async def _syncer(tracker: Tracker, waits) -> tuple[InMemoryTrackerStorage, Syncer]:
    storage = InMemoryTrackerStorage()
    await storage.trackers.add(tracker)
    custody = Custody({"env": EnvBackend(ENV, list(ENV))}, auditor=None)  # type: ignore[arg-type]
    clients = HttpTrackerClients(custody, retry=waits.policy)
    return storage, Syncer(storage, clients, FrozenClock(T0 + timedelta(days=400)))


def _tracker(kind: TrackerKind, url: str, ref: str, project: str, **extra: str) -> Tracker:
    return Tracker(
        id=f"trk_{kind.value}",
        account_id="acc",
        name=kind.value,
        kind=kind,
        base_url=url,
        token_ref=ref,
        projects=(project,),
        created_at=T0,
        updated_at=T0,
        **extra,  # type: ignore[arg-type]
    )


async def test_github_scan_then_not_modified_then_the_change(github, waits):
    fake, url = github
    fake.add_repo("acme/app")
    for n in range(3):
        fake.add_issue("acme/app", f"Issue {n}")
    fake.add_pull("acme/app", "A fix")
    fake.add_comment("acme/app", 1, "hello")
    tracker = _tracker(TrackerKind.GITHUB, url, "env:GH_TOKEN", "acme/app")
    storage, syncer = await _syncer(tracker, waits)
    first = await syncer.scan(tracker)
    incremental = await syncer.scan(tracker)  # since the newest: its first page's ETag is kept
    unchanged = await syncer.scan(tracker)
    fake.touch("acme/app", 2, title="Issue 1, edited")
    changed = await syncer.scan(tracker)
    assert (first.issues, first.comments, first.errors) == (4, 1, [])
    assert (incremental.issues, incremental.not_modified) == (1, 0)  # `since` is inclusive
    assert (unchanged.issues, unchanged.not_modified) == (0, 1)
    assert fake.requests_to("GET", "/repos/acme/app/issues")[-2].headers["if-none-match"]
    assert changed.issues >= 1
    found = await storage.issues.find("acc", "acme/app#2")
    assert [i.title for i in found] == ["Issue 1, edited"]
    pull = await storage.issues.find("acc", "acme/app#4")
    assert pull[0].kind is IssueKind.PULL_REQUEST


async def test_gitlab_scan_keeps_issue_1_and_merge_request_1_apart(gitlab, waits):
    fake, url = gitlab
    fake.add_project("acme/api")
    fake.add_issue("acme/api", "An issue")
    fake.add_merge_request("acme/api", "A merge request")
    fake.add_note("acme/api", 1, "On the MR", mr=True)
    tracker = _tracker(TrackerKind.GITLAB, url, "env:GL_TOKEN", "acme/api")
    storage, syncer = await _syncer(tracker, waits)
    report = await syncer.scan(tracker)
    issue = await storage.issues.find("acc", "acme/api#1")
    merge = await storage.issues.find("acc", "acme/api!1")
    assert (report.issues, report.comments, report.errors) == (2, 1, [])
    assert [i.title for i in issue] == ["An issue"]
    assert [i.title for i in merge] == ["A merge request"]
    comments = await storage.issues.comments("acc", merge[0].id)
    assert [c.body for c in comments] == ["On the MR"]


async def test_jira_scan_with_basic_auth(jira, waits):
    fake, url = jira
    fake.add_project("OPS")
    fake.add_issue("OPS", "Disk full", "Please\n\nclean up")
    tracker = _tracker(TrackerKind.JIRA, url, "env:JIRA_TOKEN", "OPS", username=jr.EMAIL)
    storage, syncer = await _syncer(tracker, waits)
    first = await syncer.scan(tracker)
    again = await syncer.scan(tracker)
    (issue,) = await storage.issues.find("acc", "OPS-1")
    assert (first.issues, first.errors) == (1, [])
    assert again.errors == []
    assert issue.body == "Please\n\nclean up"
    assert '"OPS" AND updated >=' in fake.requests_to("POST", "/search/jql")[-1].body["jql"]
