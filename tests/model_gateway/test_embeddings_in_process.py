"""``ModelGateway.embed`` in process (what the search indexer calls), accounted to the
``indexer`` principal, and ``GatewayEmbedder`` end to end through the real gateway and the fake
provider."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from decimal import Decimal
from types import SimpleNamespace

import pytest

from hub.errors import NotFoundError
from hub.model_gateway.ports import BudgetExceededError, ModelGateway
from hub.search.embedders import EmbedderIdentity
from hub.search.gateway_embedder import EmbeddingError, GatewayEmbedder, indexer_attribution
from server.hub_services import ModelGatewayOnFirstUse
from server.model_gateway.fake_provider import fake_embeddings
from tests.model_gateway.conftest import LiveModelGateway
from tests.model_gateway.embeddings_support import SMALL, SMALL_PRICE, add_embeddings

INDEXER = indexer_attribution("acc")
MILLION = Decimal(1_000_000)


@pytest.fixture(autouse=True)
async def _own_pool(gateway: LiveModelGateway) -> AsyncIterator[None]:
    """These calls run on the test's loop: their upstream pool is closed on it too."""
    add_embeddings(gateway)
    yield
    await gateway.proxy.close()


async def test_embed_is_accounted_to_the_indexer(gateway: LiveModelGateway) -> None:
    port: ModelGateway = gateway.proxy
    answer = await port.embed(INDEXER, {"model": SMALL, "input": ["a b"], "dimensions": 16})
    [item] = answer["data"]
    assert item["embedding"] == pytest.approx(list(fake_embeddings(["a b"], 16)[0]))
    [record] = gateway.ledger.records
    assert (record.endpoint, record.principal, record.api_key_id, record.account_id) == (
        "openai.embeddings",
        "indexer",
        "indexer",
        "acc",
    )
    assert record.input_tokens == answer["usage"]["prompt_tokens"]
    assert record.output_tokens == 0
    assert record.cost == record.input_tokens * SMALL_PRICE.input / MILLION
    assert gateway.budgets.spent == record.cost
    assert gateway.budgets.admitted[0][0] == INDEXER


async def test_embed_refusals_raise(gateway: LiveModelGateway) -> None:
    with pytest.raises(NotFoundError):
        await gateway.proxy.embed(INDEXER, {"model": "nope", "input": "x"})
    gateway.budgets.hard_limit = Decimal(0)
    with pytest.raises(BudgetExceededError):
        await gateway.proxy.embed(INDEXER, {"model": SMALL, "input": "x"})
    outcomes = [(r.status, r.outcome) for r in gateway.ledger.records]
    assert outcomes == [(404, "refused"), (429, "refused")]


async def test_the_gateway_embedder_end_to_end(gateway: LiveModelGateway) -> None:
    hub = SimpleNamespace(model_gateway=gateway.proxy)  # what the hub hands the embedder
    on_first_use = ModelGatewayOnFirstUse(hub)  # type: ignore[arg-type]
    embedder = GatewayEmbedder(on_first_use, "embed-fake", 32, INDEXER, batch=2)
    assert embedder.identity == EmbedderIdentity("gateway", "embed-fake", 32)
    texts = ["crash on start", "", "crash at startup", "dark mode please", "export is slow"]
    vectors = await embedder.embed(texts)
    expected = fake_embeddings(texts, 32)
    assert len(vectors) == len(texts)
    for got, want in zip(vectors, expected, strict=True):
        assert got == pytest.approx(want)
        norm = math.hypot(*got)
        assert norm == pytest.approx(1.0) or norm == 0.0  # the empty text: the zero vector
    asked = [seen.body for seen in gateway.fake.seen]
    assert [body["input"] for body in asked] == [[texts[0], texts[2]], texts[3:]]  # no blank
    assert {(body["encoding_format"], body["dimensions"]) for body in asked} == {("float", 32)}
    assert [r.principal for r in gateway.ledger.records] == ["indexer"] * 2


async def test_the_gateway_embedder_refuses_a_provider_short_of_vectors(
    gateway: LiveModelGateway,
) -> None:
    embedder = GatewayEmbedder(gateway.proxy, "embed-fewer", 8, INDEXER)
    with pytest.raises(EmbeddingError, match=r"'embed-fewer'.*1 embeddings for 2 inputs"):
        await embedder.embed(["one", "two"])


async def test_the_gateway_embedder_names_the_model_when_the_gateway_refuses(
    gateway: LiveModelGateway,
) -> None:
    embedder = GatewayEmbedder(gateway.proxy, "claude-fake", 8, INDEXER)
    with pytest.raises(EmbeddingError, match=r"'claude-fake'.*no embeddings API"):
        await embedder.embed(["one"])
