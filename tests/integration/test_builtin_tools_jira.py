"""The built-in tools on a Jira tracker: the real Jira adapter against the stateful Jira fake
over real HTTP. Issues by key and browse URL, a status change through Jira's transitions, a
comment, and the pull-request tools saying Jira has none."""

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
from tests.integration.fakes.jira import EMAIL, TOKEN, FakeJira


@dataclass
class Access:
    trackers: InMemoryTrackerStorage
    tracker_clients: HttpTrackerClients
    compliance: ComplianceService | None = None  # the packaged catalogue's rules
    duplicates: Duplicates | None = None  # create_issue checks no duplicates


@pytest.fixture
def jira() -> Iterator[tuple[FakeJira, str]]:
    fake = FakeJira()
    fake.add_project("OPS", "Operations")
    fake.add_issue("OPS", "Nightly backup fails", "The 02:00 job stops with a timeout.")
    with serve_asgi(fake, "the fake Jira", lifespan="off") as url:
        yield fake, url


async def tools_on(url: str) -> BuiltinTools:
    custody = Custody(
        {"env": EnvBackend({"JIRA_TOKEN": TOKEN}, ["JIRA_TOKEN"])},
        auditor=None,  # type: ignore[arg-type]  # resolving a token audits nothing
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tracker = Tracker(
        id="trk_jira",
        account_id="acc",
        name="jira",
        kind=TrackerKind.JIRA,
        base_url=url,
        token_ref="env:JIRA_TOKEN",
        username=EMAIL,
        projects=("OPS",),
        created_at=now,
        updated_at=now,
    )
    storage, clients, clock = InMemoryTrackerStorage(), HttpTrackerClients(custody), FrozenClock()
    await storage.trackers.add(tracker)
    report = await Syncer(storage, clients, clock).scan(tracker)
    assert ([], 1) == (report.errors, report.issues)
    return BuiltinTools(Access(storage, clients), clock)


async def run(tools: BuiltinTools, tool: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
    result = (await tools.run("acc", tool, arguments)).as_dict()
    return result["isError"], dict(result["structuredContent"])


async def test_jira_issues_by_key_and_url_and_a_transition(jira: tuple[FakeJira, str]) -> None:
    fake, url = jira
    tools = await tools_on(url)

    _, by_key = await run(tools, "get_issue", issue="OPS-1")
    _, by_url = await run(tools, "get_issue", issue=f"{url}/browse/OPS-1", refresh=True)
    failed, done = await run(tools, "update_issue", issue="OPS-1", status="Done")
    _, commented = await run(tools, "add_comment", target="OPS-1", comment="Fixed the cron")
    refused, pr = await run(tools, "get_pull_request", pull_request="OPS-1")

    assert ("index", "Nightly backup fails") == (by_key["source"], by_key["issue"]["title"])
    assert ("live", "OPS-1") == (by_url["source"], by_url["issue"]["key"])
    assert not failed, done
    assert "Done" == done["issue"]["state"]
    assert "Done" == fake.issues["OPS-1"]["fields"]["status"]["name"]
    assert "created" == commented["status"]
    assert refused
    assert "has no pull or merge requests" in pr["error"]
