"""``POST /openai/v1/embeddings`` with the real OpenAI SDK as the client and the fake provider
upstream: float and base64 answers, every input shape, the ledger record and its cost, and every
refusal in OpenAI's envelope."""

from __future__ import annotations

import math
from decimal import Decimal

import httpx
import openai
import pytest

from hub.model_gateway.records import UsageRecord
from server.model_gateway.fake_provider import EMBEDDING_DIMENSIONS, fake_embeddings
from tests.model_gateway.conftest import TOKEN, WHO, LiveModelGateway, all_settled
from tests.model_gateway.embeddings_support import (
    CHAT_ONLY_TOKEN,
    SMALL,
    SMALL_PRICE,
    add_embeddings,
)

MILLION = Decimal(1_000_000)


@pytest.fixture(autouse=True)
def _with_embeddings(gateway: LiveModelGateway) -> None:
    add_embeddings(gateway)


def only_record(gateway: LiveModelGateway) -> UsageRecord:
    assert len(gateway.ledger.records) == 1, gateway.ledger.records
    return gateway.ledger.records[0]


def close(a: list[float], b: tuple[float, ...], tolerance: float = 1e-6) -> bool:
    if len(a) != len(b):
        return False
    return all(math.isclose(x, y, abs_tol=tolerance) for x, y in zip(a, b, strict=True))


async def test_float_list_input_with_dimensions_is_forwarded_and_accounted(
    gateway: LiveModelGateway,
) -> None:
    texts = ["login fails after upgrade", "the export button does nothing"]
    async with gateway.openai() as client:
        answer = await client.embeddings.create(
            model=SMALL, input=texts, dimensions=64, encoding_format="float"
        )
    expected = fake_embeddings(texts, 64)
    assert [item.index for item in answer.data] == [0, 1]
    pairs = zip(answer.data, expected, strict=True)
    assert all(close(item.embedding, want) for item, want in pairs)
    seen = gateway.fake.seen[-1]
    assert (seen.path, seen.body["input"], seen.body["dimensions"]) == (
        "/v1/embeddings",
        texts,
        64,
    )
    assert answer.usage.prompt_tokens == seen.input_tokens
    await all_settled(gateway, 1)
    record = only_record(gateway)
    assert (record.endpoint, record.model, record.provider, record.stream) == (
        "openai.embeddings",
        SMALL,
        "fake-embeddings",
        False,
    )
    assert (record.input_tokens, record.output_tokens, record.cached_tokens) == (
        seen.input_tokens,
        0,
        0,
    )
    assert (record.status, record.outcome, record.principal) == (200, "ok", WHO.principal)
    assert record.cost == seen.input_tokens * SMALL_PRICE.input / MILLION
    assert record.cost > 0
    assert gateway.budgets.spent == record.cost
    # the reservation: the input estimated from the texts (bytes / 2), no output
    [(_, model, reserved)] = gateway.budgets.admitted
    tokens = sum(math.ceil(len(t) / 2) for t in texts)
    assert (model, reserved) == (SMALL, tokens * SMALL_PRICE.input / MILLION)


