"""Flow executions and runtime tokens; the gateway's authentication of tokens and API keys."""

from __future__ import annotations

import pytest

from hub.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from hub.keys import hash_key
from hub.model_gateway.runtime import model_allowed, token_id_of
from hub.records import Role

from .support import stack


async def test_a_started_execution_authenticates_with_its_token() -> None:
    s = await stack()
    started = await s.runtime.start(
        s.account_id, "nightly", "", ttl_seconds=600, models=["gpt-4o*"], actor="admin"
    )
    text = started.token_text
    assert text.startswith("plrt_")
    assert token_id_of(text) == started.token.id
    assert started.token.token_hash == hash_key(text)
    stored = await s.storage.runtime_tokens.get(started.token.id)
    assert stored is not None
    assert text not in stored.token_hash

    who = await s.runtime.authenticate(text)
    assert (s.account_id, started.token.id, "flow:nightly", "nightly") == (
        who.account_id,
        who.api_key_id,
        who.principal,
        who.flow,
    )
    assert started.execution.id == who.execution_id
    assert model_allowed(who, "gpt-4o-mini")
    assert not model_allowed(who, "claude-3")
    assert ["runtime.token_issued"] == await s.kinds()
    assert text not in await s.audit_text()


async def test_expired_revoked_and_unknown_tokens_are_refused_clearly() -> None:
    s = await stack()
    started = await s.runtime.start(s.account_id, "nightly", "ci", ttl_seconds=60, actor="a")
    with pytest.raises(AuthenticationError, match="invalid runtime token"):
        await s.runtime.authenticate(started.token_text[:-2] + "xx")
    with pytest.raises(AuthenticationError, match="invalid runtime token"):
        await s.runtime.authenticate("plrt_0123456789abcdef_nothing")
    with pytest.raises(AuthenticationError, match="invalid runtime token"):
        await s.runtime.authenticate("plrt_garbage")
    s.clock.advance(60)
    with pytest.raises(AuthenticationError, match="expired at"):
        await s.runtime.authenticate(started.token_text)

    fresh = await s.runtime.start(s.account_id, "nightly", "ci", actor="a")
    await s.runtime.authenticate(fresh.token_text)  # cached now
    revoked = await s.runtime.revoke(s.account_id, fresh.execution.id, actor="a")
    assert revoked[0].revoked_at is not None
    with pytest.raises(AuthenticationError, match="was revoked"):
        await s.runtime.authenticate(fresh.token_text)
    await s.runtime.revoke(s.account_id, fresh.execution.id, actor="a")  # idempotent
    assert 1 == (await s.kinds()).count("runtime.token_revoked")


async def test_a_principal_sees_and_revokes_only_its_own_executions() -> None:
    s = await stack()
    started = await s.runtime.start(s.account_id, "triage", "runner-a", actor="key_a")
    execution_id = started.execution.id

    for attempt in (
        s.runtime.execution(s.account_id, execution_id, principal="runner-b"),
        s.runtime.revoke(s.account_id, execution_id, actor="key_b", principal="runner-b"),
    ):
        with pytest.raises(NotFoundError) as raised:
            await attempt
        assert f"no flow execution {execution_id!r}" == raised.value.message

    assert execution_id == (await s.runtime.authenticate(started.token_text)).execution_id
    assert ["runtime.token_issued"] == await s.kinds()
    found, _ = await s.runtime.execution(s.account_id, execution_id, principal="runner-a")
    assert "runner-a" == found.principal
    revoked = await s.runtime.revoke(
        s.account_id, execution_id, actor="key_a", principal="runner-a"
    )
    assert [started.token.id] == [t.id for t in revoked if t.revoked_at is not None]


async def test_ttl_flow_name_and_models_are_validated() -> None:
    s = await stack()
    with pytest.raises(ValidationError, match="between 1 and 7200"):
        await s.runtime.start(s.account_id, "f", "", ttl_seconds=7201, actor="a")
    with pytest.raises(ValidationError, match="invalid flow name"):
        await s.runtime.start(s.account_id, "bad/flow", "", actor="a")
    with pytest.raises(ValidationError, match="model pattern"):
        await s.runtime.start(s.account_id, "f", "", models=["a b"], actor="a")


async def test_api_keys_authenticate_for_agents_and_admins_only() -> None:
    s = await stack()
    user = await s.identity.add_user(s.account_id, email="ann@example.com", name="Ann", actor="a")
    agent = await s.identity.create_key(
        s.account_id,
        name="ci agent",
        role=Role.AGENT,
        actor="a",
        user_email=user.email,
        labels={"flow": "release"},
    )
    who = await s.runtime.authenticate(agent.secret)
    assert (agent.key.id, "ann@example.com", "release", None) == (
        who.api_key_id,
        who.principal,
        who.flow,
        who.execution_id,
    )
    viewer = await s.identity.create_key(s.account_id, name="v", role=Role.VIEWER, actor="a")
    with pytest.raises(PermissionDeniedError, match="agent or admin"):
        await s.runtime.authenticate(viewer.secret)
    with pytest.raises(AuthenticationError, match="missing credential"):
        await s.runtime.authenticate(" ")
    with pytest.raises(AuthenticationError, match="invalid API key"):
        await s.runtime.authenticate("pl_0123456789abcdef_" + "x" * 40)
