"""``GatewayEmbedder`` over a scripted gateway: batching, the request it sends, and every way
an answer can be unusable (the end-to-end path through the real gateway is in
tests/model_gateway/test_embeddings.py)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hub.errors import ConfigError, NotFoundError
from hub.model_gateway.records import Attribution
from hub.search.embedders import EmbedderIdentity
from hub.search.gateway_embedder import (
    EmbeddingError,
    GatewayEmbedder,
    indexer_attribution,
    known_dimensions,
)

WHO = indexer_attribution("acct_1")


class Scripted:
    """Answers each request with ``answer(body)``; keeps what it was asked."""

    def __init__(self, answer: Any = None, dims: int = 3) -> None:
        self.asked: list[tuple[Attribution, dict[str, Any]]] = []
        self.dims = dims
        self.answer = answer or self.good

    def good(self, body: dict[str, Any]) -> dict[str, Any]:
        rest = [0.0] * (self.dims - 1)
        data = [
            {"object": "embedding", "index": i, "embedding": [float(i + 1), *rest]}
            for i, _ in enumerate(body["input"])
        ]
        return {"object": "list", "data": list(reversed(data)), "model": body["model"]}

    async def embed(self, who: Attribution, body: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((who, body))
        answer = self.answer(body)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)


def test_the_indexer_pays() -> None:
    assert (WHO.account_id, WHO.api_key_id, WHO.principal) == ("acct_1", "indexer", "indexer")


async def test_whom_to_account_may_be_learnt_once_on_the_first_request() -> None:
    looked_up: list[str] = []

    async def who() -> Attribution:
        looked_up.append("once")
        return WHO

    gateway = Scripted()
    embedder = GatewayEmbedder(gateway, "m", 3, who)
    await embedder.embed(["a"])
    await embedder.embed(["b"])
    assert looked_up == ["once"]
    assert [asked_by for asked_by, _ in gateway.asked] == [WHO, WHO]


async def test_batches_in_order_and_normalised() -> None:
    gateway = Scripted()
    embedder = GatewayEmbedder(gateway, "embed-model", 3, WHO, batch=2)
    vectors = await embedder.embed(["a", "b", "c"])
    assert vectors == [(1.0, 0.0, 0.0)] * 3  # index-ordered, scaled to length 1
    assert [body["input"] for _, body in gateway.asked] == [["a", "b"], ["c"]]
    who, body = gateway.asked[0]
    assert who == WHO
    assert body == {
        "model": "embed-model",
        "input": ["a", "b"],
        "encoding_format": "float",
        "dimensions": 3,
    }
    assert embedder.identity == EmbedderIdentity("gateway", "embed-model", 3)
    assert str(embedder.identity) == "gateway:embed-model@3"


async def test_dimensions_not_configured_are_not_sent_and_come_from_the_model() -> None:
    gateway = Scripted(dims=1536)
    embedder = GatewayEmbedder(gateway, "text-embedding-3-small", None, WHO)
    assert str(embedder.identity) == "gateway:text-embedding-3-small@1536"
    assert await embedder.probe() == embedder.identity
    assert "dimensions" not in gateway.asked[0][1]
    assert known_dimensions("nomic-embed-text:latest") == 768
    assert known_dimensions("openai/text-embedding-3-large") == 3072


def test_unknown_dimensions_are_a_config_error_saying_what_to_write() -> None:
    with pytest.raises(ConfigError, match=r"gateway:my-embedder@DIMS"):
        GatewayEmbedder(Scripted(), "my-embedder", None, WHO)
    with pytest.raises(ConfigError):
        GatewayEmbedder(Scripted(), "m", 0, WHO)


async def test_no_texts_asks_nothing_and_blank_texts_are_zero_vectors() -> None:
    gateway = Scripted()
    embedder = GatewayEmbedder(gateway, "m", 3, WHO)
    assert await embedder.embed([]) == []
    assert await embedder.embed(["", "  "]) == [(0.0, 0.0, 0.0)] * 2
    assert gateway.asked == []
    assert await embedder.embed(["", "a"]) == [(0.0, 0.0, 0.0), (1.0, 0.0, 0.0)]
    assert [body["input"] for _, body in gateway.asked] == [["a"]]


def _answer(*items: dict[str, Any]) -> Any:
    return lambda body: {"data": list(items)}


GARBAGE = [
    (lambda body: {"nothing": True}, "no 'data' list"),
    (_answer({"index": 0, "embedding": [1, 0, 0]}), "1 embeddings for 2 inputs"),
    (
        _answer({"index": 0, "embedding": [1, 0, 0]}, {"index": 0, "embedding": [1, 0, 0]}),
        "two embeddings for input 0",
    ),
    (
        _answer({"index": 0, "embedding": [1, 0, 0]}, {"index": 5, "embedding": [1, 0, 0]}),
        "no valid 'index'",
    ),
    (
        _answer({"index": 0, "embedding": [1, 0, 0]}, {"index": 1, "embedding": [1, 0]}),
        "embedding 1 has 2 dimensions, not 3",
    ),
    (
        _answer({"index": 0, "embedding": [1, 0, math.nan]}, {"index": 1, "embedding": [1, 0, 0]}),
        "not a finite number",
    ),
    (
        _answer({"index": 0, "embedding": "AAAA"}, {"index": 1, "embedding": [1, 0, 0]}),
        "not a list of numbers",
    ),
]


@pytest.mark.parametrize(("answer", "what"), GARBAGE)
async def test_an_unusable_answer_is_refused_naming_the_model(answer: Any, what: str) -> None:
    embedder = GatewayEmbedder(Scripted(answer), "embed-model", 3, WHO)
    with pytest.raises(EmbeddingError, match="'embed-model'") as caught:
        await embedder.embed(["a", "b"])
    assert what in caught.value.message


async def test_a_gateway_refusal_is_an_embedding_error_with_its_cause() -> None:
    refused = NotFoundError("model 'embed-model' is not routed to any provider")
    embedder = GatewayEmbedder(Scripted(lambda body: refused), "embed-model", 3, WHO)
    with pytest.raises(EmbeddingError, match=r"embed-model.*not routed") as caught:
        await embedder.embed(["a"])
    assert caught.value.__cause__ is refused
