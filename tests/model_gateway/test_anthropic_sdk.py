"""The real Anthropic SDK against the gateway: messages, streamed and not, and the usage
recorded (cache reads counted in the input, as the ledger normalises them)."""

from __future__ import annotations

from server.model_gateway.fake_provider import REPLY
from tests.model_gateway.conftest import PROVIDER_KEY, LiveModelGateway
from tests.model_gateway.test_openai_sdk import assert_usage_matches_provider, only_record


async def test_messages_not_streamed(gateway: LiveModelGateway) -> None:
    async with gateway.anthropic() as client:
        message = await client.messages.create(
            model="claude-fake", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.content[0].type == "text"
    assert message.content[0].text == REPLY
    seen = gateway.fake.seen[-1]
    assert seen.headers["x-api-key"] == PROVIDER_KEY
    assert "authorization" not in seen.headers
    assert seen.headers["anthropic-version"]  # the SDK's version header is passed on
    record = only_record(gateway)
    assert (record.endpoint, record.provider, record.stream) == (
        "anthropic.messages",
        "fake-anthropic",
        False,
    )
    assert_usage_matches_provider(gateway, record)
    assert message.usage.cache_read_input_tokens == record.cached_tokens


async def test_messages_streamed(gateway: LiveModelGateway) -> None:
    async with gateway.anthropic() as client:
        stream = await client.messages.create(
            model="claude-fake",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
        kinds = [event.type async for event in stream]
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    record = only_record(gateway)
    assert (record.stream, record.outcome) == (True, "ok")
    assert_usage_matches_provider(gateway, record)


async def test_messages_stream_helper(gateway: LiveModelGateway) -> None:
    async with (
        gateway.anthropic() as client,
        client.messages.stream(
            model="claude-fake", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == " ".join(REPLY.split(" ")[:5])
    record = only_record(gateway)
    assert final.usage.output_tokens == record.output_tokens == 5
    assert_usage_matches_provider(gateway, record)


async def test_models_lists_the_anthropic_family(gateway: LiveModelGateway) -> None:
    async with gateway.anthropic() as client:
        page = await client.models.list()
    assert [m.id for m in page.data] == ["broken", "claude-fake", "fail-*", "slow"]
    assert only_record(gateway).endpoint == "anthropic.models"
