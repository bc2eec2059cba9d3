"""Compliance end to end on the real server (uvicorn, SQLite), with the real GitHub adapter
against the GitHub fake: ``GET /api/v1/issues/{issue}/compliance``, ``preloop issues
compliance`` and the ``estimate_compliance`` tool over /mcp; scored by rules, then by a model
through the server's own gateway (the fake provider), with the cache and the fallback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner

from hub.errors import NotFoundError
from hub.settings import Settings
from hub.trackers.records import Tracker, TrackerKind
from hub.trackers.sync import Syncer
from server.cli.main import cli
from server.hub_services import Hub
from server.model_gateway.fake_provider import FakeProvider
from tests.integration.conftest import LiveServer, make_settings, run_live, serve_asgi
from tests.integration.fakes.github import TOKEN, FakeGitHub
from tests.integration.mcp.support import agent, agent_key, eventually, raw_call

READY = (
    "Users cannot reset their password because the reset link expires after one minute. "
    "The goal is a link valid for an hour so that people on slow mail still get in.\n\n"
    "## Acceptance criteria\n- [ ] the link works for 60 minutes\n- [ ] expired links say so"
)
PROVIDER_KEY = "sk-provider-secret-compliance-0123456789"
KEY_VAR = "COMPLIANCE_TEST_PROVIDER_KEY"
ANSWER = {
    "compliance_factor": 0.4,
    "reason": "No acceptance criteria.",
    "suggestion": "Add them.",
    "annotated_description": [
        {"text": "", "label": "acceptance", "status": "fail", "comment": "none given"}
    ],
}
POLICY = """\
version: "1.0"
metadata: {name: compliance test}
defaults: {action: deny, unknown_tools: deny}
tools:
  - {name: estimate_compliance, source: builtin, action: allow}
