"""Issue search with ``PRELOOP_SEARCH_EMBEDDER=gateway:MODEL@DIMS`` on the real server: the
background indexer embeds the issues synced from the fake GitHub through the hub's own model
gateway (custody holds the fake provider's key), the usage is in the ledger under principal
``indexer``, and a similarity search over REST names the gateway model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.trackers.records import RemoteIssue, Tracker, TrackerKind
from hub.trackers.sync import Syncer
from server.hub_services import Hub
from server.model_gateway.fake_provider import FakeProvider
from tests.integration.conftest import LiveServer, make_settings, run_live, serve_asgi
from tests.integration.fakes.github import TOKEN, FakeGitHub
from tests.integration.mcp.support import eventually
from tests.unit.trackers.scripted_client import ScriptedTracker

PROVIDER_KEY = "sk-provider-secret-search-0123456789"
KEY_VAR = "SEARCH_TEST_PROVIDER_KEY"
MODEL = "gateway:text-embedding-3-small@32"


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LiveServer, Any]]:
    github = FakeGitHub()
    github.add_repo("acme/app", description="The app")
    github.add_issue("acme/app", "App crashes on startup", "Right after the splash screen.")
    github.add_issue("acme/app", "Dark mode colours", "The sidebar is grey on grey.")
    provider = FakeProvider(PROVIDER_KEY)
    monkeypatch.setenv(KEY_VAR, PROVIDER_KEY)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with (
        serve_asgi(github, "the fake GitHub", lifespan="off") as github_url,
        serve_asgi(provider, "the fake provider", lifespan="off") as provider_url,
    ):

        async def connect(hub: Hub) -> None:
            assert hub.trackers is not None
            assert hub.tracker_clients is not None
            assert hub.indexer is not None
            account = await hub.identity.default_account()
            await hub.model_router.add(
                account.id,
                name="fake-openai",
                kind="openai",
                base_url=f"{provider_url}/v1",
                secret_ref=f"env:{KEY_VAR}",
                models=["text-embedding-*"],
                actor="test",
            )
            now = datetime.now(UTC)
            tracker = Tracker(
                id="trk_gh",
                account_id=account.id,
                name="gh",
                kind=TrackerKind.GITHUB,
                base_url=github_url,
                token_ref="env:GITHUB_TOKEN",
                projects=("acme/app",),
                poll_seconds=0,
                created_at=now,
                updated_at=now,
            )
            await hub.trackers.trackers.add(tracker)
            await Syncer(hub.trackers, hub.tracker_clients, hub.clock).scan(tracker)
            hub.indexer.kick()

        settings = make_settings(
            tmp_path,
            PRELOOP_SECRETS_ENV_ALLOW=f"{KEY_VAR},GITHUB_TOKEN",
            PRELOOP_SEARCH_EMBEDDER=MODEL,
            PRELOOP_SEARCH_INDEX_SECONDS="0.2",
        )
        with run_live(settings, on_ready=connect) as server:
            yield server, provider


async def test_the_indexer_embeds_through_the_gateway_and_similarity_uses_the_model(
    live: tuple[LiveServer, FakeProvider],
) -> None:
    server, provider = live
    async with httpx.AsyncClient(
        base_url=f"{server.url}/api/v1",
        headers={"Authorization": f"Bearer {server.admin_key}"},
        timeout=30,
    ) as api:

        async def embedded() -> dict[str, Any] | None:
            answer = await api.get(
                "/issues/search", params={"query": "crash on startup", "search_type": "similarity"}
            )
            assert 200 == answer.status_code, answer.text
            found: dict[str, Any] = answer.json()
            return found if found["pending"] == 0 else None

        found = await eventually(embedded)

        async def recorded() -> list[dict[str, Any]] | None:  # written off the request path
            events: list[dict[str, Any]] = (await api.get("/gateway/usage")).json()["events"]
            return [e for e in events if e["principal"] == "indexer"] or None

        usage = await eventually(recorded)

    assert ("exact", "gateway:text-embedding-3-small@32") == (found["engine"], found["model"])
    assert "acme/app#1" == found["results"][0]["key"]
    assert {"openai.embeddings"} == {e["endpoint"] for e in usage}
    assert {"text-embedding-3-small"} == {e["model"] for e in usage}
    bodies = [s for s in provider.seen if s.path.endswith("/embeddings")]
    assert bodies, "the provider was never asked for embeddings"
    assert all(s.headers["authorization"] == f"Bearer {PROVIDER_KEY}" for s in bodies)


@pytest.fixture
def unrouted(tmp_path: Path) -> Iterator[LiveServer]:
    """A gateway embedder whose model no provider serves; one issue synced (scripted)."""

    async def connect(hub: Hub) -> None:
        assert hub.trackers is not None
        scripted = ScriptedTracker()
        at = datetime(2026, 12, 1, tzinfo=UTC)
        scripted.put(
            "acme/app",
            RemoteIssue(
                external_id="e1",
                number="1",
                title="App crashes",
                state="open",
                created_at=at,
                updated_at=at,
            ),
        )
        hub.tracker_clients = scripted
        account = await hub.identity.default_account()
        now = datetime.now(UTC)
        tracker = Tracker(
            id="trk_gh",
            account_id=account.id,
            name="gh",
            kind=TrackerKind.GITHUB,
            base_url="https://api.github.com",
            token_ref="env:GH",
            projects=("acme/app",),
            poll_seconds=0,
            created_at=now,
            updated_at=now,
        )
        await hub.trackers.trackers.add(tracker)
        await Syncer(hub.trackers, scripted, hub.clock).scan(tracker)

    settings = make_settings(tmp_path, PRELOOP_SEARCH_EMBEDDER=MODEL)
    with run_live(settings, on_ready=connect) as server:
        yield server


async def test_a_failing_embeddings_model_is_a_502_naming_it_and_fulltext_still_works(
    unrouted: LiveServer,
) -> None:
    async with httpx.AsyncClient(
        base_url=f"{unrouted.url}/api/v1",
        headers={"Authorization": f"Bearer {unrouted.admin_key}"},
        timeout=30,
    ) as api:
        similar = await api.get(
            "/issues/search", params={"query": "crash", "search_type": "similarity"}
        )
        words = await api.get("/issues/search", params={"query": "crashes"})

    assert 502 == similar.status_code, similar.text
    error = similar.json()["error"]
    assert "EmbeddingError" == error["type"]
    assert error["message"].startswith("embeddings model 'text-embedding-3-small' failed")
    assert 200 == words.status_code
    assert ["acme/app#1"] == [r["key"] for r in words.json()["results"]]
