"""Errors reach the SDKs in the provider's own envelope, so they raise their usual exceptions;
every refusal and error is still one ledger record; the provider key never shows."""

from __future__ import annotations

import logging
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest

from tests.integration.mcp.support import eventually
from tests.model_gateway.conftest import PROVIDER_KEY, TOKEN, LiveModelGateway, all_settled

HI = [{"role": "user", "content": "hi"}]


async def test_a_bad_key_is_an_authentication_error(gateway: LiveModelGateway) -> None:
    async with gateway.openai(key="pl_not_a_key") as client:
        with pytest.raises(openai.AuthenticationError) as raised:
            await client.chat.completions.create(model="gpt-fake", messages=HI)  # type: ignore[arg-type]
    assert raised.value.code == "invalid_api_key"
    async with gateway.anthropic(key="pl_not_a_key") as client:
        with pytest.raises(anthropic.AuthenticationError):
            await client.messages.create(model="claude-fake", max_tokens=5, messages=HI)  # type: ignore[arg-type]
    assert gateway.fake.seen == []  # refused before the provider
    assert gateway.ledger.records == []  # nobody to attribute it to


async def test_an_unknown_model_is_not_found(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        with pytest.raises(openai.NotFoundError) as raised:
            await client.chat.completions.create(model="gpt-nope", messages=HI)  # type: ignore[arg-type]
    assert "gpt-nope" in raised.value.message
    async with gateway.anthropic() as client:
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.create(model="claude-nope", max_tokens=5, messages=HI)  # type: ignore[arg-type]
    outcomes = [(r.status, r.outcome, r.model) for r in gateway.ledger.records]
    assert outcomes == [(404, "refused", "gpt-nope"), (404, "refused", "claude-nope")]


async def test_upstream_errors_pass_through_as_they_are(gateway: LiveModelGateway) -> None:
    async with gateway.openai() as client:
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="fail-429", messages=HI)  # type: ignore[arg-type]
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="fail-500", messages=HI)  # type: ignore[arg-type]
    assert "fails with 429" in limited.value.message
    async with gateway.anthropic() as client:
        with pytest.raises(anthropic.RateLimitError) as anthropic_limited:
            await client.messages.create(model="fail-429", max_tokens=5, messages=HI)  # type: ignore[arg-type]
    assert anthropic_limited.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "the fake provider fails with 429"},
    }
    records = [(r.status, r.outcome, r.error) for r in gateway.ledger.records]
    assert records == [
        (429, "error", "provider answered 429 (rate_limit_exceeded)"),
        (500, "error", "provider answered 500 (server_error)"),
        (429, "error", "provider answered 429 (rate_limit_error)"),
    ]
    await all_settled(gateway, 3)
    assert [settled for _, settled in gateway.budgets.settled] == [Decimal(0)] * 3


async def test_a_provider_that_cannot_be_reached_or_keyed_is_a_502(
    gateway: LiveModelGateway,
) -> None:
    async with gateway.openai() as client:
        with pytest.raises(openai.InternalServerError) as down:
            await client.chat.completions.create(model="down", messages=HI)  # type: ignore[arg-type]
        with pytest.raises(openai.InternalServerError) as keyless:
            await client.chat.completions.create(model="keyless", messages=HI)  # type: ignore[arg-type]
    assert down.value.status_code == 502
    assert "provider 'down' could not be reached" in down.value.message
    assert keyless.value.status_code == 502
    assert "env:KEYLESS_KEY is not available" in keyless.value.message
    records = [(r.status, r.outcome, r.provider) for r in gateway.ledger.records]
    assert records == [(502, "error", "down"), (502, "error", "keyless")]
    await all_settled(gateway, 2)  # both reservations settled


async def test_an_unexpected_failure_is_a_500_in_the_envelope_and_accounted(
    gateway: LiveModelGateway, caplog: pytest.LogCaptureFixture
) -> None:
    async with gateway.anthropic() as client:
        with pytest.raises(anthropic.InternalServerError) as raised:
            await client.messages.create(model="broken", max_tokens=5, messages=HI)  # type: ignore[arg-type]
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "api_error", "message": "the gateway failed unexpectedly; see its log"},
    }
    await all_settled(gateway, 1)
    [record] = gateway.ledger.records
    assert (record.status, record.outcome, record.provider) == (500, "error", "broken")
    assert "a bug in custody" in caplog.text  # the server's log has the traceback


async def test_a_hard_budget_stops_before_the_provider(gateway: LiveModelGateway) -> None:
    gateway.budgets.hard_limit = Decimal("0.000001")
    async with gateway.openai() as client:
        with pytest.raises(openai.RateLimitError) as raised:
            await client.chat.completions.create(model="gpt-fake", messages=HI)  # type: ignore[arg-type]
    assert raised.value.code == "budget_exceeded"
    assert "team-monthly" in raised.value.message
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert int(raised.value.response.headers["retry-after"]) > 0
    async with gateway.anthropic() as client:
        with pytest.raises(anthropic.RateLimitError) as anthropic_raised:
            await client.messages.create(model="claude-fake", max_tokens=5, messages=HI)  # type: ignore[arg-type]
    assert "resets 2026-02-01" in anthropic_raised.value.message
    assert gateway.fake.seen == []
    assert [(r.status, r.outcome) for r in gateway.ledger.records] == [(429, "refused")] * 2


async def test_a_soft_warning_is_a_header(gateway: LiveModelGateway) -> None:
    gateway.budgets.warnings = ("budget 'team-monthly' is past its soft limit: $8 of $10",)
    async with gateway.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(model="gpt-fake", messages=HI)  # type: ignore[arg-type]
    assert raw.headers["preloop-budget-warning"] == gateway.budgets.warnings[0]
    assert raw.parse().choices[0].message.content


