"""The capture store (hub/model_gateway/capture_store.py ``CaptureStore``) on every backend:
rules, interactions, full-text and similarity search, retention, runtime sessions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from hub.errors import NotFoundError
from hub.memory import InMemoryStorage
from hub.model_gateway.capture_records import (
    CaptureMode,
    CaptureRule,
    CaptureScope,
    Interaction,
    InteractionQuery,
    SearchType,
)
from hub.model_gateway.capture_store import CaptureStore, InMemoryCaptureStore
from hub.ports import Storage
from hub.search.embedders import HashingEmbedder
from server.db import SqlStorage
from server.db.stores.captures import SqlCaptureStore

from .gateway_records import usage
from .records import at, new_account

EMBEDDER = HashingEmbedder(64)
MODEL = str(EMBEDDER.identity)


@pytest.fixture
def captures(storage: Storage) -> CaptureStore:
    if isinstance(storage, SqlStorage):
        return SqlCaptureStore.beside(storage)
    assert isinstance(storage, InMemoryStorage)
    return InMemoryCaptureStore(
        usage=storage.usage.records_of, require_account=storage.require_account
    )


def rule(account: str, scope: CaptureScope = CaptureScope.ACCOUNT, **extra: Any) -> CaptureRule:
    fields: dict[str, Any] = {
        "account_id": account,
        "scope": scope,
        "subject": "",
        "mode": CaptureMode.FULL,
        "created_at": at(),
        "updated_at": at(),
    }
    return CaptureRule(**(fields | extra))


def interaction(
    account: str, n: int, request: str | None, response: str | None, **extra: Any
) -> Interaction:
    fields: dict[str, Any] = {
        "id": f"use_{account[-6:]}_{n}",
        "account_id": account,
        "principal": "agent@example.com",
        "api_key_id": "key_a",
        "endpoint": "openai.chat",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "status": 200,
        "outcome": "ok",
        "input_tokens": 10,
        "output_tokens": 5,
        "cost": Decimal("0.000123"),
        "latency_ms": 3.5,
        "created_at": at(n),
        "expires_at": at(n) + timedelta(days=30),
        "mode": CaptureMode.FULL,
        "request": request,
        "response": response,
    }
    return Interaction(**(fields | extra))


async def put(captures: CaptureStore, *items: Interaction) -> None:
    vectors = await EMBEDDER.embed([i.text for i in items])
    await captures.add_many(
        [(i, v if i.text else None) for i, v in zip(items, vectors, strict=True)], model=MODEL
    )


async def test_rules_are_set_replaced_listed_and_deleted(
    storage: Storage, captures: CaptureStore
) -> None:
    account = await new_account(storage, "acme")
    other = await new_account(storage, "other")
    await captures.set_rule(rule(account))
    await captures.set_rule(rule(account, CaptureScope.FLOW, subject="triage"))
    await captures.set_rule(rule(account, mode=CaptureMode.METADATA, updated_at=at(5)))
    await captures.set_rule(rule(other, CaptureScope.API_KEY, subject="key_b"))

    found = await captures.rules(account)

    assert [(r.scope, r.subject, r.mode) for r in found] == [
        (CaptureScope.ACCOUNT, "", CaptureMode.METADATA),
        (CaptureScope.FLOW, "triage", CaptureMode.FULL),
    ]
    assert found[0].updated_at == at(5)
    assert await captures.delete_rule(account, CaptureScope.FLOW, "triage") is True
    assert await captures.delete_rule(account, CaptureScope.FLOW, "triage") is False
    assert len(await captures.rules(account)) == 1


async def test_a_rule_of_a_missing_account_is_not_found(captures: CaptureStore) -> None:
    with pytest.raises(NotFoundError):
        await captures.set_rule(rule("acc_missing"))


async def test_interactions_round_trip_and_a_retried_batch_stores_nothing_twice(
    storage: Storage, captures: CaptureStore
) -> None:
    account = await new_account(storage, "acme")
    first = interaction(account, 1, "hello there", "general kenobi", session_id="s-1")
    bare = interaction(account, 2, None, None, mode=CaptureMode.METADATA)
    await put(captures, first, bare)
    await put(captures, first)

    assert await captures.get(account, first.id) == first
    assert await captures.get(account, bare.id) == bare
    assert await captures.get("acc_other", first.id) is None
    listed = await captures.search(account, InteractionQuery())
    assert [h.interaction.id for h in listed] == [bare.id, first.id]


async def test_full_text_needs_every_word_and_ranks_and_filters(
    storage: Storage, captures: CaptureStore
) -> None:
    account = await new_account(storage, "acme")
    other = await new_account(storage, "other")
    a = interaction(account, 1, "the database migration failed", "retry the migration later")
    b = interaction(account, 2, "database is slow", "add an index", model="claude-sonnet-4")
    c = interaction(account, 3, "migration of users", None, flow="triage", execution_id="fx_1")
    d = interaction(other, 4, "database migration", "elsewhere")
    await put(captures, a, b, c)
    await put(captures, d)

    both = await captures.search(account, InteractionQuery(text="Database migration"))
    migration = await captures.search(account, InteractionQuery(text="migration"))
    by_model = await captures.search(
        account, InteractionQuery(text="database", model="claude-sonnet-4")
    )
    by_session = await captures.search(account, InteractionQuery(text="migration", session="fx_1"))
    since = await captures.search(account, InteractionQuery(text="migration", since=at(2)))

    assert [h.interaction.id for h in both] == [a.id]
    assert "[[database]]" in both[0].snippet.lower()
    assert {h.interaction.id for h in migration} == {a.id, c.id}
    assert all(h.score > 0 for h in migration)
    assert [h.interaction.id for h in by_model] == [b.id]
    assert [h.interaction.id for h in by_session] == [c.id]
    assert [h.interaction.id for h in since] == [c.id]
    assert await captures.search(account, InteractionQuery(text="nothing-like-it")) == []


async def test_similarity_ranks_by_cosine_within_one_embedder_identity(
    storage: Storage, captures: CaptureStore
) -> None:
    account = await new_account(storage, "acme")
    a = interaction(account, 1, "kubernetes pod keeps crashing", "check the liveness probe")
    b = interaction(account, 2, "write a poem about autumn", "leaves fall")
    c = interaction(account, 3, None, None, mode=CaptureMode.METADATA)
    await put(captures, a, b, c)
    [query] = await EMBEDDER.embed(["kubernetes pod crashing"])

    found = await captures.search(
        account,
        InteractionQuery(text="kubernetes pod crashing", search_type=SearchType.SIMILARITY),
        vector=query,
        model=MODEL,
    )
    other_model = await captures.search(
        account, InteractionQuery(limit=5), vector=query, model="local:other@64"
    )

    assert [h.interaction.id for h in found] == [a.id, b.id]
    assert found[0].score > found[1].score
    assert other_model == []


async def test_purge_deletes_what_expired_and_full_text_forgets_it(
    storage: Storage, captures: CaptureStore
) -> None:
    account = await new_account(storage, "acme")
    old = interaction(account, 1, "expired secret plans", None, expires_at=at(10))
    fresh = interaction(account, 2, "fresh secret plans", None, expires_at=at(1000))
    await put(captures, old, fresh)

    assert await captures.purge(at(10)) == 1

    assert await captures.get(account, old.id) is None
    found = await captures.search(account, InteractionQuery(text="plans"))
    assert [h.interaction.id for h in found] == [fresh.id]


async def test_sessions_group_the_ledger_by_execution_and_by_session_header(
    storage: Storage, captures: CaptureStore
) -> None:
    account = await new_account(storage, "acme")
    await storage.usage.add_many(
        [
            usage(account, seconds=1, flow="triage", execution_id="fx_1", principal="flow:triage"),
            usage(
                account,
                seconds=5,
                flow="triage",
                execution_id="fx_1",
                principal="flow:triage",
                model="claude-sonnet-4",
            ),
            usage(account, seconds=3, session_id="cli-42", cost=Decimal("0.5")),
            usage(account, seconds=4),  # no session: not listed
        ]
    )

    found = await captures.sessions(account)
    one = await captures.sessions(account, session="cli-42")
    by_flow = await captures.sessions(account, flow="triage")
    recent = await captures.sessions(account, since=at(4))

    assert [s.id for s in found] == ["fx_1", "cli-42"]
    fx = found[0]
    assert (fx.flow, fx.principal, fx.execution_id, fx.calls) == (
        "triage",
        "flow:triage",
        "fx_1",
        2,
    )
    assert fx.models == ("claude-sonnet-4", "gpt-4o-mini")
    assert (fx.started_at, fx.last_at) == (at(1), at(5))
    assert (fx.input_tokens, fx.output_tokens) == (200, 20)
    assert [(s.id, s.execution_id, s.cost, s.calls) for s in one] == [
        ("cli-42", None, Decimal("0.5"), 1)
    ]
    assert [s.id for s in by_flow] == ["fx_1"]
    assert [s.id for s in recent] == ["fx_1"]


async def test_session_records_are_the_sessions_ledger_rows_newest_first(
    storage: Storage, captures: CaptureStore
) -> None:
    account = await new_account(storage, "acme")
    first = usage(account, seconds=1, execution_id="fx_1")
    second = usage(account, seconds=2, execution_id="fx_1")
    header = usage(account, seconds=3, session_id="cli-1")
    await storage.usage.add_many([first, second, header, usage(account, seconds=4)])

    assert [r.id for r in await captures.session_records(account, "fx_1")] == [
        second.id,
        first.id,
    ]
    assert await captures.session_records(account, "cli-1") == [header]
    assert await captures.session_records(account, "fx_1", limit=1) == [second]
    assert captures.engine in {"memory", "fts5", "tsvector"}


async def test_modes_come_back_as_the_enum(storage: Storage, captures: CaptureStore) -> None:
    account = await new_account(storage, "acme")
    await put(captures, interaction(account, 1, "a", "b"))

    found = await captures.get(account, f"use_{account[-6:]}_1")
    listed = await captures.search(account, InteractionQuery())

    assert found is not None
    assert found.mode is CaptureMode.FULL
    assert listed[0].interaction.mode is CaptureMode.FULL
