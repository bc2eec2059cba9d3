"""Duplicate detection over REST and the CLI, on SQLite (the SQL vector index and the SQL pair
store): the seeded set of tests/unit/search/duplicates.py as one synced GitHub project; the
duplicate model confirming pairs through the server's own model gateway and the fake
provider."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from click.testing import CliRunner

from hub.errors import NotFoundError
from hub.records import Role
from hub.trackers.records import Tracker
from server.cli.main import cli
from server.hub_services import Hub
from server.model_gateway.fake_provider import FakeProvider
from tests.integration.conftest import (
    LiveServer,
    make_settings,
    run_live,
    serve_asgi,
)
from tests.integration.mcp.support import eventually
from tests.unit.search.duplicate_world import PROJECT, seeded_issue, tracker
from tests.unit.search.duplicates import DUPLICATES, ISSUES

PROVIDER_KEY = "sk-provider-secret-duplicates-0123456789"
KEY_VAR = "DUPLICATES_TEST_PROVIDER_KEY"
VERDICT = '{"decision": "DUPLICATE", "reason": "both report the same 500", "suggestion": "close"}'


async def seed(hub: Hub) -> Tracker:
    """The seeded issues as project acme/app of tracker gh in the default account."""
    assert hub.trackers is not None
    account = (await hub.identity.default_account()).id
    trk = msgspec.structs.replace(tracker(), account_id=account, poll_seconds=0)
    await hub.trackers.trackers.add(trk)
    for name, text in ISSUES.items():
        issue = msgspec.structs.replace(seeded_issue(name, text), account_id=account)
        await hub.trackers.issues.upsert(issue)
    return trk


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    """A real server on SQLite (not in memory) with the seeded project."""
    with run_live(make_settings(tmp_path), on_ready=seed) as server:
        yield server


@pytest.fixture
async def api(live: LiveServer) -> AsyncIterator[Rest]:
    async with httpx.AsyncClient(base_url=f"{live.url}/api/v1", timeout=30) as http:
        yield Rest(http, live.admin_key)


class Rest:
    def __init__(self, http: httpx.AsyncClient, admin_key: str) -> None:
        self.http = http
        self.admin_key = admin_key

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin_key}"}

    async def key(self, role: Role) -> str:
        created = await self.http.post(
            "/keys/", json={"name": f"a {role.value}", "role": role.value}, headers=self.auth()
        )
        assert 201 == created.status_code, created.text
        return str(created.json()["secret"])


def pair_names(answer: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        tuple(sorted((p["a"]["key"].split("#")[1], p["b"]["key"].split("#")[1])))  # type: ignore[misc]
        for p in answer["pairs"]
    }


async def test_the_project_scan_finds_the_seeded_duplicates_on_sqlite(api: Rest) -> None:
    viewer = api.auth(await api.key(Role.VIEWER))

    answer = await api.http.get(
        "/issues/duplicates", params={"project": PROJECT, "limit": 100}, headers=viewer
    )

    assert 200 == answer.status_code, answer.text
    body = answer.json()
    found = pair_names(body)
    assert 8 == len(found & DUPLICATES)  # precision 1.00, recall 0.89, as in memory
    assert found <= DUPLICATES
    assert ("local:hashing-v1@512", "exact", 0.45, 33) == (
        body["model"],
        body["engine"],
        body["threshold"],
        body["issues"],
    )
    # the scan embeds what the server's background indexer has not embedded yet
    assert 0 <= body["embedded"] <= 33
    again = (
        await api.http.get("/issues/duplicates", params={"project": PROJECT}, headers=viewer)
    ).json()
    assert 0 == again["embedded"]  # the scan kept the vectors it made
    (login,) = [p for p in body["pairs"] if p["a"]["id"] == "iss-login-1"]
    assert "acme/app#login-2" == login["b"]["key"]
    assert login["a"] == {
        "id": "iss-login-1",
        "key": "acme/app#login-1",
        "tracker": "gh",
        "project": PROJECT,
        "title": "Login fails with 500 error after password reset",
        "url": "https://github.com/acme/app/issues/login-1",
        "state": "open",
        "closed": False,
    }


async def test_one_issue_s_candidates_by_id_or_key(api: Rest) -> None:
    agent = api.auth(await api.key(Role.AGENT))

    by_id = await api.http.get("/issues/iss-export-1/duplicates", headers=agent)
    by_key = await api.http.get(
        "/issues/duplicates/candidates", params={"issue": "acme/app#export-1"}, headers=agent
    )

    assert 200 == by_id.status_code, by_id.text
    assert by_id.json() == by_key.json(), by_key.text
    body = by_id.json()
    assert ("acme/app#export-1", 1) == (body["issue"]["key"], body["count"])
    assert "acme/app#export-2" == body["candidates"][0]["issue"]["key"]
    assert body["candidates"][0]["score"] > 0.8
    missing = await api.http.get("/issues/iss-nope/duplicates", headers=agent)
    assert 404 == missing.status_code


async def test_resolving_a_pair_needs_a_decider_is_audited_and_hides_not_duplicates(
    api: Rest,
) -> None:
    viewer = api.auth(await api.key(Role.VIEWER))
    approver = api.auth(await api.key(Role.APPROVER))
    body = {"issue": "acme/app#perf-2", "other": "iss-perf-1", "resolution": "not_duplicate"}

    refused = await api.http.post("/issues/duplicates/resolve", json=body, headers=viewer)
    done = await api.http.post("/issues/duplicates/resolve", json=body, headers=approver)

    assert 403 == refused.status_code
    assert 200 == done.status_code, done.text
    resolved = done.json()
    assert ("acme/app#perf-1", "acme/app#perf-2", "not_duplicate", None) == (
        resolved["a"]["key"],
        resolved["b"]["key"],
        resolved["resolution"]["resolution"],
        resolved["resolution"]["canonical"],
    )
    candidates = (await api.http.get("/issues/iss-perf-1/duplicates", headers=viewer)).json()
    assert [] == candidates["candidates"]
    scan = (await api.http.get("/issues/duplicates", headers=viewer)).json()
    assert ("perf-1", "perf-2") not in pair_names(scan)
    params = {"kind": "issue.duplicate_resolved", "order": "oldest"}
    audited = (await api.http.get("/audit/", params=params, headers=api.auth())).json()
    assert [("not_duplicate", "acme/app#perf-2", "acme/app#perf-1")] == [
        (e["data"]["resolution"], e["data"]["issue"], e["data"]["other"]) for e in audited
    ]

    duplicate = {**body, "resolution": "duplicate", "canonical": "acme/app#perf-1"}
    marked = await api.http.post("/issues/duplicates/resolve", json=duplicate, headers=api.auth())
    assert 200 == marked.status_code, marked.text
    assert "acme/app#perf-1" == marked.json()["resolution"]["canonical"]
    (shown,) = (await api.http.get("/issues/iss-perf-1/duplicates", headers=viewer)).json()[
        "candidates"
    ]
    assert "duplicate" == shown["resolution"]["resolution"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"issue": "iss-perf-1", "other": "iss-perf-2", "resolution": "maybe"}, "resolution"),
        ({"issue": "iss-perf-1", "resolution": "duplicate"}, "other"),
        (
            {"issue": "iss-perf-1", "other": "iss-perf-2", "resolution": "duplicate", "x": 1},
            "x",
        ),
        (
            {
                "issue": "iss-perf-1",
                "other": "iss-perf-2",
                "resolution": "duplicate",
                "canonical": "iss-perf-3",
            },
            "canonical",
        ),
        ({"issue": "iss-perf-1", "other": "iss-perf-1", "resolution": "duplicate"}, "itself"),
    ],
)
async def test_bad_resolutions_are_refused_naming_the_field(
    api: Rest, body: dict[str, Any], field: str
) -> None:
    answer = await api.http.post("/issues/duplicates/resolve", json=body, headers=api.auth())

    assert 400 == answer.status_code, answer.text
    assert field in answer.text


@pytest.mark.parametrize(
    ("params", "field"),
    [({"threshold": "1.5"}, "threshold"), ({"limit": "0"}, "limit"), ({"confirm": "x"}, "confirm")],
)
async def test_bad_scan_parameters_are_refused_naming_them(
    api: Rest, params: dict[str, str], field: str
) -> None:
    answer = await api.http.get("/issues/duplicates", params=params, headers=api.auth())

    assert 400 == answer.status_code
    assert field in answer.text


async def test_confirm_without_a_duplicate_model_is_a_400_naming_the_setting(api: Rest) -> None:
    answer = await api.http.get(
        "/issues/duplicates", params={"confirm": "true"}, headers=api.auth()
    )

    assert 400 == answer.status_code
    assert "PRELOOP_SEARCH_DUPLICATE_MODEL" in answer.text


# --- the CLI against a live server, the model asked through the gateway ------------------------
@pytest.fixture
def provider() -> Iterator[tuple[FakeProvider, str]]:
    fake = FakeProvider(PROVIDER_KEY)
    fake.replies = {"gpt-fake": VERDICT}
    with serve_asgi(fake, "the fake provider", lifespan="off") as url:
        yield fake, url


@pytest.fixture
def server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: tuple[FakeProvider, str]
) -> Iterator[LiveServer]:
    monkeypatch.setenv(KEY_VAR, PROVIDER_KEY)
    settings = make_settings(
        tmp_path,
        PRELOOP_SECRETS_ENV_ALLOW=KEY_VAR,
        PRELOOP_SEARCH_DUPLICATE_MODEL="gpt-fake",
    )

    async def plug(hub: Hub) -> None:
        await seed(hub)

    with run_live(settings, on_ready=plug) as live:
        code, out, err = invoke(
            live,
            "providers",
            "add",
            "fake-openai",
            "--kind",
            "openai",
            "--base-url",
            f"{provider[1]}/v1",
            "--secret",
            f"env:{KEY_VAR}",
            "--model",
            "gpt-fake*",
        )
        assert 0 == code, out + err
        yield live


def invoke(server: LiveServer, *args: str) -> tuple[int, str, str]:
    argv = [*args, "--url", server.url, "--key", server.admin_key]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_lists_confirms_and_resolves_duplicates(
    server: LiveServer, provider: tuple[FakeProvider, str]
) -> None:
    fake, _ = provider
    code, out, err = invoke(server, "issues", "duplicates", "--project", PROJECT, "--limit", "3")
    assert (0, "") == (code, err)
    assert out.startswith("3 pairs at cosine >= 0.45 among 33 issues (model local:hashing-v1@512")
    assert "acme/app#login-1" in out

    code, out, _ = invoke(server, "issues", "duplicates", "--limit", "2", "--confirm", "--json")
    assert 0 == code
    confirmed = json.loads(out)
    assert ["DUPLICATE", "DUPLICATE"] == [
        p["verdict"]["classification"] for p in confirmed["pairs"]
    ]
    assert "both report the same 500" == confirmed["pairs"][0]["verdict"]["reason"]
    asked = [s for s in fake.seen if s.path == "/v1/chat/completions"]
    assert 2 == len(asked)
    code, _, _ = invoke(server, "issues", "duplicates", "--limit", "2", "--confirm")
    assert 0 == code
    assert 2 == len([s for s in fake.seen if s.path == "/v1/chat/completions"])  # cached

    code, out, err = invoke(
        server,
        "issues",
        "resolve-duplicate",
        "acme/app#login-2",
        "acme/app#login-1",
        "--as",
        "duplicate",
        "--canonical",
        "acme/app#login-1",
    )
    assert (0, "") == (code, err)
    assert (
        "acme/app#login-1 and acme/app#login-2: marked duplicate (acme/app#login-1 stays).\n" == out
    )
    with pytest.raises(NotFoundError, match="other: no synced issue is 'iss-nope'"):
        invoke(
            server,
            "issues",
            "resolve-duplicate",
            "iss-login-1",
            "iss-nope",
            "--as",
            "not-duplicate",
        )


async def test_confirmations_are_accounted_to_the_duplicates_principal(
    server: LiveServer, provider: tuple[FakeProvider, str]
) -> None:
    fake, _ = provider
    async with httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=30) as http:
        auth = {"Authorization": f"Bearer {server.admin_key}"}
        scan = await http.get(
            "/issues/duplicates", params={"limit": 1, "confirm": "true"}, headers=auth
        )
        assert 200 == scan.status_code, scan.text

        async def recorded() -> list[dict[str, Any]] | None:
            usage = await http.get(
                "/gateway/usage", params={"principal": "duplicates"}, headers=auth
            )
            events: list[dict[str, Any]] = usage.json()["events"]
            return events or None

        (event,) = await eventually(recorded)
    assert ("duplicates", "gpt-fake", "ok") == (
        event["api_key_id"],
        event["model"],
        event["outcome"],
    )
    (asked,) = [s for s in fake.seen if s.path == "/v1/chat/completions"]
    assert f"Bearer {PROVIDER_KEY}" == asked.headers["authorization"]
    assert "<<<TOOL_CALL_DATA" in asked.body["messages"][1]["content"]
