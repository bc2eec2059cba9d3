"""``create_issue``'s duplicate check against the stateful GitHub fake over real HTTP (the real
GitHub adapter): a draft like a synced issue (open or closed) is answered with the candidates
and nothing reaches GitHub; ``force: true`` creates it; a new topic is created at once."""

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
from hub.search.embedders import HashingEmbedder
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.records import Tracker, TrackerKind
from hub.trackers.sync import Syncer
from server.trackers import HttpTrackerClients
from tests.integration.conftest import serve_asgi
from tests.integration.fakes.github import TOKEN, FakeGitHub
from tests.unit.search.duplicates import ISSUES

REPO = "acme/app"


@dataclass
class Access:
    trackers: InMemoryTrackerStorage
    tracker_clients: HttpTrackerClients
    duplicates: Duplicates | None
    compliance: ComplianceService | None = None  # the packaged catalogue's rules


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    fake.add_repo(REPO)
    for name, text in ISSUES.items():
        title, _, body = text.partition(". ")
        fake.add_issue(REPO, title, body, state="closed" if name == "export-1" else "open")
    with serve_asgi(fake, "the fake GitHub", lifespan="off") as url:
        yield fake, url


async def tools_on(url: str) -> BuiltinTools:
    custody = Custody(
        {"env": EnvBackend({"GH_TOKEN": TOKEN}, ["GH_TOKEN"])},
        auditor=None,  # type: ignore[arg-type]  # resolving a token audits nothing
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tracker = Tracker(
        id="trk_gh",
        account_id="acc",
        name="gh",
        kind=TrackerKind.GITHUB,
        base_url=url,
        token_ref="env:GH_TOKEN",
        projects=(REPO,),
        created_at=now,
        updated_at=now,
    )
    storage, clients, clock = InMemoryTrackerStorage(), HttpTrackerClients(custody), FrozenClock()
    await storage.trackers.add(tracker)
    report = await Syncer(storage, clients, clock).scan(tracker)
    assert ([], 33) == (report.errors, report.issues)
    duplicates = Duplicates(storage, storage.duplicates, HashingEmbedder, clock)
    assert 33 == (await duplicates.scan("acc")).embedded  # the index, as the indexer builds it
    return BuiltinTools(Access(storage, clients, duplicates), clock)


async def create(tools: BuiltinTools, **arguments: Any) -> dict[str, Any]:
    result = (await tools.run("acc", "create_issue", {"project": REPO, **arguments})).as_dict()
    assert result["isError"] is False, result["content"]
    return dict(result["structuredContent"])


async def test_a_duplicate_draft_is_answered_and_force_creates_it(
    github: tuple[FakeGitHub, str],
) -> None:
    fake, url = github
    tools = await tools_on(url)
    title, _, body = ISSUES["export-2"].partition(". ")

    answered = await create(tools, title=title, description=body)
    forced = await create(tools, title=title, description=body, force=True)

    assert (False, "possible_duplicates") == (answered["created"], answered["status"])
    candidates = {c["key"]: c for c in answered["candidates"]}
    assert {"acme/app#9", "acme/app#10"} == set(candidates)  # export-1 (closed), export-2
    assert (True, "closed") == (
        candidates["acme/app#9"]["closed"],
        candidates["acme/app#9"]["state"],
    )
    assert candidates["acme/app#10"]["url"] == "https://github.com/acme/app/issues/10"
    assert (True, "acme/app#34") == (forced["created"], forced["issue"]["key"])
    assert 34 == len(fake.repos[REPO]["issues"])  # only the forced one reached GitHub


async def test_a_new_topic_is_created_at_once(github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    tools = await tools_on(url)

    created = await create(
        tools, title="Dark mode for the settings page", description="Follow the OS theme."
    )

    assert (True, "acme/app#34") == (created["created"], created["issue"]["key"])
    assert created["duplicate_check"]["index_ready"] is True
    assert "Dark mode for the settings page" == fake.issue(REPO, 34)["title"]
