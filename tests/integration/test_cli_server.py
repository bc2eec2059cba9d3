"""The client CLI commands against a real server on 127.0.0.1 (uvicorn, SQLite)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.errors import PolicyError, PreloopError
from server.cli.main import cli
from tests.integration.conftest import LiveServer

POLICIES = Path(__file__).parents[2] / "policies"


def invoke(server: LiveServer, *args: str, key: str | None = None) -> tuple[int, str, str]:
    argv = [*args, "--url", server.url, "--key", key or server.admin_key]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_policy_lifecycle(live_server: LiveServer, tmp_path: Path) -> None:
    coding = str(POLICIES / "coding-agent.yaml")
    code, out, _ = invoke(live_server, "policy", "apply", coding, "--dry-run")
    assert code == 0
    assert "Dry run" in out
    code, out, _ = invoke(live_server, "policy", "diff", coding)
    assert code == 1  # differs, like diff(1)
    assert out.startswith("---")
    code, out, _ = invoke(live_server, "policy", "apply", coding, "--comment", "coding")
    assert code == 0
    assert "as version 2" in out
    code, out, _ = invoke(live_server, "policy", "apply", coding)
    assert "No changes" in out
    code, out, _ = invoke(live_server, "policy", "diff", coding)
    assert (code, out.strip()) == (0, "No differences.")

    exported = tmp_path / "exported.yaml"
    code, _, _ = invoke(live_server, "policy", "export", "-o", str(exported))
    assert code == 0
    code, out, _ = invoke(live_server, "policy", "apply", str(exported))
    assert "No changes" in out
    code, again, _ = invoke(live_server, "policy", "export")
    assert again == exported.read_text()

    code, out, _ = invoke(live_server, "policy", "history", "--json")
    history = json.loads(out)
    assert [v["version"] for v in history] == [2, 1]
    assert history[0]["comment"] == "coding"
    code, out, _ = invoke(live_server, "policy", "rollback", "1")
    assert code == 0
    assert "now version 3" in out
    code, out, _ = invoke(live_server, "policy", "export", "--version", "1")
    _code3, out3, _ = invoke(live_server, "policy", "export")
    assert out == out3


def test_apply_invalid_policy_lists_problems(live_server: LiveServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('version: "1.0"\nmetadata: {name: x}\ntools:\n  - name: a\n    shape: 1\n')
    with pytest.raises(PolicyError) as info:
        invoke(live_server, "policy", "apply", str(bad))
    assert any("shape" in problem.render() for problem in info.value.problems)
    _code, out, _ = invoke(live_server, "policy", "history", "--json")
    assert len(json.loads(out)) == 1


def test_keys_users_teams(live_server: LiveServer) -> None:
    code, out, _ = invoke(
        live_server,
        "keys",
        "create",
        "--name",
        "laptop",
        "--role",
        "viewer",
        "--label",
        "team=infra",
        "--json",
    )
    assert code == 0
    created = json.loads(out)
    secret = created["secret"]
    code, out, _ = invoke(live_server, "keys", "list")
    assert "laptop" in out
    assert secret not in out
    code, out, _ = invoke(live_server, "policy", "history", key=secret)
    assert code == 0
    code, out, _ = invoke(live_server, "keys", "revoke", created["key"]["id"])
    assert "Revoked" in out
    code, out, _ = invoke(
        live_server,
        "keys",
        "create",
        "--name",
        "gh-agent",
        "--role",
        "agent",
        "--tool",
        "github__*",
        "--tool",
        "db__query",
    )
    assert code == 0
    assert "tools: github__*, db__query" in out
    code, out, _ = invoke(live_server, "keys", "list")
    assert "github__*, db__query" in out
    code, out, _ = invoke(live_server, "keys", "list", "--json")
    assert {"laptop": [], "gh-agent": ["github__*", "db__query"]}.items() <= {
        k["name"]: k["tools"] for k in json.loads(out)
    }.items()

    code, out, _ = invoke(live_server, "users", "add", "ana@example.com", "--name", "Ana")
    assert code == 0
    code, out, _ = invoke(live_server, "teams", "add", "oncall", "--member", "ana@example.com")
    assert "1 member" in out
    code, out, _ = invoke(live_server, "teams", "list", "--json")
    assert json.loads(out)[0]["members"] == ["ana@example.com"]
    code, out, _ = invoke(live_server, "users", "list")
    assert "ana@example.com" in out


def test_users_link_identities_by_email_or_id(live_server: LiveServer) -> None:
    _code, out, _ = invoke(live_server, "users", "add", "cy@example.com", "--json")
    user_id = json.loads(out)["id"]
    code, out, _ = invoke(
        live_server, "users", "link", "CY@example.com", "--slack", "U123", "--mattermost", "abc"
    )
    assert code == 0
    assert "mattermost=abc, slack=U123" in out
    code, out, _ = invoke(
        live_server, "users", "link", user_id, "--email", "cy@home.example", "--slack", ""
    )
    assert code == 0
    _code, out, _ = invoke(live_server, "users", "list")
    assert "email=cy@home.example, mattermost=abc" in out
    _code, out, _ = invoke(live_server, "users", "list", "--json")
    assert {"email": "cy@home.example", "mattermost": "abc"} == json.loads(out)[0]["identities"]
    with pytest.raises(PreloopError, match=r"no user 'nobody@example\.com'"):
        invoke(live_server, "users", "link", "nobody@example.com", "--slack", "U1")
    with pytest.raises(PreloopError, match="not an email address"):
        invoke(live_server, "users", "link", "cy@example.com", "--email", "nope")


def test_audit_list_export_verify_and_tamper(live_server: LiveServer, tmp_path: Path) -> None:
    invoke(live_server, "users", "add", "bo@example.com")
    code, out, _ = invoke(live_server, "audit", "list", "--kind", "user.")
    assert "user.added" in out
    target = tmp_path / "audit.jsonl"
    code, _, _err = invoke(live_server, "audit", "export", "--format", "jsonl", "-o", str(target))
    assert code == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(lines) >= 3
    code, out, _ = invoke(live_server, "audit", "verify")
    assert code == 0
    assert "intact" in out

    database = live_server.settings.data_path / "preloop.db"
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    code, out, _ = invoke(live_server, "audit", "verify")
    assert code == 1
    assert "event 2" in out
    assert "edited" in out


def test_login_saves_a_profile(live_server: LiveServer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["login", live_server.url, "--key", live_server.admin_key], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert "role admin" in result.stdout
    result = CliRunner().invoke(cli, ["policy", "history"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "example" in result.stdout.lower() or "1" in result.stdout
    profile = Path(tmp_path / "config" / "preloop" / "profiles.json")
    assert profile.stat().st_mode & 0o777 == 0o600


def test_unreachable_server_is_a_clear_error() -> None:
    from hub.errors import PreloopError

    runner = CliRunner()
    result = runner.invoke(cli, ["keys", "list", "--url", "http://127.0.0.1:9", "--key", "x"])
    assert result.exit_code != 0
    assert isinstance(result.exception, PreloopError)
    assert "cannot reach the Preloop server" in str(result.exception)


def test_users_passwd_prompts_or_reads_stdin_and_the_token_is_a_cli_bearer(
    live_server: LiveServer,
) -> None:
    import asyncio

    from hub.api_client import ApiClient
    from hub.errors import AuthenticationError, RateLimitedError

    invoke(live_server, "users", "add", "pat@example.com")
    target = ["--url", live_server.url, "--key", live_server.admin_key]
    argv = ["users", "passwd", "pat@example.com", "--role", "viewer", *target]
    prompted = CliRunner().invoke(
        cli, argv, input="correct horse battery\ncorrect horse battery\n", catch_exceptions=False
    )
    assert prompted.exit_code == 0, prompted.output
    assert "correct horse" not in prompted.output  # no echo
    assert "role viewer" in prompted.output
    piped = CliRunner().invoke(
        cli,
        ["users", "passwd", "pat@example.com", "--password-stdin", "--json", *target],
        input="another long password\n",
        catch_exceptions=False,
    )
    assert piped.exit_code == 0, piped.output
    assert "viewer" == json.loads(piped.stdout)["role"]  # kept

    async def session() -> str:
        async with ApiClient(live_server.url, "") as anonymous:
            with pytest.raises(AuthenticationError, match="invalid username or password"):
                await anonymous.login("pat@example.com", "correct horse battery")
            issued = await anonymous.login("pat@example.com", "another long password")
        async with ApiClient(live_server.url, issued.access_token) as client:
            assert "viewer" == (await client.whoami()).role
            await client.logout()
            with pytest.raises(AuthenticationError, match="revoked"):
                await client.whoami()
        async with ApiClient(live_server.url, "") as anonymous:
            for _ in range(5):
                with pytest.raises(AuthenticationError):
                    await anonymous.login("pat@example.com", "wrong password")
            with pytest.raises(RateLimitedError) as limited:
                await anonymous.login("pat@example.com", "another long password")
        assert 250 < limited.value.retry_after <= 300  # from the Retry-After header
        return issued.access_token

    token = asyncio.run(session())
    with pytest.raises(AuthenticationError, match="revoked"):
        invoke(live_server, "users", "list", key=token)  # the CLI's bearer
    short = CliRunner().invoke(
        cli,
        ["users", "passwd", "pat@example.com", "--password-stdin", *target],
        input="short\n",
    )
    assert short.exit_code != 0
    assert "at least 12 characters" in short.output + str(short.exception)
