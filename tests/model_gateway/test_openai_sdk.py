"""The real OpenAI SDK against the gateway, which forwards to the fake provider: every OpenAI
endpoint, streaming and not, and the usage the ledger records for each."""

from __future__ import annotations

from decimal import Decimal

from hub.model_gateway.records import UsageRecord
from server.model_gateway.fake_provider import REPLY
from tests.model_gateway.conftest import PROVIDER_KEY, WHO, LiveModelGateway, all_settled


def only_record(gateway: LiveModelGateway) -> UsageRecord:
    assert len(gateway.ledger.records) == 1, gateway.ledger.records
    return gateway.ledger.records[0]


def assert_usage_matches_provider(gateway: LiveModelGateway, record: UsageRecord) -> None:
    seen = gateway.fake.seen[-1]
    assert (record.input_tokens, record.output_tokens, record.cached_tokens) == (
        seen.input_tokens,
        seen.output_tokens,
        seen.cached_tokens,
    )
    assert record.input_tokens > 0
    assert record.output_tokens > 0
    assert record.cached_tokens > 0


async def test_models_lists_what_the_router_routes(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        page = await client.models.list()
    ids = [m.id for m in page.data]
    assert ids == sorted(ids)
    assert {"gpt-fake*", "fast", "claude-fake"} <= set(ids)
    assert only_record(gateway).endpoint == "openai.models"


async def test_chat_completion_passes_through_and_is_accounted(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        answer = await client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "hi"}]
        )
    assert answer.choices[0].message.content == REPLY
    seen = gateway.fake.seen[-1]
    assert seen.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert seen.body == {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == seen.input_tokens
    record = only_record(gateway)
    assert_usage_matches_provider(gateway, record)
    assert (record.endpoint, record.model, record.provider, record.stream) == (
        "openai.chat",
        "gpt-fake",
        "fake-openai",
        False,
    )
    assert (record.status, record.outcome, record.error) == (200, "ok", None)
    assert (record.account_id, record.api_key_id, record.flow, record.execution_id) == (
        WHO.account_id,
        WHO.api_key_id,
        WHO.flow,
        WHO.execution_id,
    )
    fresh = record.input_tokens - record.cached_tokens
    expected = (
        fresh * Decimal("2.50") + record.cached_tokens * Decimal("1.25") + record.output_tokens * 10
    ) / 1_000_000
    assert record.cost == expected
    await all_settled(gateway, 1)
    [(admission, settled)] = gateway.budgets.settled
    assert settled == expected
    assert admission.reserved >= expected


async def test_an_alias_is_sent_upstream_as_its_model(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        await client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
    assert gateway.fake.seen[-1].body["model"] == "gpt-fake"
    assert gateway.fake.seen[-1].body["max_tokens"] == 3
    record = only_record(gateway)
    assert (record.model, record.upstream_model, record.output_tokens) == ("fast", "gpt-fake", 3)


async def test_chat_stream_without_usage_gets_none_but_the_ledger_does(
    gateway: LiveModelGateway,
) -> None:
    async with gateway.openai() as client:
        stream = await client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert all(c.choices for c in chunks), "the usage chunk the client did not ask for leaked"
    assert all(getattr(c, "usage", None) is None for c in chunks)
    assert gateway.fake.seen[-1].body["stream_options"] == {"include_usage": True}
    record = only_record(gateway)
    assert (record.stream, record.outcome) == (True, "ok")
    assert_usage_matches_provider(gateway, record)


async def test_chat_stream_with_usage_gets_it(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        stream = await client.chat.completions.create(
            model="gpt-fake",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    record = only_record(gateway)
    assert last.usage.completion_tokens == record.output_tokens
    assert_usage_matches_provider(gateway, record)


async def test_responses_not_streamed(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        response = await client.responses.create(model="gpt-fake", input="hi")
    assert response.output_text == REPLY
    record = only_record(gateway)
    assert (record.endpoint, record.stream) == ("openai.responses", False)
    assert_usage_matches_provider(gateway, record)


async def test_responses_streamed(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        stream = await client.responses.create(model="gpt-fake", input="hi", stream=True)
        events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == REPLY
    record = only_record(gateway)
    assert (record.endpoint, record.stream) == ("openai.responses", True)
    assert_usage_matches_provider(gateway, record)
