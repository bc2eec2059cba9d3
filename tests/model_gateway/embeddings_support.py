"""The gateway fixture with an embeddings provider: ``text-embedding-*`` and ``embed-*`` routed to
the fake provider's OpenAI side, ``text-embedding-3-small`` priced as OpenAI lists it, and a
credential allowed only ``gpt-*`` models."""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from hub.model_gateway.records import Attribution, ModelPrice, ProviderKind
from tests.model_gateway.conftest import PROVIDER_KEY, LiveModelGateway
from tests.model_gateway.doubles import PriceTable, StaticRouter, provider

SMALL = "text-embedding-3-small"
SMALL_PRICE = ModelPrice(model=SMALL, input=Decimal("0.02"), output=Decimal(0))
CHAT_ONLY_TOKEN = "plrt_chat_only_0123456789abcdef0123"
CHAT_ONLY = Attribution(account_id="acc", api_key_id="rt_chat", principal="chat", models=("gpt-*",))


def add_embeddings(gateway: LiveModelGateway) -> None:
    router = cast("StaticRouter", gateway.proxy.router)
    url = router.providers[0].base_url  # the fake's OpenAI side
    models = ("text-embedding-*", "embed-*")
    router.providers.append(provider("fake-embeddings", ProviderKind.OPENAI, url, models=models))
    router.keys["fake-embeddings"] = PROVIDER_KEY
    cast("PriceTable", gateway.proxy.prices).prices[SMALL] = SMALL_PRICE
    gateway.auth.tokens[CHAT_ONLY_TOKEN] = CHAT_ONLY
