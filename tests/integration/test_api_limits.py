"""Integers past what a column (or the domain) holds are refused with 400 naming the field,
on SQLite and on PostgreSQL alike: never a 500, never the driver's text in a 503."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import make_settings, run_live

TOO_BIG = 2**63  # one past a signed 64-bit column


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated SQLite or PostgreSQL database."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """The real server on 127.0.0.1 over that database, and a client with an admin key."""
    settings = make_settings(tmp_path, PRELOOP_DATABASE_URL=database_url)
    with run_live(settings) as server:
        auth = {"Authorization": f"Bearer {server.admin_key}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as http:
            yield http


def _refused(response: httpx.Response, field: str) -> str:
    """The error's message, once it is a 400 ValidationError."""
    body = response.json()
    assert (400, "ValidationError") == (response.status_code, body["error"]["type"]), body
    message: str = body["error"]["message"]
    assert field in message
    return message


@pytest.mark.parametrize("field", ["after_seq", "before_seq"])
def test_an_audit_seq_past_64_bits_is_refused(client: httpx.Client, field: str) -> None:
    response = client.get(f"/api/v1/audit?{field}={TOO_BIG}")
    assert f"<= {TOO_BIG - 1}" in _refused(response, field)


def test_the_largest_audit_seq_is_a_query_like_any_other(
    client: httpx.Client,
) -> None:
    response = client.get(f"/api/v1/audit?after_seq={TOO_BIG - 1}")
    assert (200, []) == (response.status_code, response.json())


def test_exporting_a_policy_version_past_the_column_is_refused(
    client: httpx.Client,
) -> None:
    for version in (TOO_BIG, 2**31):  # the version column is a 32-bit INTEGER
        response = client.get(f"/api/v1/policies/export?version={version}")
        _refused(response, "version")


def test_rolling_back_to_a_version_past_the_column_is_refused(
    client: httpx.Client,
) -> None:
    for version in (TOO_BIG, 2**31):
        response = client.post("/api/v1/policies/rollback", json={"version": version})
        _refused(response, "version")


def test_the_largest_policy_version_is_simply_not_found(
    client: httpx.Client,
) -> None:
    response = client.get(f"/api/v1/policies/export?version={2**31 - 1}")
    assert (404, f"no policy version {2**31 - 1}") == (
        response.status_code,
        response.json()["error"]["message"],
    )


@pytest.mark.parametrize("seconds", [10**18, TOO_BIG, 10 * 366 * 86400 + 1])
def test_a_key_expiring_past_ten_years_is_refused(client: httpx.Client, seconds: int) -> None:
    body = {"name": "far", "role": "viewer", "expires_in_seconds": seconds}
    response = client.post("/api/v1/keys", json=body)
    _refused(response, "expires_in_seconds")


def test_a_key_may_expire_in_ten_years(
    client: httpx.Client,
) -> None:
    body = {"name": "far", "role": "viewer", "expires_in_seconds": 10 * 366 * 86400}
    response = client.post("/api/v1/keys", json=body)
    assert 201 == response.status_code


def test_text_the_database_cannot_store_is_a_400_not_a_database_error(
    client: httpx.Client, database_url: str
) -> None:
    """PostgreSQL cannot store NUL in text; SQLite can."""
    response = client.post("/api/v1/users", json={"email": "nul@example.com", "name": "a\u0000b"})
    if database_url.startswith("sqlite"):
        assert 201 == response.status_code
    else:
        assert "NUL" in _refused(response, "character")


def test_a_secret_without_the_local_key_configured_is_503_naming_the_setting(
    client: httpx.Client, database_url: str
) -> None:
    response = client.put("/api/v1/secrets/openai", json={"value": "sk-test"})
    if database_url.startswith("sqlite"):  # a local key is generated into the data directory
        assert response.is_success, response.text
        return
    body = response.json()
    assert (503, "ConfigError") == (response.status_code, body["error"]["type"])
    assert "PRELOOP_SECRETS_KEYS" in body["error"]["message"]


@pytest.mark.parametrize("field", ["tool", "server", "decision"])
def test_an_export_filtered_by_text_the_database_cannot_store_is_a_400_before_streaming(
    client: httpx.Client, database_url: str, field: str
) -> None:
    """PostgreSQL refuses NUL in the JSON a data filter is compared with when it compares,
    not when it plans, once the statement runs on a generic plan (after a few executions): a
    LIMIT 0 read then compares nothing. The export's first page is read before the stream's
    200 is sent; a refusal inside the stream cut the connection off mid-body."""
    assert client.post("/api/v1/users", json={"email": "a@example.com"}).is_success  # audited
    for _ in range(10):  # the same statement, many times: PostgreSQL's generic plan
        assert 200 == client.get("/api/v1/audit/export", params={field: "x"}).status_code
    response = client.get("/api/v1/audit/export", params={field: "a\u0000b"})
    if database_url.startswith("sqlite"):
        assert 200 == response.status_code
    else:
        assert "NUL" in _refused(response, "character")
