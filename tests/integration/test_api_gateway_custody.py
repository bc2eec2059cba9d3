"""Providers, secrets and flow executions through the REST API; provider keys, runtime tokens
and API keys never come back in API output, audit rows or logs."""

from __future__ import annotations

import logging

import pytest

from hub.records import Role
from tests.integration.conftest import Api

PROVIDER_KEY = "sk-provider-0123456789abcdefTOPSECRET"


async def _provider(api: Api, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "openai",
        "kind": "openai",
        "base_url": "https://api.openai.com/v1",
        "secret_ref": "local:openai",
        "models": ["gpt-4o", "gpt-4o-mini"],
        "aliases": {"fast": "gpt-4o-mini"},
    }
    created = await api.client.post("/api/v1/providers/", json=body | changes, headers=api.auth())
    assert 201 == created.status_code, created.text
    result: dict[str, object] = created.json()
    return result


async def test_providers_are_added_listed_changed_and_removed(api: Api) -> None:
    created = await _provider(api)
    assert ("openai", "local:openai", {"fast": "gpt-4o-mini"}) == (
        created["name"],
        created["secret_ref"],
        created["aliases"],
    )
    changed = await api.client.patch(
        "/api/v1/providers/openai", json={"models": ["gpt-5"]}, headers=api.auth()
    )
    assert 200 == changed.status_code, changed.text
    assert ["gpt-5"] == changed.json()["models"]
    assert {"fast": "gpt-4o-mini"} == changed.json()["aliases"]
    viewer = await api.key(Role.VIEWER)
    listed = await api.client.get("/api/v1/providers/", headers=api.auth(viewer))
    assert ["openai"] == [p["name"] for p in listed.json()]

    account = await api.hub.identity.default_account()
    route = await api.hub.model_router.route(account.id, "gpt-5", family="openai")
    assert "openai" == route.provider.name

    refused = await api.client.post(
        "/api/v1/providers/",
        json={"name": "x", "kind": "openai", "base_url": "https://x", "secret_ref": "sk-raw"},
        headers=api.auth(viewer),
    )
    assert 403 == refused.status_code
    removed = await api.client.delete("/api/v1/providers/openai", headers=api.auth())
    assert 204 == removed.status_code
    missing = await api.client.delete("/api/v1/providers/openai", headers=api.auth())
    assert 404 == missing.status_code
    assert "no provider 'openai'" in missing.json()["error"]["message"]


async def test_bad_provider_fields_are_clear_400s(api: Api) -> None:
    bad = await api.client.post(
        "/api/v1/providers/",
        json={"name": "p", "kind": "openai", "base_url": "https://x", "secret_ref": "sk-raw-key"},
        headers=api.auth(),
    )
    assert 400 == bad.status_code
    assert "expected local:NAME, vault:PATH#FIELD or env:VAR" in bad.json()["error"]["message"]
    kind = await api.client.post(
        "/api/v1/providers/",
        json={"name": "p", "kind": "bedrock", "base_url": "https://x", "secret_ref": "local:p"},
        headers=api.auth(),
    )
    assert 400 == kind.status_code


async def test_secrets_are_write_only_and_admin_only(api: Api) -> None:
    put = await api.client.put(
        "/api/v1/secrets/openai", json={"value": PROVIDER_KEY}, headers=api.auth()
    )
    assert 200 == put.status_code, put.text
    assert {"name": "openai", "backend": "local", "ref": "local:openai", "current": True} == {
        k: put.json()[k] for k in ("name", "backend", "ref", "current")
    }
    listed = await api.client.get("/api/v1/secrets/", headers=api.auth())
    assert ["local:openai"] == [s["ref"] for s in listed.json()]
    rotated = await api.client.post("/api/v1/secrets/openai/rotate", headers=api.auth())
    assert rotated.json()["rotated"] is False
    agent = await api.key(Role.AGENT)
    assert 403 == (await api.client.get("/api/v1/secrets/", headers=api.auth(agent))).status_code
    bad = await api.client.put("/api/v1/secrets/bad name", json={"value": "x"}, headers=api.auth())
    assert 400 == bad.status_code
    assert (
        204 == (await api.client.delete("/api/v1/secrets/openai", headers=api.auth())).status_code
    )
    gone = await api.client.delete("/api/v1/secrets/openai", headers=api.auth())
    assert 404 == gone.status_code
    assert "local:openai does not exist" in gone.json()["error"]["message"]


async def test_flow_execution_token_is_shown_once_and_revocable(api: Api) -> None:
    started = await api.client.post(
        "/api/v1/flows/nightly/executions",
        json={"ttl_seconds": 600, "models": ["gpt-4o*"], "principal": "ops@example.com"},
        headers=api.auth(),
    )
    assert 201 == started.status_code, started.text
    body = started.json()
    token = body["token"]
    assert token.startswith("plrt_")
    assert body["openai_base_url"].endswith("/openai/v1")
    assert body["anthropic_base_url"].endswith("/anthropic")
    execution_id = body["execution"]["id"]
    who = await api.hub.gateway_auth.authenticate(token)
    assert ("nightly", execution_id, "ops@example.com") == (
        who.flow,
        who.execution_id,
        who.principal,
    )

    shown = await api.client.get(f"/api/v1/flows/executions/{execution_id}", headers=api.auth())
    assert token not in shown.text
    assert ["active"] == [t["status"] for t in shown.json()["tokens"]]
    revoked = await api.client.post(
        f"/api/v1/flows/executions/{execution_id}/revoke-token", headers=api.auth()
    )
    assert ["revoked"] == [t["status"] for t in revoked.json()["tokens"]]
    missing = await api.client.get("/api/v1/flows/executions/fx_missing", headers=api.auth())
    assert 404 == missing.status_code