async def test_base64_the_sdks_default_is_decoded_by_the_sdk(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        answer = await client.embeddings.create(model="embed-fake", input="one string")
    assert gateway.fake.seen[-1].body["encoding_format"] == "base64"
    [item] = answer.data
    [want] = fake_embeddings(["one string"])
    assert len(item.embedding) == EMBEDDING_DIMENSIONS
    assert close(item.embedding, want)  # float32 on the wire


async def test_token_arrays(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        one = await client.embeddings.create(model="embed-fake", input=[1, 2, 3], dimensions=8)
        many = await client.embeddings.create(model="embed-fake", input=[[1, 2], [3]], dimensions=8)
    assert close(one.data[0].embedding, fake_embeddings(["1 2 3"], 8)[0])
    assert [len(item.embedding) for item in many.data] == [8, 8]
    assert close(many.data[1].embedding, fake_embeddings(["3"], 8)[0])
    await all_settled(gateway, 2)
    reserved = [estimate for _, _, estimate in gateway.budgets.admitted]
    assert reserved == [Decimal(0), Decimal(0)]  # unpriced in the doubles' table
    assert [r.endpoint for r in gateway.ledger.records] == ["openai.embeddings"] * 2


async def test_a_hard_budget_stops_it_before_the_provider(gateway: LiveModelGateway) -> None:
    gateway.budgets.hard_limit = Decimal(0)
    async with gateway.openai() as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.embeddings.create(model=SMALL, input="x")
    assert caught.value.status_code == 429
    assert caught.value.code == "budget_exceeded"
    assert gateway.fake.seen == []
    record = only_record(gateway)
    assert (record.endpoint, record.status, record.outcome) == ("openai.embeddings", 429, "refused")


async def test_a_model_the_credential_may_not_use_is_403(gateway: LiveModelGateway) -> None:
    async with gateway.openai(CHAT_ONLY_TOKEN) as client:
        with pytest.raises(openai.PermissionDeniedError, match=SMALL):
            await client.embeddings.create(model=SMALL, input="x")
    assert gateway.fake.seen == []


async def test_an_unknown_model_is_404(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        with pytest.raises(openai.NotFoundError, match="nope"):
            await client.embeddings.create(model="nope", input="x")


async def test_an_anthropic_model_has_no_embeddings(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        with pytest.raises(openai.BadRequestError, match="no embeddings API") as caught:
            await client.embeddings.create(model="claude-fake", input="x")
    assert caught.value.param == "model"
    assert gateway.fake.seen == []


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"model": SMALL}, "input", "'input' must be"),
        ({"model": SMALL, "input": []}, "input", "not empty"),
        ({"model": SMALL, "input": ""}, "input", "empty string"),
        ({"model": SMALL, "input": ["a", 1]}, "input", "mixed kinds"),
        ({"model": SMALL, "input": [[1], []]}, "input", "'input[1]'"),
        ({"model": SMALL, "input": "a", "dimensions": 0}, "dimensions", "'dimensions'"),
        ({"model": SMALL, "input": "a", "encoding_format": "hex"}, "encoding_format", "'hex'"),
        ({"model": SMALL, "input": "a", "dimensions": "8"}, None, "valid embeddings request"),
        ({"input": "a"}, None, "must name a model"),
    ],
)
async def test_a_garbage_body_is_400_naming_what_is_wrong(
    gateway: LiveModelGateway, body: dict[str, object], field: str | None, says: str
) -> None:
    async with httpx.AsyncClient(base_url=f"{gateway.url}/openai/v1") as client:
        response = await client.post(
            "/embeddings", json=body, headers={"authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert says in error["message"]
    assert error["param"] == field
    assert gateway.fake.seen == []
    assert gateway.budgets.admitted == []


async def test_an_oversized_body_is_413(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.embeddings.create(model=SMALL, input="x" * (64 * 1024))
    assert caught.value.status_code == 413
    assert "PRELOOP_GATEWAY_MAX_BODY_BYTES" in caught.value.message
    assert gateway.fake.seen == []


async def test_a_provider_error_passes_through(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        with pytest.raises(openai.InternalServerError):
            await client.embeddings.create(model="fail-500", input="x")
    await all_settled(gateway, 1)
    record = only_record(gateway)
    assert (record.endpoint, record.status, record.outcome) == ("openai.embeddings", 500, "error")


async def test_an_answer_without_usage_is_charged_its_estimate(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        answer = await client.embeddings.create(
            model="embed-no-usage", input=["abcd", "abcdefgh"], encoding_format="float"
        )
    assert len(answer.data) == 2
    await all_settled(gateway, 1)
    record = only_record(gateway)
    assert (record.input_tokens, record.output_tokens, record.outcome) == (2 + 4, 0, "ok")
