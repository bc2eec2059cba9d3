"""The gateway's custody stores: providers, ``local_encrypted`` secrets, flow executions and
runtime tokens, on every storage implementation."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from hub.errors import ConflictError, NotFoundError
from hub.ids import new_id
from hub.model_gateway.records import (
    FlowExecution,
    Provider,
    ProviderKind,
    RuntimeToken,
    StoredSecret,
)
from hub.ports import Storage

from .records import at, new_account


def provider(account_id: str, name: str = "openai", **extra: Any) -> Provider:
    fields: dict[str, Any] = {
        "id": new_id("prov"),
        "account_id": account_id,
        "name": name,
        "kind": ProviderKind.OPENAI,
        "base_url": "https://api.openai.com/v1",
        "secret_ref": "local:openai",
        "models": ("gpt-4o", "gpt-4o-*"),
        "aliases": {"fast": "gpt-4o-mini"},
        "created_at": at(0),
        "updated_at": at(0),
    }
    return Provider(**(fields | extra))


def secret(account_id: str, name: str = "openai", **extra: Any) -> StoredSecret:
    fields: dict[str, Any] = {
        "account_id": account_id,
        "name": name,
        "ciphertext": "bm9uY2UrY2lwaGVy",
        "key_id": "k1",
        "created_at": at(0),
        "updated_at": at(0),
    }
    return StoredSecret(**(fields | extra))


def execution(account_id: str, *, created: float = 0, **extra: Any) -> FlowExecution:
    fields: dict[str, Any] = {
        "id": new_id("fx"),
        "account_id": account_id,
        "flow": "nightly",
        "principal": "flow:nightly",
        "created_at": at(created),
        "labels": {"team": "ops"},
    }
    return FlowExecution(**(fields | extra))


def token(account_id: str, execution_id: str, **extra: Any) -> RuntimeToken:
    fields: dict[str, Any] = {
        "id": new_id("rt"),
        "account_id": account_id,
        "execution_id": execution_id,
        "flow": "nightly",
        "principal": "flow:nightly",
        "token_hash": new_id("hash"),
        "created_at": at(0),
        "expires_at": at(3600),
        "models": ("gpt-4o*",),
    }
    return RuntimeToken(**(fields | extra))


# --- providers ----------------------------------------------------------------------------
async def test_provider_round_trips_and_lists_by_name(storage: Storage) -> None:
    account_id = await new_account(storage)
    other = await new_account(storage)
    b, a = provider(account_id, "zeta"), provider(account_id, "alpha")
    await storage.providers.add(b)
    await storage.providers.add(a)
    await storage.providers.add(provider(other, "alpha"))

    assert b == await storage.providers.get(account_id, "zeta")
    assert ["alpha", "zeta"] == [p.name for p in await storage.providers.list(account_id)]
    assert await storage.providers.get(account_id, "missing") is None


async def test_provider_name_is_unique_per_account(storage: Storage) -> None:
    account_id = await new_account(storage)
    await storage.providers.add(provider(account_id))
    with pytest.raises(ConflictError):
        await storage.providers.add(provider(account_id))
    with pytest.raises(NotFoundError):
        await storage.providers.add(provider("acct_missing"))


async def test_provider_update_keeps_id_and_birth_and_remove_deletes(storage: Storage) -> None:
    account_id = await new_account(storage)
    first = provider(account_id)
    await storage.providers.add(first)
    changed = provider(
        account_id,
        base_url="https://proxy.example/v1",
        models=("o3",),
        aliases={},
        created_at=at(50),
        updated_at=at(60),
    )
    updated = await storage.providers.update(changed)

    assert (first.id, at(0), at(60)) == (updated.id, updated.created_at, updated.updated_at)
    assert updated == await storage.providers.get(account_id, "openai")
    assert ("o3",) == updated.models
    await storage.providers.remove(account_id, "openai")
    assert await storage.providers.get(account_id, "openai") is None
    with pytest.raises(NotFoundError):
        await storage.providers.remove(account_id, "openai")
    with pytest.raises(NotFoundError):
        await storage.providers.update(changed)


# --- secrets ------------------------------------------------------------------------------
async def test_secret_put_replaces_and_keeps_created_at(storage: Storage) -> None:
    account_id = await new_account(storage)
    await storage.secrets.put(secret(account_id))
    await storage.secrets.put(secret(account_id, ciphertext="b3RoZXI=", updated_at=at(9)))

    stored = await storage.secrets.get(account_id, "openai")
    assert stored == secret(account_id, ciphertext="b3RoZXI=", updated_at=at(9))
    assert await storage.secrets.get(account_id, "missing") is None
    with pytest.raises(NotFoundError):
        await storage.secrets.put(secret("acct_missing"))


async def test_secrets_list_per_account_or_all(storage: Storage) -> None:
    one, two = await new_account(storage), await new_account(storage)
    await storage.secrets.put(secret(one, "b"))
    await storage.secrets.put(secret(one, "a"))
    await storage.secrets.put(secret(two, "a"))

    assert ["a", "b"] == [s.name for s in await storage.secrets.list(one)]
    everything = [(s.account_id, s.name) for s in await storage.secrets.list()]
    assert sorted([(one, "a"), (one, "b"), (two, "a")]) == everything


async def test_secret_swap_is_compare_and_set(storage: Storage) -> None:
    account_id = await new_account(storage)
    old = secret(account_id)
    await storage.secrets.put(old)
    rotated = secret(account_id, ciphertext="cm90YXRlZA==", key_id="k2", updated_at=at(5))

    assert await storage.secrets.swap(old, rotated)
    assert not await storage.secrets.swap(old, rotated)  # the ciphertext changed since
    stored = await storage.secrets.get(account_id, "openai")
    assert stored is not None
    assert ("cm90YXRlZA==", "k2", at(0), at(5)) == (
        stored.ciphertext,
        stored.key_id,
        stored.created_at,
        stored.updated_at,
    )
    await storage.secrets.remove(account_id, "openai")
    assert not await storage.secrets.swap(rotated, rotated)
    with pytest.raises(NotFoundError):
        await storage.secrets.remove(account_id, "openai")


async def test_concurrent_swaps_let_one_win(storage: Storage) -> None:
    account_id = await new_account(storage)
    old = secret(account_id)
    await storage.secrets.put(old)
    candidates = [secret(account_id, ciphertext=f"c{i}", key_id="k2") for i in range(5)]
    wins = await asyncio.gather(*(storage.secrets.swap(old, c) for c in candidates))
    assert 1 == sum(wins)


# --- flow executions and runtime tokens ---------------------------------------------------
async def test_flow_executions_list_newest_first_and_by_flow(storage: Storage) -> None:
    account_id = await new_account(storage)
    first = execution(account_id, created=1)
    second = execution(account_id, created=2, flow="triage")
    await storage.flow_executions.add(first)
    await storage.flow_executions.add(second)

    assert first == await storage.flow_executions.get(account_id, first.id)
    assert await storage.flow_executions.get(await new_account(storage), first.id) is None
    assert [second.id, first.id] == [e.id for e in await storage.flow_executions.list(account_id)]
    assert [second] == list(await storage.flow_executions.list(account_id, flow="triage"))
    assert 1 == len(await storage.flow_executions.list(account_id, limit=1))
    with pytest.raises(ConflictError):
        await storage.flow_executions.add(first)


async def test_runtime_token_round_trips_across_accounts(storage: Storage) -> None:
    account_id = await new_account(storage)
    run = execution(account_id)
    await storage.flow_executions.add(run)
    issued = token(account_id, run.id)
    await storage.runtime_tokens.add(issued)

    assert issued == await storage.runtime_tokens.get(issued.id)
    assert [issued] == list(await storage.runtime_tokens.list(account_id, run.id))
    assert await storage.runtime_tokens.get("rt_missing") is None
    with pytest.raises(ConflictError):
        await storage.runtime_tokens.add(token(account_id, run.id, token_hash=issued.token_hash))


async def test_runtime_token_needs_its_execution_in_its_account(storage: Storage) -> None:
    account_id, other = await new_account(storage), await new_account(storage)
    run = execution(other)
    await storage.flow_executions.add(run)
    with pytest.raises(NotFoundError):
        await storage.runtime_tokens.add(token(account_id, run.id))
    with pytest.raises(NotFoundError):
        await storage.runtime_tokens.add(token(account_id, "fx_missing"))


async def test_runtime_token_revocation_keeps_the_earliest_time(storage: Storage) -> None:
    account_id = await new_account(storage)
    run = execution(account_id)
    await storage.flow_executions.add(run)
    issued = token(account_id, run.id)
    await storage.runtime_tokens.add(issued)

    await storage.runtime_tokens.revoke(account_id, issued.id, at(20))
    revoked = await storage.runtime_tokens.revoke(account_id, issued.id, at(30))
    assert at(20) == revoked.revoked_at
    assert msgspec.structs.replace(issued, revoked_at=at(20)) == (
        await storage.runtime_tokens.get(issued.id)
    )
    with pytest.raises(NotFoundError):
        await storage.runtime_tokens.revoke(await new_account(storage), issued.id, at(40))
