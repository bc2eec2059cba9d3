"""Gateway capture without a server: rule precedence, redaction, caps, stream assembly, the
queue (full drops and counts, close flushes) and retention (decision 0109)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from hub.clock import FrozenClock
from hub.model_gateway.capture import GatewayCapture, Pending, StreamTap, rule_for
from hub.model_gateway.capture_records import (
    CaptureMode,
    CaptureRule,
    CaptureScope,
    Interaction,
    InteractionQuery,
)
from hub.model_gateway.capture_store import InMemoryCaptureStore
from hub.model_gateway.capture_text import (
    REDACTED,
    answer_text,
    cap,
    redact_json,
    redact_text,
    request_text,
    snippet,
    stream_text,
)
from hub.model_gateway.records import Attribution, UsageRecord
from hub.search.embedders import HashingEmbedder, Vector

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WHO = Attribution(account_id="acc", api_key_id="key_1", principal="dev@example.com")
FLOW_WHO = Attribution(
    account_id="acc", api_key_id="rt_1", principal="flow:f", flow="triage", execution_id="fx"
)

SECRETS = {
    "openai": "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX",
    "anthropic": "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
    "preloop key": "pl_0123456789abcdef_abcdefghijklmnopqrstuvwxyz",
    "runtime token": "plrt_0123456789abcdef_abcdefghijklmnopqrstuvwxyz",
    "access token": "plat_0123456789abcdef_abcdefghijklmnopqrstuvwxyz",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "bearer": "Bearer abcdefghijklmnopqrstuvwxyz012345",
    "github": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
}


def rule(
    scope: CaptureScope = CaptureScope.ACCOUNT, subject: str = "", **extra: Any
) -> CaptureRule:
    fields: dict[str, Any] = {
        "account_id": "acc",
        "scope": scope,
        "subject": subject,
        "mode": CaptureMode.FULL,
        "created_at": T0,
        "updated_at": T0,
    }
    return CaptureRule(**(fields | extra))


def record(n: int = 1, **extra: Any) -> UsageRecord:
    fields: dict[str, Any] = {
        "id": f"use_{n}",
        "account_id": "acc",
        "api_key_id": "key_1",
        "principal": "dev@example.com",
        "flow": None,
        "execution_id": None,
        "endpoint": "openai.chat",
        "model": "gpt-fake",
        "upstream_model": "gpt-fake",
        "provider": "fake",
        "input_tokens": 5,
        "output_tokens": 7,
        "cached_tokens": 0,
        "cost": Decimal("0.01"),
        "latency_ms": 1.0,
        "status": 200,
        "outcome": "ok",
        "stream": False,
        "created_at": T0,
    }
    return UsageRecord(**(fields | extra))


CHAT_BODY = msgspec.json.encode(
    {"model": "gpt-fake", "messages": [{"role": "user", "content": "what is up"}]}
)
CHAT_ANSWER = msgspec.json.encode({"choices": [{"message": {"content": "not much"}}]})


# --- precedence -----------------------------------------------------------------------------
def test_the_key_rule_wins_over_the_flow_rule_over_the_account_rule() -> None:
    account = rule(mode=CaptureMode.METADATA)
    flow = rule(CaptureScope.FLOW, "triage", mode=CaptureMode.REDACTED_PREVIEW)
    key = rule(CaptureScope.API_KEY, "rt_1", mode=CaptureMode.OFF)
    other_key = rule(CaptureScope.API_KEY, "key_9", mode=CaptureMode.FULL)

    assert rule_for((account, flow, key), FLOW_WHO) == key
    assert rule_for((key, flow, account), FLOW_WHO) == key
    assert rule_for((account, flow, other_key), FLOW_WHO) == flow
    assert rule_for((flow, account), WHO) == account
    assert rule_for((flow, other_key), WHO) is None


async def test_no_rule_or_an_off_rule_means_off() -> None:
    store = InMemoryCaptureStore()
    capture = GatewayCapture(store, HashingEmbedder, FrozenClock(), cache_seconds=0)

    assert await capture.rule_for(WHO) is None
    await store.set_rule(rule(CaptureScope.API_KEY, "key_1", mode=CaptureMode.OFF))
    await store.set_rule(rule(mode=CaptureMode.FULL))
    assert await capture.rule_for(WHO) is None  # the key's "off" beats the account's "full"
    assert (await capture.rule_for(FLOW_WHO)) == rule(mode=CaptureMode.FULL)


# --- redaction ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SECRETS))
def test_each_secret_shape_is_redacted_in_text(name: str) -> None:
    secret = SECRETS[name]
    redacted = redact_text(f"before {secret} after")

    assert secret not in redacted
    assert redacted.startswith("before ")
    assert redacted.endswith(" after")
    assert REDACTED in redacted


def test_secret_key_names_are_redacted_anywhere_but_token_counts_are_kept() -> None:
    value = {
        "model": "m",
        "max_tokens": 100,
        "tools": [{"config": {"Authorization": "x", "client_secret": "y", "password": "z"}}],
        "deep": {"nested": {"api_key": "q", "x-api-key": "r", "refresh_token": "s"}},
    }

    redacted = redact_json(value)

    assert redacted["max_tokens"] == 100
    assert set(redacted["tools"][0]["config"].values()) == {REDACTED}
    assert set(redacted["deep"]["nested"].values()) == {REDACTED}


def test_a_secret_split_across_stream_chunks_is_redacted_once_assembled() -> None:
    events = [
        {"choices": [{"delta": {"content": "key: sk-ant-api03-abcdef"}}]},
        {"choices": [{"delta": {"content": "ghijklmnopqrstuvwxyz end"}}]},
    ]
    raw = b"".join(b"data: " + msgspec.json.encode(e) + b"\n\n" for e in events)
    raw += b"data: [DONE]\n\n"
    tap = StreamTap(10_000)
    for i in range(0, len(raw), 7):  # the network's chunks cut events anywhere
        tap.feed(raw[i : i + 7])

    assert stream_text(b"".join(tap.chunks), "openai.chat") == "key: [REDACTED] end"


# --- texts and caps -------------------------------------------------------------------------
def test_preview_keeps_the_prompt_text_and_full_the_redacted_json() -> None:
    body = msgspec.json.encode(
        {"model": "m", "api_key": "k", "messages": [{"role": "user", "content": "hi there"}]}
    )

    assert request_text(body, CaptureMode.REDACTED_PREVIEW) == "hi there"
    assert msgspec.json.decode(request_text(body, CaptureMode.FULL))["api_key"] == REDACTED
    assert answer_text(CHAT_ANSWER, "openai.chat") == "not much"


def test_cap_cuts_on_a_character_boundary() -> None:
    assert cap("héllo", 2) == ("h", True)
    assert cap("hello", 5) == ("hello", False)


def test_a_stream_tap_stops_at_its_limit() -> None:
    tap = StreamTap(5)
    tap.feed(b"abc")
    tap.feed(b"defg")
    tap.feed(b"h")

    assert (b"".join(tap.chunks), tap.truncated) == (b"abcde", True)


def test_snippets_mark_the_query_words() -> None:
    assert snippet("The Database migration failed", ["database"]) == (
        "The [[Database]] migration failed"
    )


# --- the queue ------------------------------------------------------------------------------
class SlowStore(InMemoryCaptureStore):
    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.batches: list[int] = []

    async def add_many(
        self, items: Sequence[tuple[Interaction, Vector | None]], *, model: str
    ) -> None:
        await self.release.wait()
        self.batches.append(len(items))
        await super().add_many(items, model=model)


async def test_a_full_queue_drops_and_counts_and_never_blocks() -> None:
    store = SlowStore()
    capture = GatewayCapture(store, HashingEmbedder, FrozenClock(), max_queue=2, batch=10)

    accepted = [
        capture.capture(Pending(record(n), rule(), CHAT_BODY, None, None)) for n in range(4)
    ]

    assert accepted == [True, True, False, False]
    assert capture.dropped == 2
    store.release.set()
    await capture.close()
    assert [h.interaction.id for h in await store.search("acc", InteractionQuery())] == [
        "use_1",
        "use_0",
    ]


async def test_close_flushes_what_was_queued() -> None:
    store = InMemoryCaptureStore()
    capture = GatewayCapture(store, HashingEmbedder, FrozenClock())
    for n in range(3):
        capture.capture(Pending(record(n), rule(), CHAT_BODY, CHAT_ANSWER, None))

    await capture.close()

    stored = await store.get("acc", "use_2")
    assert capture.queued == 0
    assert stored is not None
    assert (stored.request, stored.response) == (CHAT_BODY.decode(), "not much")
    assert stored.expires_at == T0 + timedelta(days=30)


async def test_retention_purges_expired_interactions() -> None:
    clock = FrozenClock(T0)
    store = InMemoryCaptureStore()
    capture = GatewayCapture(store, HashingEmbedder, clock)
    capture.capture(Pending(record(1), rule(retention_days=1), CHAT_BODY, None, None))
    capture.capture(Pending(record(2), rule(retention_days=3), CHAT_BODY, None, None))
    await capture.flush()

    clock.advance(2 * 86400)
    purged = await capture.purge_expired()
    await capture.close()

    assert purged == 1
    assert await store.get("acc", "use_1") is None
    assert await store.get("acc", "use_2") is not None


async def test_the_writer_lingers_to_batch_and_a_flush_cuts_the_wait_short() -> None:
    store = SlowStore()
    store.release.set()
    capture = GatewayCapture(store, HashingEmbedder, FrozenClock(), linger_seconds=60.0)
    capture.capture(Pending(record(1), rule(), CHAT_BODY, None, None))
    for _ in range(5):
        await asyncio.sleep(0)  # the writer wakes and lingers for more
    capture.capture(Pending(record(2), rule(), CHAT_BODY, None, None))
    capture.capture(Pending(record(3), rule(), CHAT_BODY, None, None))

    await asyncio.wait_for(capture.flush(), timeout=5)
    await capture.close()

    assert store.batches == [3]


async def test_close_returns_when_it_comes_while_the_writer_is_busy() -> None:
    # On Python 3.11 a cancel that meets a completing wait_for is swallowed: the writer must
    # stop anyway, or a server's shutdown waits on it for the purge period (an hour).
    store = InMemoryCaptureStore()
    capture = GatewayCapture(store, HashingEmbedder, FrozenClock(), batch=10, linger_seconds=0.01)
    for n in range(200):
        capture.capture(Pending(record(n), rule(), CHAT_BODY, CHAT_ANSWER, None))
        if n % 20 == 0:
            await asyncio.sleep(0.001)
    hung: list[bool] = []  # a guard against a hang, not a timing measurement
    guard = asyncio.get_running_loop().call_later(5, hung.append, True)

    await asyncio.wait_for(capture.close(), timeout=10)

    guard.cancel()
    assert hung == []
    assert capture.queued == 0
    assert await store.get("acc", "use_199") is not None
