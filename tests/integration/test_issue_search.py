"""Issue search end to end: a real server (SQLite) whose tracker is the stateful GitHub fake
over real HTTP, the background indexer embedding what was synced, ``GET /api/v1/issues/search``
with each search type, and ``preloop issues search``; then the same searches on PostgreSQL
with pgvector, through the hub as the server opens it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from hub.search.records import SearchType
from hub.settings import Settings
from hub.trackers.records import IssueQuery, RemoteIssue, Tracker, TrackerKind
from hub.trackers.sync import Syncer
from server.bootstrap import open_hub
from server.cli.main import cli
from server.hub_services import Hub
from tests.integration.conftest import LiveServer, make_settings, run_live, serve_asgi
from tests.integration.fakes.github import TOKEN, FakeGitHub
from tests.integration.mcp.support import eventually
from tests.unit.trackers.scripted_client import ScriptedTracker

ISSUES = (
    ("App crashes on startup", "The app crashes right after the splash screen."),
    ("Crashing when starting offline", "Without network the app crashed while starting."),
    ("Dark mode colours are unreadable", "The sidebar text is grey on grey."),
    ("Export to CSV drops the header row", "The first line of the file is missing."),
)
QUERY = "crash on startup"


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    fake.add_repo("acme/app", description="The app")
    for title, body in ISSUES:
        fake.add_issue("acme/app", title, body)
    with serve_asgi(fake, "the fake GitHub", lifespan="off") as url:
        yield fake, url


@pytest.fixture
def settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: tuple[FakeGitHub, str]
) -> Settings:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    return make_settings(
        tmp_path, PRELOOP_SECRETS_ENV_ALLOW="GITHUB_TOKEN", PRELOOP_SEARCH_INDEX_SECONDS="0.2"
    )


@pytest.fixture
def live(settings: Settings, github: tuple[FakeGitHub, str]) -> Iterator[LiveServer]:
    """The server with the fake GitHub connected as tracker ``gh`` and synced once; the
    background indexer is kicked (it embeds within its interval anyway)."""

    async def connect(hub: Hub) -> None:
        assert hub.trackers is not None
        assert hub.tracker_clients is not None
        assert hub.indexer is not None
        account = await hub.identity.default_account()
        now = datetime.now(UTC)
        tracker = Tracker(
            id="trk_gh",
            account_id=account.id,
            name="gh",
            kind=TrackerKind.GITHUB,
            base_url=github[1],
            token_ref="env:GITHUB_TOKEN",
            projects=("acme/app",),
            poll_seconds=0,
            created_at=now,
            updated_at=now,
        )
        await hub.trackers.trackers.add(tracker)
        report = await Syncer(hub.trackers, hub.tracker_clients, hub.clock).scan(tracker)
        assert (report.issues, report.errors) == (4, [])
        hub.indexer.kick()

    with run_live(settings, on_ready=connect) as server:
        yield server


async def search(live: LiveServer, **params: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=live.url) as client:
        answer = await client.get(
            "/api/v1/issues/search",
            params=params,
            headers={"Authorization": f"Bearer {live.admin_key}"},
        )
    assert 200 == answer.status_code, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def embedded(live: LiveServer) -> dict[str, Any]:
    """A similarity search once the background indexer has embedded every issue."""

    async def probe() -> dict[str, Any] | None:
        found = await search(live, query=QUERY, search_type="similarity")
        return found if found["pending"] == 0 else None

    return await eventually(probe)


async def test_each_search_type_over_rest_says_what_answered(live: LiveServer) -> None:
    similar = await embedded(live)
    words = await search(live, query=QUERY, search_type="fulltext")
    hybrid = await search(live, query=QUERY, search_type="hybrid", project="acme/app")

    assert ("fulltext", "fulltext", None, 0) == (
        words["search_type"],
        words["engine"],
        words["model"],
        words["pending"],
    )
    # title words count double: crash(es) is not crash, "on" and "startup" are (#3 has "on")
    assert [("acme/app#1", 4.0), ("acme/app#3", 1.0)] == [
        (r["key"], r["score"]) for r in words["results"]
    ]
    assert ("similarity", "exact", "local:hashing-v1@512") == (
        similar["search_type"],
        similar["engine"],
        similar["model"],
    )
    # by meaning the offline crash is found too ("Crashing when starting": no query word)
    assert {"acme/app#1", "acme/app#2"} <= {r["key"] for r in similar["results"]}
    assert similar["results"][0]["score"] >= similar["results"][1]["score"] > 0
    assert ("hybrid", "hybrid-rrf(fulltext+exact)") == (hybrid["search_type"], hybrid["engine"])
    assert "acme/app#1" == hybrid["results"][0]["key"]  # found by both, first in both
    assert "acme/app#2" in {r["key"] for r in hybrid["results"]}


async def test_similarity_needs_a_query(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as client:
        answer = await client.get(
            "/api/v1/issues/search",
            params={"search_type": "similarity"},
            headers={"Authorization": f"Bearer {live.admin_key}"},
        )

    assert 400 == answer.status_code
    assert "query: a similarity search" in answer.text


async def test_preloop_issues_search(live: LiveServer) -> None:
    await embedded(live)

    def invoke(*args: str) -> tuple[int, str]:
        argv = ["issues", "search", *args, "--url", live.url, "--key", live.admin_key]
        result = CliRunner().invoke(cli, argv, catch_exceptions=False)
        return result.exit_code, result.stdout

    code, out = invoke(QUERY, "--type", "hybrid", "--project", "acme/app", "--limit", "2")
    assert 0 == code
    lines = out.splitlines()
    assert lines[0].startswith(
        "2 results (hybrid search, engine hybrid-rrf(fulltext+exact), model local:hashing-v1@512)"
    )
    assert lines[1].split() == ["SCORE", "KEY", "STATE", "TITLE", "UPDATED"]
    assert "acme/app#1" == lines[2].split()[1]
    code, out = invoke("header", "--json", "--state", "open")
    assert 0 == code
    found = json.loads(out)
    assert ("fulltext", ["acme/app#4"]) == (
        found["search_type"],
        [r["key"] for r in found["results"]],
    )
    code, out = invoke("nothing like it", "--type", "fulltext")
    assert (0, "0 results (fulltext search, engine fulltext)\n") == (code, out)


def remote(number: int, title: str, body: str) -> RemoteIssue:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    return RemoteIssue(
        external_id=f"ext-{number}",
        number=str(number),
        title=title,
        body=body,
        state="open",
        created_at=at,
        updated_at=at,
    )


async def test_the_searches_on_postgresql_with_pgvector(tmp_path: Path, pgvector_url: str) -> None:
    hub = await open_hub(make_settings(tmp_path, PRELOOP_DATABASE_URL=pgvector_url))
    try:
        assert hub.trackers is not None
        assert hub.issue_search is not None
        assert hub.indexer is not None
        scripted = ScriptedTracker()
        for n, (title, body) in enumerate(ISSUES, start=1):
            scripted.put("acme/app", remote(n, title, body))
        hub.tracker_clients = scripted
        account = await hub.identity.default_account()
        now = datetime.now(UTC)
        tracker = Tracker(
            id="trk_pg",
            account_id=account.id,
            name="gh",
            kind=TrackerKind.GITHUB,
            base_url="https://api.github.com",
            token_ref="env:GH",
            projects=("acme/app",),
            created_at=now,
            updated_at=now,
        )
        await hub.trackers.trackers.add(tracker)
        await Syncer(hub.trackers, scripted, hub.clock).scan(tracker)
        query = IssueQuery(text=QUERY)

        before = await hub.issue_search.search(account.id, query, SearchType.SIMILARITY)
        assert (4, ()) == (before.pending, before.hits)
        assert 4 == await hub.indexer.run_once()
        assert 0 == await hub.indexer.run_once()  # incremental: nothing changed
        similar = await hub.issue_search.search(account.id, query, SearchType.SIMILARITY)
        hybrid = await hub.issue_search.search(account.id, query, SearchType.HYBRID)
        words = await hub.issue_search.search(account.id, query, SearchType.FULLTEXT)
    finally:
        await hub.close()

    assert ("pgvector-hnsw", "local:hashing-v1@512", 0) == (
        similar.engine,
        similar.model,
        similar.pending,
    )
    assert {"acme/app#1", "acme/app#2"} <= {h.issue.key for h in similar.hits}
    assert "hybrid-rrf(fulltext+pgvector-hnsw)" == hybrid.engine
    assert "acme/app#1" == hybrid.hits[0].issue.key
    assert ["acme/app#1", "acme/app#3"] == [h.issue.key for h in words.hits]