"""


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    fake.add_repo("acme/app")
    fake.add_issue("acme/app", "Password reset links expire too soon", READY, labels=("bug",))
    fake.add_issue("acme/app", "fix", "It breaks.")
    with serve_asgi(fake, "the fake GitHub", lifespan="off") as url:
        yield fake, url


@pytest.fixture
def provider() -> Iterator[tuple[FakeProvider, str]]:
    fake = FakeProvider(PROVIDER_KEY)
    fake.replies = {"gpt-fake": json.dumps(ANSWER)}
    with serve_asgi(fake, "the fake provider", lifespan="off") as url:
        yield fake, url


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv(KEY_VAR, PROVIDER_KEY)
    return make_settings(
        tmp_path,
        PRELOOP_POLICY_FILE=str(policy),
        PRELOOP_SECRETS_ENV_ALLOW=f"GITHUB_TOKEN,{KEY_VAR}",
        **env,
    )


def _live(settings: Settings, github_url: str) -> Any:
    async def connect(hub: Hub) -> None:
        assert hub.trackers is not None
        assert hub.tracker_clients is not None
        account = await hub.identity.default_account()
        now = datetime.now(UTC)
        tracker = Tracker(
            id="trk_gh",
            account_id=account.id,
            name="gh",
            kind=TrackerKind.GITHUB,
            base_url=github_url,
            token_ref="env:GITHUB_TOKEN",
            projects=("acme/app",),
            created_at=now,
            updated_at=now,
        )
        await hub.trackers.trackers.add(tracker)
        report = await Syncer(hub.trackers, hub.tracker_clients, hub.clock).scan(tracker)
        assert (report.issues, report.errors) == (2, [])

    return run_live(settings, on_ready=connect)


@pytest.fixture
def rules_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: tuple[FakeGitHub, str]
) -> Iterator[LiveServer]:
    with _live(_settings(tmp_path, monkeypatch), github[1]) as live:
        yield live


@pytest.fixture
def model_server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    github: tuple[FakeGitHub, str],
    provider: tuple[FakeProvider, str],
) -> Iterator[LiveServer]:
    settings = _settings(tmp_path, monkeypatch, PRELOOP_SEARCH_COMPLIANCE_MODEL="gpt-fake")
    with _live(settings, github[1]) as live:
        with httpx.Client(
            base_url=f"{live.url}/api/v1",
            headers={"Authorization": f"Bearer {live.admin_key}"},
            timeout=30,
        ) as api:
            added = api.post(
                "/providers/",
                json={
                    "name": "fake-openai",
                    "kind": "openai",
                    "base_url": f"{provider[1]}/v1",
                    "secret_ref": f"env:{KEY_VAR}",
                    "models": ["gpt-fake*"],
                },
            )
            assert added.status_code == 201, added.text
        yield live


def _get(live: LiveServer, issue: str, key: str | None = None, **params: str) -> httpx.Response:
    """The path form for an id or a key without ``/``, the query form for the others."""
    if "/" in issue:
        path, params = "/api/v1/issues/compliance", {"issue": issue, **params}
    else:
        path = f"/api/v1/issues/{quote(issue, safe='')}/compliance"
    with httpx.Client(base_url=live.url, timeout=30) as http:
        return http.get(
            path, params=params, headers={"Authorization": f"Bearer {key or live.admin_key}"}
        )


def invoke(live: LiveServer, *args: str) -> tuple[int, str]:
    argv = ["issues", "compliance", *args, "--url", live.url, "--key", live.admin_key]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    return result.exit_code, result.stdout


async def test_rules_over_rest_for_every_metric_by_key_and_by_id(rules_server: LiveServer) -> None:
    agent_reads = await agent_key(rules_server)  # agents read issues; so do people
    ready = _get(rules_server, "acme/app#1", agent_reads)
    assert 200 == ready.status_code, ready.text
    body = ready.json()
    assert ("acme/app#1", "DoR", "rules", False, 1.0) == (
        body["issue"],
        body["metric"],
        body["engine"],
        body["cached"],
        body["compliance_factor"],
    )
    by_id = _get(rules_server, body["issue_id"], metric="Risk", improve="true").json()
    assert ("Risk", body["issue_id"]) == (by_id["metric"], by_id["issue_id"])
    assert "## Rollback plan" in by_id["improved_description"]
    invest = _get(rules_server, "acme/app#2", metric="INVEST").json()
    assert 0.57 == invest["compliance_factor"]  # 4 of 7: nothing wrong, little right
    failed = {name for name, ok in invest["checks"].items() if not ok}
    assert {"valuable", "estimable", "testable"} == failed


async def test_bad_requests_name_the_field_and_unknown_issues_are_404(
    rules_server: LiveServer,
) -> None:
    bad = _get(rules_server, "acme/app#1", metric="DoD")
    assert 400 == bad.status_code
    assert "metric" in bad.text
    flag = _get(rules_server, "acme/app#1", improve="maybe")
    assert 400 == flag.status_code
    assert "improve" in flag.text
    missing = _get(rules_server, "nothing-here")
    assert 404 == missing.status_code
    assert "not an issue Preloop knows" in missing.json()["error"]["message"]
    nobody = _get(rules_server, "acme/app#1", "plk_not_a_key")
    assert 401 == nobody.status_code


async def test_the_cli_scores_several_issues_and_prints_json(rules_server: LiveServer) -> None:
    code, out = invoke(rules_server, "acme/app#1", "acme/app#2")
    assert 0 == code
    assert out.startswith("acme/app#1  DoR 1.00  (rules)  Password reset links expire too soon")
    assert "acme/app#2  DoR 0.00  (rules)  fix" in out
    assert "  - acceptance_criteria: there are no acceptance criteria." in out
    code, out = invoke(rules_server, "acme/app#2", "--metric", "Risk", "--improve", "--json")
    [report] = json.loads(out)
    assert ("Risk", "rules") == (report["metric"], report["engine"])
    assert report["improved_description"].startswith("It breaks.")
    with pytest.raises(NotFoundError, match="not an issue Preloop knows"):
        invoke(rules_server, "nothing-here")


async def test_a_model_scores_through_the_gateway_cached_until_the_issue_changes(
    model_server: LiveServer,
    provider: tuple[FakeProvider, str],
    github: tuple[FakeGitHub, str],
) -> None:
    fake, _ = provider
    asked = lambda: [s for s in fake.seen if s.path == "/v1/chat/completions"]  # noqa: E731

    first = _get(model_server, "acme/app#1").json()
    again = _get(model_server, "acme/app#1").json()
    assert ("model:gpt-fake", False, 0.4) == (
        first["engine"],
        first["cached"],
        first["compliance_factor"],
    )
    assert (True, first["reason"]) == (again["cached"], again["reason"])
    assert 1 == len(asked())

    github[0].touch("acme/app", 1, body=READY + "\n\nAlso on mobile.")
    scan = ["sync", "scan", "gh", "--url", model_server.url, "--key", model_server.admin_key]
    assert 0 == CliRunner().invoke(cli, scan, catch_exceptions=False).exit_code
    edited = _get(model_server, "acme/app#1").json()
    assert (False, 2) == (edited["cached"], len(asked()))

    fake.replies["gpt-fake"] = "I think it is fine."
    fell_back = _get(model_server, "acme/app#1", metric="INVEST").json()
    assert ("rules", True) == (fell_back["engine"], "fallback_reason" in fell_back)
    code, out = invoke(model_server, "acme/app#1", "--metric", "INVEST")
    assert 0 == code
    assert "fallback:    the model's answer was not used (ModelAnswerError" in out

    async with agent(model_server, await agent_key(model_server), "auto") as client:
        result = await raw_call(
            client, "estimate_compliance", {"issues": ["acme/app#1"], "compliance_metric": "DoR"}
        )
    structured = result["structuredContent"]
    assert ("model:gpt-fake", "DoR") == (structured["engine"], structured["compliance_metric"])
    assert [True] == [r["cached"] for r in structured["results"]]

    async def recorded() -> list[Any] | None:
        async with httpx.AsyncClient(base_url=model_server.url, timeout=30) as http:
            answer = await http.get(
                "/api/v1/gateway/usage",
                params={"principal": "compliance"},
                headers={"Authorization": f"Bearer {model_server.admin_key}"},
            )
        events: list[Any] = answer.json()["events"]
        return events if len(events) >= 3 else None

    events = await eventually(recorded)
    assert {("compliance", "gpt-fake")} == {(e["api_key_id"], e["model"]) for e in events}


async def test_a_bad_catalogue_stops_the_start_naming_file_and_field(tmp_path: Path) -> None:
    from hub.compliance.catalogue import PACKAGED
    from hub.errors import ConfigError
    from server.bootstrap import open_hub

    mine = tmp_path / "mine.yaml"
    mine.write_text(PACKAGED.read_text().replace("min: 20", "min: 50", 1))
    hub = await open_hub(make_settings(tmp_path, PRELOOP_SEARCH_COMPLIANCE_CATALOGUE=str(mine)))
    try:
        assert hub.compliance is not None
        assert str(mine) == hub.compliance.catalogue.source
        assert "rules" == hub.compliance.engine
    finally:
        await hub.close()

    mine.write_text(PACKAGED.read_text() + "oops: 1\n")
    with pytest.raises(ConfigError, match=f"compliance catalogue {mine}: .*unknown field `oops`"):
        await open_hub(make_settings(tmp_path, PRELOOP_SEARCH_COMPLIANCE_CATALOGUE=str(mine)))
