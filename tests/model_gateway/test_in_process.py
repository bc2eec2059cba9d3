"""``ModelGateway.chat`` (what AI approval calls): accounted and budgeted like an HTTP request,
in OpenAI's shape whichever provider answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hub.errors import NotFoundError
from hub.model_gateway.ports import BudgetExceededError, ModelGateway
from server.model_gateway.errors import ProviderUnavailableError
from server.model_gateway.fake_provider import REPLY
from tests.model_gateway.conftest import WHO, LiveModelGateway


@pytest.fixture(autouse=True)
async def _own_pool(gateway: LiveModelGateway) -> AsyncIterator[None]:
    """These calls run on the test's loop: their upstream pool is closed on it too."""
    yield
    await gateway.proxy.close()


ASK = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "approve?"}]


async def test_chat_with_an_openai_model(gateway: LiveModelGateway) -> None:
    port: ModelGateway = gateway.proxy
    answer = await port.chat(WHO, {"model": "gpt-fake", "messages": ASK})
    assert answer["choices"][0]["message"]["content"] == REPLY
    [record] = gateway.ledger.records
    assert (record.endpoint, record.outcome, record.stream) == ("openai.chat", "ok", False)
    assert record.cost > 0
    assert gateway.budgets.spent == record.cost


async def test_chat_with_an_anthropic_model_is_translated(gateway: LiveModelGateway) -> None:
    answer = await gateway.proxy.chat(WHO, {"model": "claude-fake", "messages": ASK})
    assert answer["choices"][0]["message"]["content"] == REPLY
    sent = gateway.fake.seen[-1]
    assert sent.path == "/v1/messages"
    assert sent.body["system"] == "Be brief."
    assert sent.body["messages"] == [{"role": "user", "content": "approve?"}]
    [record] = gateway.ledger.records
    assert record.endpoint == "anthropic.messages"
    assert answer["usage"]["prompt_tokens"] == record.input_tokens
    assert answer["usage"]["completion_tokens"] == record.output_tokens


async def test_chat_refusals_and_errors_raise(gateway: LiveModelGateway) -> None:
    with pytest.raises(NotFoundError):
        await gateway.proxy.chat(WHO, {"model": "nope", "messages": ASK})
    with pytest.raises(ProviderUnavailableError, match="429"):
        await gateway.proxy.chat(WHO, {"model": "fail-429", "messages": ASK})
    gateway.budgets.hard_limit = Decimal(0)
    with pytest.raises(BudgetExceededError):
        await gateway.proxy.chat(WHO, {"model": "gpt-fake", "messages": ASK})
    outcomes = [(r.status, r.outcome) for r in gateway.ledger.records]
    assert outcomes == [(404, "refused"), (429, "error"), (429, "refused")]
