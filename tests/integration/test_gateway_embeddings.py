"""``POST /openai/v1/embeddings`` on the real server (uvicorn, SQLite): custody holds the
provider key, the built-in price of ``text-embedding-3-small`` is charged, and the usage is in
the ledger under ``openai.embeddings`` as the REST API shows it. The search indexer's
``GatewayEmbedder`` on the server's own hub (``ModelGatewayOnFirstUse``) is accounted to
``indexer``, and a budget on the API key ``indexer`` stops it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import pytest

from hub.search.gateway_embedder import EmbeddingError, indexer_attribution
from server.hub_services import Hub
from server.model_gateway.fake_provider import FakeProvider, fake_embeddings
from server.search.gateway import gateway_embedder
from tests.integration.conftest import LiveServer, make_settings, run_live, serve_asgi
from tests.integration.mcp.support import eventually

PROVIDER_KEY = "sk-provider-secret-embeddings-0123456789"
KEY_VAR = "EMBEDDINGS_TEST_PROVIDER_KEY"
T = TypeVar("T")
HUBS: list[tuple[Hub, asyncio.AbstractEventLoop]] = []


@pytest.fixture
def provider() -> Iterator[tuple[FakeProvider, str]]:
    fake = FakeProvider(PROVIDER_KEY)
    with serve_asgi(fake, "the fake provider", lifespan="off") as url:
        yield fake, url


@pytest.fixture
def server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: tuple[FakeProvider, str]
) -> Iterator[LiveServer]:
    monkeypatch.setenv(KEY_VAR, PROVIDER_KEY)
    settings = make_settings(tmp_path, PRELOOP_SECRETS_ENV_ALLOW=KEY_VAR)
    HUBS.clear()

    async def ready(hub: Hub) -> None:
        HUBS.append((hub, asyncio.get_running_loop()))

    with run_live(settings, on_ready=ready) as live:
        with httpx.Client(
            base_url=f"{live.url}/api/v1",
            headers={"Authorization": f"Bearer {live.admin_key}"},
            timeout=30,
        ) as api:
            added = api.post(
                "/providers/",
                json={
                    "name": "fake-openai",
                    "kind": "openai",
                    "base_url": f"{provider[1]}/v1",
                    "secret_ref": f"env:{KEY_VAR}",
                    "models": ["text-embedding-*"],
                },
            )
            assert added.status_code == 201, added.text
        yield live


async def test_embeddings_through_the_server_are_priced_and_in_the_ledger(
    server: LiveServer, provider: tuple[FakeProvider, str]
) -> None:
    fake, _ = provider
    texts = ["the login page hangs", "search returns nothing"]
    async with openai.AsyncOpenAI(
        base_url=f"{server.url}/openai/v1", api_key=server.admin_key, max_retries=0, timeout=30
    ) as client:
        answer = await client.embeddings.create(
            model="text-embedding-3-small", input=texts, dimensions=32
        )
    assert [len(item.embedding) for item in answer.data] == [32, 32]
    want = fake_embeddings(texts, 32)
    assert answer.data[1].embedding == pytest.approx(list(want[1]), abs=1e-6)
    assert fake.seen[-1].headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    tokens = answer.usage.prompt_tokens

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        headers = {"Authorization": f"Bearer {server.admin_key}"}

        async def recorded() -> list[dict[str, Any]] | None:  # written off the request path
            answer = await http.get("/api/v1/gateway/usage", headers=headers)
            found: list[dict[str, Any]] = answer.json()["events"]
            return found or None

        events = await eventually(recorded)
    [event] = events
    assert (event["endpoint"], event["model"], event["input_tokens"], event["output_tokens"]) == (
        "openai.embeddings",
        "text-embedding-3-small",
        tokens,
        0,
    )
    # the built-in price: $0.02 per million input tokens
    assert Decimal(event["cost"]) == tokens * Decimal("0.02") / 1_000_000


async def on_server(work: Awaitable[T]) -> T:
    """Run ``work`` on the server's loop, where its hub lives."""
    [(_, loop)] = HUBS
    done: Future[T] = asyncio.run_coroutine_threadsafe(work, loop)  # type: ignore[arg-type]
    return await asyncio.wait_for(asyncio.wrap_future(done), timeout=30)


async def test_the_indexer_embeds_through_the_hub_and_a_budget_stops_it(
    server: LiveServer, provider: tuple[FakeProvider, str]
) -> None:
    [(hub, _)] = HUBS
    account = await on_server(hub.identity.default_account())
    embedder = gateway_embedder(hub, "text-embedding-3-small", None)
    assert str(embedder.identity) == "gateway:text-embedding-3-small@1536"
    vectors = await on_server(embedder.embed(["a crash on start", "dark mode"]))
    assert await embedder.who() == indexer_attribution(account.id)
    assert [len(v) for v in vectors] == [1536, 1536]
    assert "dimensions" not in provider[0].seen[-1].body

    headers = {"Authorization": f"Bearer {server.admin_key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:

        async def recorded() -> list[dict[str, Any]] | None:
            answer = await http.get("/api/v1/gateway/usage", params={"principal": "indexer"})
            found: list[dict[str, Any]] = answer.json()["events"]
            return found or None

        [event] = await eventually(recorded)
        assert (event["endpoint"], event["api_key_id"], event["output_tokens"]) == (
            "openai.embeddings",
            "indexer",
            0,
        )
        assert Decimal(event["cost"]) > 0
        budget = await http.post(
            "/api/v1/budgets/",
            json={"name": "indexing", "scope": "api_key", "scope_id": "indexer", "hard_limit": "0"},
        )
        assert budget.status_code == 201, budget.text

    with pytest.raises(EmbeddingError, match=r"'text-embedding-3-small'.*indexing"):
        await on_server(embedder.embed(["one more"]))
