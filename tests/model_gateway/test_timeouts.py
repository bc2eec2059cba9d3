"""A provider that stalls: before its answer starts it is a 504 in the envelope; mid-stream the
stream ends with an error event in its own framing. Both are recorded as errors and settled."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest
from litestar import Litestar
from litestar.datastructures import State

from hub.settings import GatewaySettings
from server.model_gateway.fake_provider import FakeProvider
from server.model_gateway.routes import GATEWAY_ROUTES
from tests.integration.conftest import serve_asgi
from tests.model_gateway.conftest import TOKEN, WHO, LiveModelGateway, all_settled, build_proxy
from tests.model_gateway.doubles import FixedAuth, RecordingBudgets, RecordingLedger

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def impatient(fake_provider: tuple[FakeProvider, str]) -> AsyncIterator[LiveModelGateway]:
    """The gateway waiting at most 0.5 s for the provider's next bytes; the fake's slow model
    sends a word every 2 s."""
    fake, fake_url = fake_provider
    fake.slow_seconds = 2.0
    budgets, ledger, auth = RecordingBudgets(), RecordingLedger(), FixedAuth({TOKEN: WHO})
    settings = GatewaySettings(read_timeout_seconds=0.5)
    proxy = build_proxy(fake_url, budgets, ledger, auth, settings)
    app = Litestar(
        route_handlers=GATEWAY_ROUTES,
        state=State({"model_gateway": proxy}),
        on_shutdown=[proxy.close],
    )
    with serve_asgi(app, "the gateway") as url:
        yield LiveModelGateway(url, fake, proxy, budgets, ledger, auth)


async def test_a_stream_that_stalls_ends_with_an_error_event(impatient: LiveModelGateway) -> None:
    async with impatient.anthropic() as client:
        stream = await client.messages.create(
            model="slow",
            max_tokens=50,
            messages=HI,  # type: ignore[arg-type]
            stream=True,
        )
        kinds: list[str] = []

        async def drain() -> None:
            async for event in stream:
                kinds.append(event.type)

        with pytest.raises(anthropic.APIStatusError) as raised:
            await drain()
    assert kinds[0] == "message_start"
    assert "did not answer in time" in str(raised.value)
    await all_settled(impatient, 1)
    [record] = impatient.ledger.records
    assert (record.status, record.outcome, record.stream) == (200, "error", True)
    assert "did not answer in time" in (record.error or "")
    assert record.input_tokens > 0  # what the provider reported before it stalled


async def test_an_openai_stream_that_stalls_raises_in_the_sdk(impatient: LiveModelGateway) -> None:
    async with impatient.openai() as client:
        stream = await client.chat.completions.create(
            model="slow",
            messages=HI,  # type: ignore[arg-type]
            stream=True,
        )

        async def drain() -> None:
            async for _chunk in stream:
                pass

        with pytest.raises(openai.APIError, match="did not answer in time"):
            await drain()
    await all_settled(impatient, 1)
    assert [r.outcome for r in impatient.ledger.records] == ["error"]


async def test_a_provider_that_does_not_answer_in_time_is_a_504(
    impatient: LiveModelGateway,
) -> None:
    async with impatient.openai() as client:
        with pytest.raises(openai.InternalServerError) as raised:
            await client.chat.completions.create(model="stall", messages=HI)  # type: ignore[arg-type]
    assert raised.value.status_code == 504
    assert "provider 'fake-openai' did not answer in time" in raised.value.message
    await all_settled(impatient, 1)
    [record] = impatient.ledger.records
    assert (record.status, record.outcome) == (504, "error")
