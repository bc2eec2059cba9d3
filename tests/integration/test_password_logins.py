"""Password logins over HTTP: ``PUT /api/v1/users/{user}/password``, ``POST`` and ``DELETE
/api/v1/auth/token`` (JSON and the OAuth2 form), the access token on REST (decisions 0092 and
0093). On /mcp, the WebSocket and the gateway: tests/integration/mcp/test_access_tokens.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import Api

SECRET = "correct horse battery staple"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def with_password(
    http: Any, admin: str, email: str, role: str | None = None, password: str = SECRET
) -> dict[str, Any]:
    """Add the user ``email`` (if new) and set their password over REST."""
    await http.post("/api/v1/users/", json={"email": email}, headers=bearer(admin))
    body: dict[str, Any] = {"password": password}
    if role is not None:
        body["role"] = role
    answer = await http.put(f"/api/v1/users/{email}/password", json=body, headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def login(http: Any, email: str, password: str = SECRET) -> str:
    answer = await http.post("/api/v1/auth/token", json={"username": email, "password": password})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


# --- in process (a frozen clock) ------------------------------------------------------------
async def test_json_and_form_logins_give_a_bearer_token_with_the_users_role(api: Api) -> None:
    set_ = await with_password(api.client, api.admin_key, "ann@example.com", "approver")
    assert {"email": "ann@example.com", "role": "approver", "tokens_revoked": True} == {
        k: set_[k] for k in ("email", "role", "tokens_revoked")
    }
    assert SECRET not in json.dumps(set_)

    as_json = await api.client.post(
        "/api/v1/auth/token", json={"username": "ann@example.com", "password": SECRET}
    )
    as_form = await api.client.post(
        "/api/v1/auth/token",
        content=f"grant_type=password&username=ann%40example.com&password={SECRET}&scope=",
        headers=FORM,
    )

    for answer in (as_json, as_form):
        assert 200 == answer.status_code, answer.text
        body = answer.json()
        assert {"access_token", "token_type", "expires_in"} == set(body)
        assert ("bearer", 3600) == (body["token_type"], body["expires_in"])
        assert body["access_token"].startswith("plat_")
        assert "no-store" == answer.headers["cache-control"]
        me = await api.client.get("/api/v1/whoami", headers=bearer(body["access_token"]))
        assert 200 == me.status_code
        assert ("approver", "ann@example.com") == (me.json()["role"], me.json()["name"])
    assert as_json.json()["access_token"] != as_form.json()["access_token"]


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(api: Api) -> None:
    await with_password(api.client, api.admin_key, "ann@example.com", "admin")

    wrong = await api.client.post(
        "/api/v1/auth/token", json={"username": "ann@example.com", "password": "not it at all"}
    )
    unknown = await api.client.post(
        "/api/v1/auth/token", json={"username": "nobody@example.com", "password": SECRET}
    )

    assert (401, 401) == (wrong.status_code, unknown.status_code)
    assert wrong.json() == unknown.json()
    assert "invalid username or password" == wrong.json()["error"]["message"]
    failed = await api.client.get(
        "/api/v1/audit/", params={"kind": "auth.login_failed"}, headers=api.auth()
    )
    reasons = sorted(e["data"]["reason"] for e in failed.json())
    assert ["unknown user", "wrong password"] == reasons
    assert all("not it at all" not in json.dumps(e) for e in failed.json())


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        ({"username": "ann@example.com"}, {}, "password"),
        ({"username": "a@b.c", "password": "x", "remember": True}, {}, "remember"),
        (
            {"username": "a@b.c", "password": "x", "grant_type": "client_credentials"},
            {},
            "grant_type",
        ),
        ({"username": 3, "password": "x"}, {}, "username"),
        ("username=a%40b.c&password=x", FORM, "grant_type"),
        ("grant_type=password&username=a&username=b&password=x", FORM, "username"),
        ("grant_type=password&username=a&password=x&admin=1", FORM, "admin"),
        ("grant_type=password&password=x", FORM, "username"),
    ],
)
async def test_a_malformed_login_is_a_400_naming_the_field(
    api: Api, body: Any, headers: dict[str, str], field: str
) -> None:
    if isinstance(body, dict):
        answer = await api.client.post("/api/v1/auth/token", json=body)
    else:
        answer = await api.client.post("/api/v1/auth/token", content=body, headers=headers)

    assert 400 == answer.status_code, answer.text
    assert field in answer.json()["error"]["message"]


async def test_a_body_that_is_no_login_at_all_is_a_400(api: Api) -> None:
    for content, kind in [
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b"<login/>", "application/xml"),
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
    ]:
        answer = await api.client.post(
            "/api/v1/auth/token", content=content, headers={"Content-Type": kind}
        )
        assert 400 == answer.status_code, (content, answer.text)
        assert "ValidationError" == answer.json()["error"]["type"]


async def test_failed_logins_are_limited_and_the_limit_recovers(api: Api) -> None:
    await with_password(api.client, api.admin_key, "ann@example.com", "admin")
    wrong = {"username": "ann@example.com", "password": "wrong password!"}
    for _ in range(5):  # PRELOOP_AUTH_LOGIN_ATTEMPTS
        assert 401 == (await api.client.post("/api/v1/auth/token", json=wrong)).status_code

    refused = await api.client.post(
        "/api/v1/auth/token", json={"username": "ann@example.com", "password": SECRET}
    )
    assert 429 == refused.status_code
    assert "300" == refused.headers["retry-after"]
    assert "RateLimitedError" == refused.json()["error"]["type"]

    api.clock.advance(300)
    assert (await login(api.client, "ann@example.com")).startswith("plat_")


async def test_a_token_stops_working_at_expiry_and_on_logout(api: Api) -> None:
    await with_password(api.client, api.admin_key, "ann@example.com", "admin")
    first = await login(api.client, "ann@example.com")
    api.clock.advance(3600)
    expired = await api.client.get("/api/v1/whoami", headers=bearer(first))
    assert 401 == expired.status_code
    assert "expired" in expired.json()["error"]["message"]
    mcp = await api.client.post(
        "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={**bearer(first), "Accept": "application/json, text/event-stream"},
    )
    assert 401 == mcp.status_code
    assert "expired" in mcp.text

    second = await login(api.client, "ann@example.com")
    out = await api.client.delete("/api/v1/auth/token", headers=bearer(second))
    assert 204 == out.status_code
    after = await api.client.get("/api/v1/whoami", headers=bearer(second))
    assert 401 == after.status_code
    assert "revoked" in after.json()["error"]["message"]
    again = await api.client.delete("/api/v1/auth/token", headers=bearer(second))
    assert 401 == again.status_code

    key_logout = await api.client.delete("/api/v1/auth/token", headers=api.auth())
    assert 403 == key_logout.status_code
    kinds = await api.client.get("/api/v1/audit/", params={"kind": "auth."}, headers=api.auth())
    assert ["auth.login", "auth.login", "auth.logout"] == sorted(e["kind"] for e in kinds.json())


async def test_a_viewers_token_reads_but_cannot_decide_or_administer(api: Api) -> None:
    await with_password(api.client, api.admin_key, "vic@example.com", "viewer")
    token = await login(api.client, "vic@example.com")

    reads = await api.client.get("/api/v1/approvals/", headers=bearer(token))
    approve = await api.client.post(
        "/api/v1/approvals/ap_anything/approve", json={}, headers=bearer(token)
    )
    passwd = await api.client.put(
        "/api/v1/users/vic@example.com/password",
        json={"password": SECRET, "role": "admin"},
        headers=bearer(token),
    )

    assert 200 == reads.status_code
    assert (403, 403) == (approve.status_code, passwd.status_code)
    assert "role viewer" in approve.json()["error"]["message"]


async def test_a_password_is_at_least_twelve_characters(api: Api) -> None:
    await api.client.post("/api/v1/users/", json={"email": "a@b.co"}, headers=api.auth())
    short = await api.client.put(
        "/api/v1/users/a@b.co/password", json={"password": "elevenchars"}, headers=api.auth()
    )
    missing = await api.client.put(
        "/api/v1/users/nobody@b.co/password", json={"password": SECRET}, headers=api.auth()
    )

    assert 400 == short.status_code
    assert "password" in short.json()["error"]["message"]
    assert 404 == missing.status_code
