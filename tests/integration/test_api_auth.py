"""Authentication and role checks on every API route."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler

from hub.records import Role
from server.app import PUBLIC_PATHS
from tests.integration.conftest import Api


async def test_healthz_needs_no_key(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key"),
        ({"Authorization": "Basic abc"}, "must be 'Bearer <key>'"),
        ({"Authorization": "Bearer pl_0123456789abcdef_nope"}, "invalid API key"),
        ({"Authorization": "Bearer garbage"}, "invalid API key"),
    ],
)
async def test_bad_credentials_get_401_with_a_clear_message(
    api: Api, headers: dict[str, str], message: str
) -> None:
    response = await api.client.get("/api/v1/policies/versions", headers=headers)
    assert response.status_code == 401
    body = response.json()["error"]
    assert body["type"] == "AuthenticationError"
    assert message in body["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_roles_are_enforced(api: Api) -> None:
    viewer = await api.key(Role.VIEWER)
    agent = await api.key(Role.AGENT)
    assert (
        await api.client.get("/api/v1/policies/versions", headers=api.auth(viewer))
    ).status_code == 200
    denied = await api.client.post(
        "/api/v1/policies/rollback", json={"version": 1}, headers=api.auth(viewer)
    )
    assert denied.status_code == 403
    assert "admin" in denied.json()["error"]["message"]
    assert "viewer" in denied.json()["error"]["message"]
    for path in ("/api/v1/audit/", "/api/v1/policies/versions", "/api/v1/keys/"):
        response = await api.client.get(path, headers=api.auth(agent))
        assert response.status_code == 403, path
    assert (await api.client.get("/api/v1/keys/", headers=api.auth(viewer))).status_code == 403


async def test_whoami_answers_for_every_role(api: Api) -> None:
    for role in Role:
        key = await api.key(role)
        response = await api.client.get("/api/v1/whoami", headers=api.auth(key))
        assert response.status_code == 200
        assert response.json()["role"] == role.value


async def test_revoked_and_expired_keys_stop_working(api: Api) -> None:
    created = (
        await api.client.post(
            "/api/v1/keys/",
            json={"name": "short", "role": "viewer", "expires_in_seconds": 60},
            headers=api.auth(),
        )
    ).json()
    key, key_id = created["secret"], created["key"]["id"]
    assert (await api.client.get("/api/v1/whoami", headers=api.auth(key))).status_code == 200
    api.clock.advance(61)
    expired = await api.client.get("/api/v1/whoami", headers=api.auth(key))
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]

    other = (
        await api.client.post(
            "/api/v1/keys/", json={"name": "other", "role": "viewer"}, headers=api.auth()
        )
    ).json()
    revoked = await api.client.post(f"/api/v1/keys/{other['key']['id']}/revoke", headers=api.auth())
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    response = await api.client.get("/api/v1/whoami", headers=api.auth(other["secret"]))
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]
    assert key_id != other["key"]["id"]


def test_every_api_route_declares_roles() -> None:
    from hub.settings import load_settings
    from server.app import create_app

    app: Litestar = create_app(load_settings({}))
    checked = 0
    for route in app.routes:
        if any(re.match(p, route.path) for p in PUBLIC_PATHS):
            continue
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler) and handler.http_methods != {"OPTIONS"}:
                assert route.path.startswith("/api/v1"), route.path
                assert handler.opt.get("roles"), f"{route.path} declares no roles"
                checked += 1
    assert checked >= 15


async def test_bootstrap_admin_key_from_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hub.errors import ValidationError
    from hub.memory import InMemoryStorage
    from server.bootstrap import open_hub
    from tests.integration.conftest import make_settings

    good = make_settings(tmp_path, PRELOOP_ADMIN_KEY="k" * 40)
    hub = await open_hub(good, storage=InMemoryStorage())
    caller = await hub.identity.authenticate("k" * 40)
    assert caller.role == Role.ADMIN
    with pytest.raises(ValidationError, match="at least 32"):
        await open_hub(
            make_settings(tmp_path, PRELOOP_ADMIN_KEY="short"), storage=InMemoryStorage()
        )