@pytest.mark.parametrize(
    ("path", "body", "status", "envelope"),
    [
        ("/openai/v1/chat/completions", b"{not json", 400, "error"),
        ("/openai/v1/chat/completions", b'{"messages": []}', 400, "error"),
        ("/anthropic/v1/messages", b"[1, 2]", 400, "type"),
        (
            "/openai/v1/chat/completions",
            b'{"model": "gpt-fake", "x": "' + b"a" * 70_000 + b'"}',
            413,
            "error",
        ),
        # an endpoint the gateway does not serve (embeddings it serves since issue 16)
        ("/openai/v1/audio/speech", b'{"model": "gpt-fake"}', 404, "error"),
    ],
)
async def test_bad_requests_answer_in_the_envelope(
    gateway: LiveModelGateway, path: str, body: bytes, status: int, envelope: str
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        response = await client.post(
            path, content=body, headers={"authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == status
    assert envelope in response.json()
    assert gateway.fake.seen == []


async def test_a_client_that_leaves_mid_stream_is_still_accounted(
    gateway: LiveModelGateway,
) -> None:
    async with gateway.openai() as client:
        stream = await client.chat.completions.create(model="slow", messages=HI, stream=True)  # type: ignore[arg-type]
        received = 0
        async for _chunk in stream:
            received += 1
            if received == 5:
                break
        await stream.close()

    async def recorded() -> bool | None:
        return True if gateway.ledger.records else None

    await eventually(recorded)
    record = gateway.ledger.records[0]
    assert (record.outcome, record.stream, record.status) == ("disconnected", True, 200)
    assert 5 <= record.output_tokens < 200  # the deltas seen before it left, not the whole answer
    assert record.input_tokens > 0
    await all_settled(gateway, 1)  # the reservation was settled


async def test_the_provider_key_is_never_shown(
    gateway: LiveModelGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        auth = {"authorization": f"Bearer {TOKEN}"}
        for path, body in [
            ("/openai/v1/chat/completions", {"model": "gpt-fake", "messages": HI}),
            ("/openai/v1/chat/completions", {"model": "gpt-fake", "messages": HI, "stream": True}),
            ("/openai/v1/chat/completions", {"model": "fail-401", "messages": HI}),
            ("/anthropic/v1/messages", {"model": "claude-fake", "max_tokens": 5, "messages": HI}),
            ("/anthropic/v1/messages", {"model": "fail-500", "max_tokens": 5, "messages": HI}),
        ]:
            response = await client.post(path, json=body, headers=auth)
            seen.append(str(response.headers) + response.text)
        seen.append((await client.get("/openai/v1/models", headers=auth)).text)
    seen += [repr(r) for r in gateway.ledger.records]
    seen.append(caplog.text)
    assert len(gateway.fake.seen) == 5
    for text in seen:
        assert PROVIDER_KEY not in text
        assert PROVIDER_KEY[:12] not in text


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("path", "envelope"),
    [
        ("/openai/v1/chat/completions", "error"),
        ("/openai/v1/responses", "error"),
        ("/anthropic/v1/messages", "type"),
    ],
)
@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "gpt-fake", "a": ' + b'{"a":' * 3000 + b"1" + b"}" * 3001,
        b'{"model": "gpt-fake", "messages": ' + _nested(3000) + b"}",
        b'{"model": "gpt-fake", "metadata": {"a": ' + _nested(3000) + b"}}",
    ],
    ids=["objects", "in-messages", "in-an-unknown-field"],
)
async def test_json_nested_too_deeply_is_a_400_in_the_envelope(
    gateway: LiveModelGateway, path: str, envelope: str, body: bytes
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        response = await client.post(
            path, content=body, headers={"authorization": f"Bearer {TOKEN}"}
        )
    assert 400 == response.status_code
    assert envelope in response.json()
    assert "the request body is JSON nested too deeply" in response.text
    assert [] == gateway.fake.seen


async def test_an_output_limit_below_one_is_a_bad_request_in_each_sdk(
    gateway: LiveModelGateway,
) -> None:
    """Refused before the budget and the provider, naming the field, as the providers do."""
    async with gateway.openai() as client:
        with pytest.raises(openai.BadRequestError) as chat:
            await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=-1)  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError) as choices:
            await client.chat.completions.create(model="gpt-fake", messages=HI, n=0)  # type: ignore[arg-type]
        with pytest.raises(openai.BadRequestError) as responses:
            await client.responses.create(model="gpt-fake", input="hi", max_output_tokens=0)
    async with gateway.anthropic() as client:
        with pytest.raises(anthropic.BadRequestError) as messages:
            await client.messages.create(model="claude-fake", max_tokens=-1, messages=HI)  # type: ignore[arg-type]
    expected = [
        "'max_tokens' must be an integer from 1 to 2147483647, not -1",
        "'n' must be an integer from 1 to 128, not 0",
        "'max_output_tokens' must be an integer from 1 to 2147483647, not 0",
        "'max_tokens' must be an integer from 1 to 2147483647, not -1",
    ]
    raised = [chat.value, choices.value, responses.value, messages.value]
    named = [text in error.message for text, error in zip(expected, raised, strict=True)]
    assert [True] * 4 == named
    assert ["max_tokens", "n", "max_output_tokens"] == [e.param for e in raised[:3]]  # OpenAI's
    assert [] == gateway.fake.seen
    assert [] == gateway.budgets.admitted
    assert [(400, "refused")] * 4 == [(r.status, r.outcome) for r in gateway.ledger.records]
