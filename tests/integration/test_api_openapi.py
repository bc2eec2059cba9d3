"""The OpenAPI document describes the API: every error response is the ``{"error": {...}}``
envelope the API answers, each operation lists the statuses it may answer, and request
bodies refuse unknown fields as the routes do. A schema-driven fuzz run (schemathesis) holds
the live server to the document."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from hub.model_gateway.runtime import MAX_TTL_SECONDS
from server.app import create_app
from tests.integration.conftest import LiveServer, make_settings, run_live

METHODS = ("get", "put", "post", "patch", "delete")
ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


@pytest.fixture
def document(tmp_path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = create_app(make_settings(tmp_path)).openapi_schema.to_schema()
    return schema


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def test_every_error_response_is_the_envelope_the_api_answers(document: dict[str, Any]) -> None:
    wrong = {
        f"{name} {status}": response.get("content")
        for name, operation in operations(document)
        for status, response in operation["responses"].items()
        if status >= "400"
        and response.get("content", {}).get("application/json", {}).get("schema") != ENVELOPE
    }
    assert {} == wrong


def test_each_operation_lists_the_statuses_its_shape_implies(document: dict[str, Any]) -> None:
    missing: dict[str, set[str]] = {}
    for name, operation in operations(document):
        expected = {"503"}
        if operation.get("security"):
            expected |= {"401", "403"}
        if "requestBody" in operation:
            expected |= {"400", "413"}
        if operation.get("parameters"):
            expected.add("400")
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            expected.add("404")
        if gaps := expected - set(operation["responses"]):
            missing[name] = gaps
    assert {} == missing


def test_declared_errors_are_listed(document: dict[str, Any]) -> None:
    statuses = {
        name: set(operation["responses"]) for name, operation in operations(document)
    }  # a few the routes declare beyond their shape
    assert {"409", "422"} <= statuses["POST /api/v1/policies/apply"]
    assert "404" in statuses["GET /api/v1/policies/export"]
    assert "409" in statuses["POST /api/v1/users"]
    assert "409" in statuses["POST /api/v1/approvals/{request_id}/approve"]
    assert "401" in statuses["POST /api/v1/devices/pair"]
    assert "401" not in statuses["GET /healthz"]


def test_the_policy_routes_say_their_413_is_also_a_policy_over_its_size_limit(
    document: dict[str, Any],
) -> None:
    """validate, diff and apply answer 413 PolicyTooLargeError for a policy far below the
    body limit: the document must not say only that the body is over the server's limit."""
    described = {
        name: op["responses"]["413"]["description"]
        for name, op in operations(document)
        if "413" in op["responses"]
    }
    for route in ("validate", "diff", "apply"):
        assert "PolicyTooLargeError" in described[f"POST /api/v1/policies/{route}"]
    assert "PolicyTooLargeError" not in described["POST /api/v1/users"]


def test_request_bodies_refuse_unknown_fields(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    def resolved(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        return schemas[ref.rsplit("/", 1)[1]] if ref else schema

    open_bodies = {
        f"{name} {media}": body["schema"]
        for name, operation in operations(document)
        if "requestBody" in operation
        for media, body in operation["requestBody"]["content"].items()
        if resolved(body["schema"]).get("additionalProperties") is not False
    }
    assert {} == open_bodies
    # the login reads JSON and the OAuth2 form, and the document says both
    login = document["paths"]["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} == set(login)


def test_an_answered_error_matches_the_documented_envelope(
    document: dict[str, Any], live_server: LiveServer
) -> None:
    auth = {"Authorization": f"Bearer {live_server.admin_key}"}
    answers = [
        httpx.get(f"{live_server.url}/api/v1/approvals/nope", headers=auth),
        httpx.post(f"{live_server.url}/api/v1/keys", json={"name": 1}, headers=auth),
        httpx.get(f"{live_server.url}/api/v1/keys"),
        httpx.post(
            f"{live_server.url}/api/v1/policies/apply", json={"source": "a: ["}, headers=auth
        ),
    ]
    schema = {"$ref": "#/components/schemas/ErrorEnvelope", "components": document["components"]}
    for answer in answers:
        operation = answer.request.method.lower()
        assert answer.status_code >= 400
        jsonschema.validate(answer.json(), schema)
        assert operation  # the status is documented for the operation:
        path = answer.request.url.path.replace("/nope", "/{request_id}")
        assert str(answer.status_code) in document["paths"][path][operation]["responses"]


# The fuzz run's configuration. Valid data must be accepted: 2xx, or 401/403/404/409 (a
# credential, a missing thing, a collision), or 422 (a policy's YAML, which no schema can
# check). Rules across fields, and a value whose validity a pattern cannot state, are the
# routes' own 400s, listed per operation with the reason.
SCHEMATHESIS_TOML = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
# scope and scope_id, limits and on_soft go together; the workflow must be in the policy
include-path = "/api/v1/budgets"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "409"]

[[operations]]
# a project's syntax depends on the kind (owner/repo, group/project, KEY), plain http only for
# a loopback host, username only for Jira, poll_seconds 1-59 refused: rules across fields
include-path = "/api/v1/trackers"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "409"]

[[operations]]
# scope and subject go together: the account scope takes none, a flow or a key needs one
include-path = "/api/v1/gateway/capture"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404"]

[[operations]]
# organization without project names no project
include-path = "/api/v1/issues/search"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404"]

[[operations]]
# failed logins are limited per username and address: the fuzzer's logins trip the limit
include-name = "POST /api/v1/auth/token"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "429"]

[[operations]]
# the cursor is a previous page's next_before: a pattern cannot say its date is a real one
include-path-regex = "^/api/v1/(gateway/usage|flows/executions/[^/]+/gateway-events)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404"]
"""
FUZZ_CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "positive_data_acceptance",
    ]
)
# Not fuzzed: registering a server starts its command or connects to its URL (random ones
# here); revoking keys could revoke the run's own key; testing, syncing and creating issues
# call the tracker's API (tests/integration/test_api_trackers.py drives them).
NOT_FUZZED = (
    "^/api/v1/(servers|keys/[^/]+/revoke$|trackers/[^/]+/(test|sync)$"
    "|projects/test-connection$|issues$)"
)


def test_the_live_server_holds_to_its_document_under_fuzzing(tmp_path: Path) -> None:
    """schemathesis generates requests from the document (its examples, the boundaries of
    every constraint, then random valid data), deterministically, and checks each answer:
    no 5xx, a documented status, a body and headers as documented, valid input accepted."""
    max_ttl = str(MAX_TTL_SECONDS)  # the document's bound; the server's setting may be lower
    settings = make_settings(tmp_path, PRELOOP_SECRETS_RUNTIME_TOKEN_MAX_SECONDS=max_ttl)
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_TOML)
    with run_live(settings) as server:
        command = [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {server.admin_key}",
            "--checks",
            FUZZ_CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "5",
            "--generation-deterministic",
            "--workers",
            "1",
            "--no-color",
            "--exclude-path-regex",
            NOT_FUZZED,
        ]
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"}
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=tmp_path, env=env, check=False
        )
    assert 0 == done.returncode, done.stdout[-20000:] + done.stderr[-5000:]