async def test_an_agent_key_runs_a_flow_as_itself(api: Api) -> None:
    agent = await api.key(Role.AGENT, name="runner")
    started = await api.client.post(
        "/api/v1/flows/triage/executions", json={}, headers=api.auth(agent)
    )
    assert 201 == started.status_code, started.text
    assert "runner" == started.json()["execution"]["principal"]
    spoof = await api.client.post(
        "/api/v1/flows/triage/executions", json={"principal": "boss"}, headers=api.auth(agent)
    )
    assert 403 == spoof.status_code
    too_long = await api.client.post(
        "/api/v1/flows/triage/executions",
        json={"ttl_seconds": 10**7},
        headers=api.auth(agent),
    )
    assert 400 == too_long.status_code
    assert "ttl_seconds must be between 1 and 86400" in too_long.json()["error"]["message"]


async def test_an_agent_key_sees_and_revokes_only_its_own_flow_executions(api: Api) -> None:
    """Another agent's execution is answered 404, exactly as a missing one, on every flow
    execution endpoint; its token keeps working. Readers and admins see the whole account."""
    a, b = await api.key(Role.AGENT, name="runner-a"), await api.key(Role.AGENT, name="runner-b")
    started = await api.client.post("/api/v1/flows/triage/executions", json={}, headers=api.auth(a))
    assert 201 == started.status_code, started.text
    execution_id, token = started.json()["execution"]["id"], started.json()["token"]
    path = f"/api/v1/flows/executions/{execution_id}"

    shown = await api.client.get(path, headers=api.auth(b))
    revoked = await api.client.post(f"{path}/revoke-token", headers=api.auth(b))
    missing = await api.client.get("/api/v1/flows/executions/fx_missing", headers=api.auth(b))

    assert [404, 404] == [shown.status_code, revoked.status_code]
    assert f"no flow execution {execution_id!r}" == shown.json()["error"]["message"]
    assert shown.json()["error"] == revoked.json()["error"]
    gone = {**missing.json()["error"], "message": shown.json()["error"]["message"]}
    assert gone == shown.json()["error"]  # the same answer as an execution that does not exist
    assert execution_id == (await api.hub.gateway_auth.authenticate(token)).execution_id
    for other in (f"{path}/gateway-events", f"/api/v1/gateway/sessions/{execution_id}"):
        assert 403 == (await api.client.get(other, headers=api.auth(b))).status_code

    viewer = await api.key(Role.VIEWER)
    seen = await api.client.get(path, headers=api.auth(viewer))
    assert (200, ["active"]) == (seen.status_code, [t["status"] for t in seen.json()["tokens"]])
    own = await api.client.get(path, headers=api.auth(a))
    assert (200, "runner-a") == (own.status_code, own.json()["execution"]["principal"])
    own_revoke = await api.client.post(f"{path}/revoke-token", headers=api.auth(a))
    assert ["revoked"] == [t["status"] for t in own_revoke.json()["tokens"]]

    for_b = await api.client.post(
        "/api/v1/flows/triage/executions", json={"principal": "runner-b"}, headers=api.auth()
    )
    b_path = f"/api/v1/flows/executions/{for_b.json()['execution']['id']}"
    assert 200 == (await api.client.get(b_path, headers=api.auth(b))).status_code
    assert 404 == (await api.client.post(f"{b_path}/revoke-token", headers=api.auth(a))).status_code
    by_admin = await api.client.post(f"{b_path}/revoke-token", headers=api.auth())
    assert ["revoked"] == [t["status"] for t in by_admin.json()["tokens"]]


async def test_secrets_never_appear_in_api_output_audit_rows_or_logs(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await api.client.put("/api/v1/secrets/openai", json={"value": PROVIDER_KEY}, headers=api.auth())
    await _provider(api)
    started = await api.client.post("/api/v1/flows/nightly/executions", json={}, headers=api.auth())
    token = started.json()["token"]
    account = await api.hub.identity.default_account()
    route = await api.hub.model_router.route(account.id, "fast", family="openai")
    assert PROVIDER_KEY == await api.hub.model_router.provider_key(route.provider)
    await api.hub.gateway_auth.authenticate(token)
    await api.client.post(
        f"/api/v1/flows/executions/{started.json()['execution']['id']}/revoke-token",
        headers=api.auth(),
    )
    errors = [
        await api.client.put(
            "/api/v1/secrets/bad%20name", json={"value": PROVIDER_KEY}, headers=api.auth()
        ),
        await api.client.get("/api/v1/providers/", headers=api.auth(token)),
        await api.client.get("/api/v1/providers/", headers=api.auth(PROVIDER_KEY)),
    ]
    assert [400, 401, 401] == [e.status_code for e in errors]

    outputs = [
        (await api.client.get(path, headers=api.auth())).text
        for path in (
            "/api/v1/providers/",
            "/api/v1/providers/openai",
            "/api/v1/secrets/",
            f"/api/v1/flows/executions/{started.json()['execution']['id']}",
            "/api/v1/audit/export",
        )
    ] + [e.text for e in errors]
    audit_rows = [str(e.data) for e in await api.hub.storage.audit.all(account.id)]
    logs = [r.getMessage() for r in caplog.records]
    stored = [s.ciphertext for s in await api.hub.storage.secrets.list()]
    for secret in (PROVIDER_KEY, token, api.admin_key):
        for place, texts in (
            ("API output", outputs),
            ("audit rows", audit_rows),
            ("logs", logs),
            ("stored", stored),
        ):
            assert not any(secret in text for text in texts), f"a secret leaked into {place}"
    assert any("secret.stored" == e.kind for e in await api.hub.storage.audit.all(account.id))
