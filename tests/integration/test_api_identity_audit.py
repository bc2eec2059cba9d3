"""Keys, users, teams and the audit trail through the REST API; request hygiene."""

from __future__ import annotations

import json

from tests.integration.conftest import Api


async def test_key_secret_is_shown_once_and_never_stored(api: Api) -> None:
    created = await api.client.post(
        "/api/v1/keys/",
        json={"name": "ci", "role": "agent", "labels": {"team": "infra"}},
        headers=api.auth(),
    )
    assert created.status_code == 201
    body = created.json()
    secret = body["secret"]
    assert secret.startswith(f"pl_{body['key']['id']}_")
    listed = await api.client.get("/api/v1/keys/", headers=api.auth())
    assert secret not in listed.text
    assert "hash" not in listed.text
    stored = await api.hub.storage.api_keys.get(body["key"]["id"])
    assert stored is not None
    assert secret not in stored.key_hash
    audit = await api.client.get("/api/v1/audit/export", headers=api.auth())
    assert secret not in audit.text
    assert any(k["name"] == "ci" and k["labels"] == {"team": "infra"} for k in listed.json())


async def test_a_key_carries_its_tool_allow_list(api: Api) -> None:
    created = await api.client.post(
        "/api/v1/keys/",
        json={"name": "gh", "role": "agent", "tools": ["github__*", "db__query", "github__*"]},
        headers=api.auth(),
    )
    assert created.status_code == 201, created.text
    assert ["github__*", "db__query"] == created.json()["key"]["tools"]
    listed = {
        k["name"]: k["tools"]
        for k in (await api.client.get("/api/v1/keys/", headers=api.auth())).json()
    }
    assert ["github__*", "db__query"] == listed["gh"]
    assert [] == listed[next(n for n in listed if n != "gh")]  # no list: every tool
    caller = await api.hub.identity.authenticate(created.json()["secret"])
    assert ("github__*", "db__query") == caller.tools

    bad = await api.client.post(
        "/api/v1/keys/",
        json={"name": "bad", "role": "agent", "tools": ["github"]},
        headers=api.auth(),
    )
    assert bad.status_code == 400
    assert "did you mean 'github__*'" in bad.json()["error"]["message"]
    not_a_list = await api.client.post(
        "/api/v1/keys/",
        json={"name": "bad", "role": "agent", "tools": "github__*"},
        headers=api.auth(),
    )
    assert not_a_list.status_code == 400


async def test_users_and_teams(api: Api) -> None:
    for email in ("ana@example.com", "bo@example.com"):
        response = await api.client.post(
            "/api/v1/users/", json={"email": email}, headers=api.auth()
        )
        assert response.status_code == 201
    dup = await api.client.post(
        "/api/v1/users/", json={"email": "ANA@example.com"}, headers=api.auth()
    )
    assert dup.status_code == 409
    bad = await api.client.post(
        "/api/v1/users/", json={"email": "not-an-email"}, headers=api.auth()
    )
    assert bad.status_code == 400
    team = await api.client.post(
        "/api/v1/teams/",
        json={"name": "oncall", "members": ["ana@example.com", "bo@example.com"]},
        headers=api.auth(),
    )
    assert team.status_code == 201
    missing = await api.client.post(
        "/api/v1/teams/",
        json={"name": "ghosts", "members": ["nobody@example.com"]},
        headers=api.auth(),
    )
    assert missing.status_code == 404
    assert "nobody@example.com" in missing.json()["error"]["message"]
    teams = (await api.client.get("/api/v1/teams/", headers=api.auth())).json()
    assert [(t["name"], t["members"]) for t in teams] == [
        ("oncall", ["ana@example.com", "bo@example.com"])
    ]
    users = (await api.client.get("/api/v1/users/", headers=api.auth())).json()
    assert [u["email"] for u in users] == ["ana@example.com", "bo@example.com"]


async def test_audit_search_export_and_verify(api: Api) -> None:
    await api.client.post("/api/v1/users/", json={"email": "ana@example.com"}, headers=api.auth())
    events = (
        await api.client.get("/api/v1/audit/", params={"order": "oldest"}, headers=api.auth())
    ).json()
    kinds = [e["kind"] for e in events]
    assert kinds == ["key.created", "policy.applied", "user.added"]
    assert [e["seq"] for e in events] == [1, 2, 3]
    only_users = (
        await api.client.get("/api/v1/audit/", params={"kind": "user."}, headers=api.auth())
    ).json()
    assert [e["kind"] for e in only_users] == ["user.added"]
    export = await api.client.get("/api/v1/audit/export", headers=api.auth())
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3]
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    report = (await api.client.get("/api/v1/audit/verify", headers=api.auth())).json()
    assert report == {"ok": True, "events": 3, "problems": []}


async def test_oversized_body_is_refused_with_413(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/policies/validate",
        content=b'{"source": "' + b"x" * 70_000 + b'"}',
        headers={**api.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "PayloadTooLargeError"


async def test_garbage_json_is_a_400_naming_the_problem(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/policies/validate",
        content=b"{not json",
        headers={**api.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "ValidationError"
    unknown = await api.client.post(
        "/api/v1/keys/", json={"name": "x", "role": "root"}, headers=api.auth()
    )
    assert unknown.status_code == 400
    assert "role" in unknown.json()["error"]["message"]
    extra = await api.client.post(
        "/api/v1/users/", json={"email": "a@b.co", "admin": True}, headers=api.auth()
    )
    assert extra.status_code == 400
    assert "admin" in extra.json()["error"]["message"]


async def test_openapi_is_served(api: Api) -> None:
    schema = await api.client.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/policies/apply" in paths
    assert "/api/v1/audit/verify" in paths
    docs = await api.client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
