"""The gateway edge on a real uvicorn (127.0.0.1) over the collaborators' doubles, forwarding to
the fake provider on another; the real OpenAI and Anthropic SDKs are the clients."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal

import anthropic
import openai
import pytest
from litestar import Litestar
from litestar.datastructures import State

from hub.clock import FrozenClock
from hub.model_gateway.records import Attribution, ModelPrice, ProviderKind
from hub.settings import GatewaySettings
from server.model_gateway.fake_provider import FakeProvider
from server.model_gateway.proxy import ModelGatewayProxy
from server.model_gateway.routes import GATEWAY_ROUTES
from tests.integration.conftest import serve_asgi
from tests.model_gateway.doubles import (
    FixedAuth,
    PriceTable,
    RecordingBudgets,
    RecordingLedger,
    StaticRouter,
    provider,
)

PROVIDER_KEY = "sk-provider-secret-0123456789abcdef"
TOKEN = "plrt_test_0123456789abcdef0123456789"
WHO = Attribution(
    account_id="acc",
    api_key_id="rt_test",
    principal="flow:nightly",
    flow="nightly",
    execution_id="exe_1",
)
PRICES = [
    ModelPrice(
        model="gpt-fake", input=Decimal("2.50"), output=Decimal("10"), cached=Decimal("1.25")
    ),
    ModelPrice(
        model="claude-fake", input=Decimal("3"), output=Decimal("15"), cached=Decimal("0.30")
    ),
]


@dataclass
class LiveModelGateway:
    url: str
    fake: FakeProvider
    proxy: ModelGatewayProxy
    budgets: RecordingBudgets
    ledger: RecordingLedger
    auth: FixedAuth

    def openai(self, key: str = TOKEN, **kw: object) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=f"{self.url}/openai/v1",
            api_key=key,
            max_retries=0,
            timeout=30,
            **kw,  # type: ignore[arg-type]
        )

    def anthropic(self, key: str = TOKEN) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            base_url=f"{self.url}/anthropic", api_key=key, max_retries=0, timeout=30
        )


@pytest.fixture
def fake_provider() -> Iterator[tuple[FakeProvider, str]]:
    fake = FakeProvider(PROVIDER_KEY, slow_seconds=0.05)
    with serve_asgi(fake, "the fake provider", lifespan="off") as url:
        yield fake, url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting is refused


def build_proxy(
    fake_url: str,
    budgets: RecordingBudgets,
    ledger: RecordingLedger,
    auth: FixedAuth,
    settings: GatewaySettings | None = None,
) -> ModelGatewayProxy:
    providers = [
        provider(
            "fake-openai",
            ProviderKind.OPENAI,
            f"{fake_url}/v1",
            models=("gpt-fake*", "fail-*", "slow", "stall"),
            aliases={"fast": "gpt-fake"},
        ),
        provider(
            "fake-anthropic",
            ProviderKind.ANTHROPIC,
            fake_url,
            models=("claude-fake", "fail-*", "slow"),
        ),
        provider(  # nothing listens there: the provider is down
            "down", ProviderKind.OPENAI, f"http://127.0.0.1:{closed_port()}/v1", models=("down",)
        ),
        provider("keyless", ProviderKind.OPENAI, f"{fake_url}/v1", models=("keyless",)),
        provider("broken", ProviderKind.ANTHROPIC, fake_url, models=("broken",)),
    ]
    keys = {p.name: PROVIDER_KEY for p in providers if p.name != "keyless"}
    router = StaticRouter(providers, keys)
    return ModelGatewayProxy(
        auth=auth,
        router=router,
        prices=PriceTable(PRICES),
        budgets=budgets,
        ledger=ledger,
        clock=FrozenClock(),
        settings=settings or GatewaySettings(max_body_bytes=64 * 1024),
    )


@pytest.fixture
async def gateway(fake_provider: tuple[FakeProvider, str]) -> AsyncIterator[LiveModelGateway]:
    fake, fake_url = fake_provider
    budgets, ledger = RecordingBudgets(), RecordingLedger()
    auth = FixedAuth({TOKEN: WHO})
    proxy = build_proxy(fake_url, budgets, ledger, auth)
    app = Litestar(
        route_handlers=GATEWAY_ROUTES,
        state=State({"model_gateway": proxy}),
        on_shutdown=[proxy.close],
    )
    with serve_asgi(app, "the gateway") as url:
        yield LiveModelGateway(url, fake, proxy, budgets, ledger, auth)


async def all_settled(gateway: LiveModelGateway, count: int) -> None:
    """Wait until ``count`` reservations are settled and none is open (settling follows the
    answer's last bytes, so the client can see its answer first)."""
    from tests.integration.mcp.support import eventually

    async def probe() -> bool | None:
        done = len(gateway.budgets.settled) == count and not gateway.budgets.open
        return True if done else None

    await eventually(probe)
