"""Gateway content capture end to end: the real OpenAI and Anthropic SDKs through the gateway
to the fake provider, with capture rules in an in-memory store (decision 0109)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.datastructures import State

from hub.clock import FrozenClock
from hub.model_gateway.capture import GatewayCapture
from hub.model_gateway.capture_records import (
    CaptureMode,
    CaptureRule,
    CaptureScope,
    Interaction,
)
from hub.model_gateway.capture_store import InMemoryCaptureStore
from hub.search.embedders import HashingEmbedder
from server.model_gateway.fake_provider import REPLY, FakeProvider
from server.model_gateway.routes import GATEWAY_ROUTES
from tests.integration.conftest import serve_asgi
from tests.integration.mcp.support import eventually
from tests.model_gateway.conftest import TOKEN, WHO, LiveModelGateway, build_proxy
from tests.model_gateway.doubles import FixedAuth, RecordingBudgets, RecordingLedger

SECRET = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345"
CLOCK = FrozenClock()


@dataclass
class Captured:
    live: LiveModelGateway
    store: InMemoryCaptureStore
    capture: GatewayCapture

    async def rule(self, mode: CaptureMode, **extra: Any) -> None:
        fields: dict[str, Any] = {
            "account_id": WHO.account_id,
            "scope": CaptureScope.ACCOUNT,
            "mode": mode,
            "created_at": CLOCK.now(),
            "updated_at": CLOCK.now(),
        }
        await self.store.set_rule(CaptureRule(**(fields | extra)))

    async def stored(self, count: int = 1) -> list[Interaction]:
        async def probe() -> list[Interaction] | None:
            found = [
                i
                for r in self.live.ledger.records
                if (i := await self.store.get(WHO.account_id, r.id)) is not None
            ]
            return found if len(found) >= count else None

        return await eventually(probe)


@pytest.fixture
async def captured(fake_provider: tuple[FakeProvider, str]) -> AsyncIterator[Captured]:
    fake, fake_url = fake_provider
    budgets, ledger = RecordingBudgets(), RecordingLedger()
    auth = FixedAuth({TOKEN: WHO})
    proxy = build_proxy(fake_url, budgets, ledger, auth)
    store = InMemoryCaptureStore()
    capture = GatewayCapture(store, HashingEmbedder, CLOCK, cache_seconds=0)
    proxy.capture = capture
    app = Litestar(
        route_handlers=GATEWAY_ROUTES,
        state=State({"model_gateway": proxy}),
        on_shutdown=[proxy.close, capture.close],
    )
    with serve_asgi(app, "the gateway") as url:
        yield Captured(LiveModelGateway(url, fake, proxy, budgets, ledger, auth), store, capture)


async def test_off_by_default_nothing_is_captured(captured: Captured) -> None:
    async with captured.live.openai() as client:
        await client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "hello"}]
        )

    assert len(captured.live.ledger.records) == 1
    assert captured.capture.queued == 0
    assert await captured.store.search(WHO.account_id, _all()) == []


async def test_metadata_mode_keeps_no_content(captured: Captured) -> None:
    await captured.rule(CaptureMode.METADATA)
    async with captured.live.openai() as client:
        await client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "a private thought"}]
        )

    [interaction] = await captured.stored()

    assert interaction.mode is CaptureMode.METADATA
    assert (interaction.request, interaction.response) == (None, None)
    assert (interaction.execution_id, interaction.model) == ("exe_1", "gpt-fake")
    assert interaction.input_tokens == captured.live.ledger.records[0].input_tokens


async def test_full_mode_keeps_the_request_redacted_and_the_answer(captured: Captured) -> None:
    await captured.rule(CaptureMode.FULL)
    async with captured.live.openai() as client:
        await client.chat.completions.create(
            model="gpt-fake",
            messages=[{"role": "user", "content": f"my key is {SECRET}, keep it safe"}],
            extra_body={"metadata_blob": {"nested": {"api_key": "plain-looking-value"}}},
        )

    [interaction] = await captured.stored()

    assert interaction.request is not None
    assert SECRET not in interaction.request
    assert "plain-looking-value" not in interaction.request
    assert "my key is [REDACTED], keep it safe" in interaction.request
    assert '"api_key":"[REDACTED]"' in interaction.request
    assert interaction.response == REPLY


async def test_preview_mode_caps_each_text(captured: Captured) -> None:
    await captured.rule(CaptureMode.REDACTED_PREVIEW, max_bytes=10)
    async with captured.live.openai() as client:
        await client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "0123456789abcdef"}]
        )

    [interaction] = await captured.stored()

    assert (interaction.request, interaction.response) == (
        "0123456789",
        REPLY.encode()[:10].decode(),
    )
    assert interaction.truncated is True


async def test_an_openai_chat_stream_is_assembled_and_a_split_secret_redacted(
    captured: Captured,
) -> None:
    captured.live.fake.replies["gpt-fake"] = "use Bearer abcdefghijklmnopqrstuvwx0123 now"
    await captured.rule(CaptureMode.FULL)
    async with captured.live.openai() as client:
        stream = await client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        deltas = [c.choices[0].delta.content async for c in stream if c.choices]

    [interaction] = await captured.stored()

    assert " Bearer" in deltas  # the secret came in two chunks
    assert " abcdefghijklmnopqrstuvwx0123" in deltas
    assert interaction.response == "use [REDACTED] now"


async def test_an_openai_responses_stream_is_assembled(captured: Captured) -> None:
    await captured.rule(CaptureMode.REDACTED_PREVIEW)
    async with captured.live.openai() as client:
        stream = await client.responses.create(model="gpt-fake", input="say hello", stream=True)
        async for _ in stream:
            pass

    [interaction] = await captured.stored()

    assert (interaction.request, interaction.response) == ("say hello", REPLY)


async def test_an_anthropic_messages_stream_is_assembled(captured: Captured) -> None:
    await captured.rule(CaptureMode.REDACTED_PREVIEW)
    async with (
        captured.live.anthropic() as client,
        client.messages.stream(
            model="claude-fake",
            max_tokens=100,
            system="be brief",
            messages=[{"role": "user", "content": "hello claude"}],
        ) as stream,
    ):
        text = await stream.get_final_text()

    [interaction] = await captured.stored()

    assert text == REPLY
    assert sorted((interaction.request or "").split("\n")) == ["be brief", "hello claude"]
    assert interaction.response == REPLY
    assert interaction.endpoint == "anthropic.messages"


async def test_the_session_header_is_recorded_and_a_bad_one_refused(captured: Captured) -> None:
    await captured.rule(CaptureMode.METADATA)
    async with captured.live.openai(default_headers={"X-Preloop-Session-Id": "cli-42"}) as client:
        await client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "hi"}]
        )
    [interaction] = await captured.stored()
    async with httpx.AsyncClient() as http:
        bad = await http.post(
            f"{captured.live.url}/openai/v1/chat/completions",
            headers={"Authorization": f"Bearer {TOKEN}", "X-Preloop-Session-Id": "no spaces!"},
            json={"model": "gpt-fake", "messages": []},
        )

    assert interaction.session_id == "cli-42"
    assert captured.live.ledger.records[0].session_id == "cli-42"
    assert bad.status_code == 400
    assert "X-Preloop-Session-Id" in bad.text


def _all() -> Any:
    from hub.model_gateway.capture_records import InteractionQuery

    return InteractionQuery()
