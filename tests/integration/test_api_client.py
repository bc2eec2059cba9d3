"""The one API client (``hub.api_client``) against a live server: every error status arrives
as the core's error class, on the CLI and the dashboard alike, and the wire types
(``hub.wire``) decode what the API answers without losing a field."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from hub import wire
from hub.api_client import ApiClient, error_from_answer, http_note
from hub.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PolicyError,
    PolicyTooLargeError,
    PreloopError,
    StorageError,
    ValidationError,
)
from tests.integration.conftest import LiveServer
from tests.unit.policy.policy_helpers import billion_laughs

POLICY = (Path(__file__).parents[2] / "policies" / "coding-agent.yaml").read_text()


async def _raised(call: Awaitable[Any]) -> PreloopError:
    with pytest.raises(PreloopError) as raised:
        await call
    return raised.value


async def test_each_error_status_arrives_as_the_core_error_class(live_server: LiveServer) -> None:
    async with ApiClient(live_server.url, live_server.admin_key) as admin:
        viewer_key = (await admin.create_key({"name": "viewer", "role": "viewer"})).secret
        await admin.add_user("ada@example.com", "Ada")
        async with (
            ApiClient(live_server.url, "pl_not_a_key") as stranger,
            ApiClient(live_server.url, viewer_key) as viewer,
        ):
            errors: dict[type[PreloopError], Callable[[], Awaitable[Any]]] = {
                AuthenticationError: stranger.whoami,  # 401
                PermissionDeniedError: viewer.keys,  # 403
                NotFoundError: lambda: admin.approval("nope"),  # 404
                ConflictError: lambda: admin.add_user("ada@example.com"),  # 409
                ValidationError: lambda: admin.audit_page({"since": "not a time"}),  # 400
                PolicyError: lambda: admin.apply_policy("a: ["),  # 422
                PolicyTooLargeError: lambda: admin.apply_policy(billion_laughs()),  # 413
                PayloadTooLargeError: lambda: admin.add_user("x" * 3_000_000),  # 413, the body
            }
            for expected, call in errors.items():
                error = await _raised(call())
                assert expected is type(error), (expected, error)
                assert http_note(error).startswith("(HTTP 4"), error
        invalid = await _raised(admin.apply_policy("a: ["))
    assert isinstance(invalid, PolicyError)
    assert invalid.problems  # an invalid policy comes with its problems


async def test_a_policy_over_the_size_limit_is_a_problem_of_the_draft(
    live_server: LiveServer,
) -> None:
    """validate answers 413 PolicyTooLargeError; to a caller checking a draft it is a
    problem like any other (the dashboard lists it under the editor)."""
    async with ApiClient(live_server.url, live_server.admin_key) as client:
        checked = await client.validate_policy(billion_laughs(), "bomb.yaml")
    assert not checked.valid
    assert ["bomb.yaml"] == [p.file for p in checked.problems]


async def test_an_unreachable_server_is_a_preloop_error_naming_the_url() -> None:
    async with ApiClient("http://127.0.0.1:9", "pl_x") as client:  # the discard port
        error = await _raised(client.pending())
    assert "Server unreachable" == error.title
    assert "cannot reach the Preloop server at http://127.0.0.1:9" in error.message


def test_an_answer_without_the_envelope_falls_back_on_its_status() -> None:
    assert isinstance(error_from_answer(404, b"<html>gone</html>"), NotFoundError)
    assert isinstance(error_from_answer(503, b""), StorageError)
    plain = error_from_answer(502, b"Bad gateway")
    assert (PreloopError, "HTTP 502: Bad gateway") == (type(plain), plain.message)
    envelope = {"error": {"type": "PermissionDeniedError", "message": "viewers may not decide"}}
    error = error_from_answer(403, msgspec.json.encode(envelope))
    assert isinstance(error, PermissionDeniedError)
    assert ("viewers may not decide", "(HTTP 403, PermissionDeniedError)") == (
        error.message,
        http_note(error),
    )
    unknown = {"error": {"type": "InternalError", "title": "Internal error", "message": "boom"}}
    internal = error_from_answer(500, msgspec.json.encode(unknown))
    assert (PreloopError, "Internal error") == (type(internal), internal.title)


def assert_round_trip(answer: httpx.Response, shape: Any) -> None:
    """Decoded into ``shape`` and encoded again, the answer is what the server sent."""
    assert 200 == answer.status_code, (answer.request.url, answer.text)
    decoded = msgspec.json.decode(answer.content, type=shape)
    assert answer.json() == msgspec.json.decode(msgspec.json.encode(decoded)), answer.request.url
    if isinstance(answer.json(), list):
        assert answer.json(), f"{answer.request.url}: nothing to compare"


# What each route answers, decoded into its wire type and encoded again, is what it answered.
ROUND_TRIPS: list[tuple[str, Any]] = [
    ("/api/v1/whoami", wire.Whoami),
    ("/api/v1/audit/", list[wire.AuditEventView]),
    ("/api/v1/audit/verify", wire.ChainReportView),
    ("/api/v1/keys/", list[wire.KeyView]),
    ("/api/v1/users/", list[wire.UserView]),
    ("/api/v1/teams/", list[wire.TeamView]),
    ("/api/v1/devices/", list[wire.DeviceView]),
    ("/api/v1/policies/export", wire.PolicyExport),
    ("/api/v1/policies/versions", list[wire.PolicyVersionSummary]),
    ("/api/v1/providers/", list[wire.ProviderView]),
    ("/api/v1/secrets/", list[wire.SecretView]),
    ("/api/v1/budgets/", list[wire.BudgetView]),
    ("/api/v1/gateway/prices", wire.PriceList),
    ("/api/v1/gateway/usage/summary", wire.UsageSummary),
]


async def test_the_wire_types_round_trip_what_the_api_answers(live_server: LiveServer) -> None:
    async with ApiClient(live_server.url, live_server.admin_key) as client:
        await client.apply_policy(POLICY, "first")
        await client.add_user("ada@example.com", "Ada")
        await client.add_team("oncall", ["ada@example.com"])
        await client.link_user("ada@example.com", {"slack": "U123"})
        await client.add_budget({"name": "daily", "hard_limit": "10"})
        pairing = await client.start_pairing("ada@example.com")
        provider = {
            "name": "openai",
            "kind": "openai",
            "base_url": "https://api.openai.com/v1",
            "secret_ref": "env:OPENAI_API_KEY",
        }
        await client.add_provider(provider)
        await client.set_secret("anthropic", "sk-ant-test")
    auth = {"Authorization": f"Bearer {live_server.admin_key}"}
    async with httpx.AsyncClient(base_url=live_server.url, headers=auth, timeout=30) as http:
        pair = {"token": pairing.token, "name": "phone", "platform": "ios"}
        assert 201 == (await http.post("/api/v1/devices/pair", json=pair)).status_code
        for path, shape in ROUND_TRIPS:
            assert_round_trip(await http.get(path), shape)
