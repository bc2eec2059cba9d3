"""Providers: validation, audit without keys, routing order, and the provider key cache."""

from __future__ import annotations

import pytest

from hub.errors import ConfigError, ConflictError, NotFoundError, ValidationError

from .support import Stack, stack

KEY = "sk-ant-0123456789abcdefSECRET"


async def with_providers() -> Stack:
    s = await stack()
    add = s.providers.add
    await add(
        s.account_id,
        name="openai",
        kind="openai",
        base_url="https://api.openai.com/v1/",
        secret_ref="local:openai",
        models=["gpt-4o", "gpt-4o-mini", "o*"],
        aliases={"fast": "gpt-4o-mini"},
        actor="admin",
    )
    await add(
        s.account_id,
        name="anthropic",
        kind="anthropic",
        base_url="https://api.anthropic.com",
        secret_ref="local:anthropic",
        models=["claude-*"],
        aliases={"smart": "claude-sonnet-4-5"},
        actor="admin",
    )
    await add(
        s.account_id,
        name="local-vllm",
        kind="openai-compatible",
        base_url="http://127.0.0.1:8001/v1",
        secret_ref="env:VLLM_API_KEY",
        actor="admin",
    )
    return s


@pytest.mark.parametrize(
    ("model", "family", "provider", "upstream"),
    [
        ("fast", "openai", "openai", "gpt-4o-mini"),  # alias
        ("smart", "openai", "anthropic", "claude-sonnet-4-5"),  # alias of another family
        ("gpt-4o", "anthropic", "openai", "gpt-4o"),  # exact model, whatever the family
        ("anthropic/claude-3-haiku", "openai", "anthropic", "claude-3-haiku"),  # prefix
        ("openai/fast", "openai", "openai", "gpt-4o-mini"),  # prefix + alias
        ("claude-opus-4", "anthropic", "anthropic", "claude-opus-4"),  # glob
        ("o3", "openai", "openai", "o3"),  # glob
        ("meta-llama/Llama-3-8B", "openai", "local-vllm", "meta-llama/Llama-3-8B"),  # family
    ],
)
async def test_routing(model: str, family: str, provider: str, upstream: str) -> None:
    s = await with_providers()
    route = await s.providers.route(s.account_id, model, family=family)
    assert (provider, model, upstream) == (
        route.provider.name,
        route.requested_model,
        route.upstream_model,
    )


async def test_unroutable_model_lists_what_is_routable() -> None:
    s = await stack()
    with pytest.raises(NotFoundError, match="no provider is configured"):
        await s.providers.route(s.account_id, "gpt-4o", family="openai")
    s = await with_providers()
    with pytest.raises(NotFoundError) as caught:
        await s.providers.route(s.account_id, "mystery", family="anthropic")
    message = str(caught.value)
    assert "'mystery' is not routable" in message
    assert "fast, gpt-4o, gpt-4o-mini, smart" in message
    assert "claude-*" in message


async def test_models_lists_ids_and_aliases_sorted_without_globs() -> None:
    s = await with_providers()
    listed = [(m, p.name) for m, p in await s.providers.models(s.account_id)]
    assert [
        ("fast", "openai"),
        ("gpt-4o", "openai"),
        ("gpt-4o-mini", "openai"),
        ("smart", "anthropic"),
    ] == listed


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "has/slash", "invalid provider name"),
        ("kind", "bedrock", "one of openai, anthropic, openai-compatible"),
        ("base_url", "ftp://x", "expected http"),
        ("base_url", "https://user:pw@api.example.com", "credentials in the URL"),
        ("base_url", "https://api.example.com/v1?x=1", "no query string"),
        ("secret_ref", "sk-plainkey", "expected local:NAME"),
        ("models", ["has space"], "invalid model"),
    ],
)
async def test_provider_fields_are_validated(field: str, value: object, message: str) -> None:
    s = await stack()
    fields: dict[str, object] = {
        "name": "p",
        "kind": "openai",
        "base_url": "https://api.openai.com/v1",
        "secret_ref": "local:p",
        "models": [],
    }
    fields[field] = value
    with pytest.raises(ValidationError, match=message):
        await s.providers.add(s.account_id, actor="admin", **fields)  # type: ignore[arg-type]


async def test_add_update_remove_are_audited_by_reference_only() -> None:
    s = await with_providers()
    with pytest.raises(ConflictError, match="a provider named 'openai' exists"):
        await s.providers.add(
            s.account_id,
            name="openai",
            kind="openai",
            base_url="https://x.example",
            secret_ref="local:x",
            actor="admin",
        )
    updated = await s.providers.update(
        s.account_id, "openai", models=["gpt-5"], aliases={}, actor="admin"
    )
    assert ("gpt-5",) == updated.models
    assert "https://api.openai.com/v1" == updated.base_url
    assert ["gpt-5"] == [m for m, _ in await s.providers.models(s.account_id) if m == "gpt-5"]
    await s.providers.remove(s.account_id, "local-vllm", actor="admin")
    with pytest.raises(NotFoundError, match="no provider 'local-vllm'"):
        await s.providers.remove(s.account_id, "local-vllm", actor="admin")
    kinds = await s.kinds()
    assert ["provider.added"] * 3 + ["provider.updated", "provider.removed"] == kinds
    assert "local:openai" in await s.audit_text()


async def test_provider_key_comes_from_custody_and_is_dropped_when_the_secret_changes() -> None:
    s = await with_providers()
    route = await s.providers.route(s.account_id, "claude-x", family="anthropic")
    with pytest.raises(ConfigError, match="its key local:anthropic is missing") as caught:
        await s.providers.provider_key(route.provider)
    assert "provider 'anthropic'" in str(caught.value)

    await s.custody.put(s.account_id, "local:anthropic", KEY, actor="admin")
    assert KEY == await s.providers.provider_key(route.provider)
    await s.custody.put(s.account_id, "local:anthropic", KEY + "2", actor="admin")
    assert KEY + "2" == await s.providers.provider_key(route.provider)  # cache dropped
    assert KEY not in await s.audit_text()
