"""The built-in tools on a GitLab tracker: the real GitLab adapter against the stateful GitLab
fake over real HTTP, merge requests named ``group/project!IID`` or by URL, issues by
``group/project#IID``; reads from the index after a sync, writes through to the fake."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.builtin_tools.runner import BuiltinTools
from hub.clock import FrozenClock
from hub.compliance.service import ComplianceService
from hub.model_gateway.custody import Custody, EnvBackend
from hub.search.duplicates import Duplicates
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.records import Tracker, TrackerKind
from hub.trackers.sync import Syncer
from server.trackers import HttpTrackerClients
from tests.integration.conftest import serve_asgi
from tests.integration.fakes.gitlab import TOKEN, FakeGitLab

PROJECT = "group/app"


@dataclass
class Access:
    trackers: InMemoryTrackerStorage
    tracker_clients: HttpTrackerClients
    compliance: ComplianceService | None = None  # the packaged catalogue's rules
    duplicates: Duplicates | None = None  # create_issue checks no duplicates


@pytest.fixture
def gitlab() -> Iterator[tuple[FakeGitLab, str]]:
    fake = FakeGitLab()
    fake.add_project(PROJECT, description="The app")
    fake.add_issue(PROJECT, "Exports time out", "Large exports stop after 30 s.")
    fake.add_merge_request(PROJECT, "Stream exports", "Closes #1", source="stream")
    with serve_asgi(fake, "the fake GitLab", lifespan="off") as url:
        yield fake, url


async def tools_on(url: str) -> BuiltinTools:
    custody = Custody(
        {"env": EnvBackend({"GL_TOKEN": TOKEN}, ["GL_TOKEN"])},
        auditor=None,  # type: ignore[arg-type]  # resolving a token audits nothing
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tracker = Tracker(
        id="trk_gl",
        account_id="acc",
        name="gl",
        kind=TrackerKind.GITLAB,
        base_url=url,
        token_ref="env:GL_TOKEN",
        projects=(PROJECT,),
        created_at=now,
        updated_at=now,
    )
    storage, clients, clock = InMemoryTrackerStorage(), HttpTrackerClients(custody), FrozenClock()
    await storage.trackers.add(tracker)
    report = await Syncer(storage, clients, clock).scan(tracker)
    assert ([], 2) == (report.errors, report.issues)
    return BuiltinTools(Access(storage, clients), clock)


async def run(tools: BuiltinTools, tool: str, **arguments: Any) -> dict[str, Any]:
    result = (await tools.run("acc", tool, arguments)).as_dict()
    assert result["isError"] is False, result["content"]
    return dict(result["structuredContent"])


async def test_merge_requests_and_issues_by_key_and_url(gitlab: tuple[FakeGitLab, str]) -> None:
    fake, url = gitlab
    tools = await tools_on(url)

    issue = await run(tools, "get_issue", issue=f"{PROJECT}#1")
    mr = await run(tools, "get_pull_request", pull_request=f"{PROJECT}!1", include_diff=False)
    by_url = await run(
        tools, "get_pull_request", pull_request=f"{url}/{PROJECT}/-/merge_requests/1"
    )
    approved = await run(
        tools, "update_pull_request", pull_request=f"{PROJECT}!1", review_action="approve"
    )
    found = await run(tools, "search", query="exports", project=PROJECT)

    assert ("index", "Exports time out") == (issue["source"], issue["issue"]["title"])
    assert ("index", f"{PROJECT}!1", "pull_request") == (
        mr["source"],
        mr["pull_request"]["key"],
        mr["pull_request"]["kind"],
    )
    assert ("live", "Stream exports") == (by_url["source"], by_url["pull_request"]["title"])
    assert "approve" == approved["review"]
    assert fake.approvals_of(PROJECT, 1)
    assert {f"{PROJECT}#1", f"{PROJECT}!1"} == {r["key"] for r in found["results"]}
