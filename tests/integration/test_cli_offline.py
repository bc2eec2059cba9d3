"""The offline CLI commands: validate, eval, test; --help, --version, config show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli.main import cli

POLICIES = Path(__file__).parents[2] / "policies"
EXAMPLE = str(POLICIES / "production-safeguards.yaml")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def run_main(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed entry point's code path (errors rendered by server.cli.output.run)."""
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=120,
    )


HEAVY = ("litestar", "sqlalchemy", "celpy", "httpx", "uvicorn", "yaml", "alembic")


@pytest.mark.parametrize("argv", [["--help"], ["policy", "--help"], ["keys", "--help"]])
def test_help_does_not_import_heavy_modules(argv: list[str]) -> None:
    probe = (
        "import sys; from server.cli.main import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "Usage: preloop" in out
    assert "HEAVY []" in out


def test_help_lists_every_command() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    for command in (
        "serve",
        "policy",
        "keys",
        "users",
        "teams",
        "audit",
        "db",
        "config",
        "login",
        "bench",
    ):
        assert f"  {command}" in out


def test_version() -> None:
    code, out, _ = invoke("--version")
    assert code == 0
    assert out.startswith("preloop, version ")


def test_every_subcommand_has_help() -> None:
    for group in ("policy", "keys", "users", "teams", "audit", "db", "config", "bench"):
        code, out, _ = invoke(group, "--help")
        assert code == 0, group
        assert "Usage: " in out


def test_validate_valid_and_invalid(tmp_path: Path) -> None:
    code, out, _ = invoke("policy", "validate", EXAMPLE)
    assert code == 0
    assert "valid" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        'version: "1.0"\nmetadata:\n  name: x\ntools:\n  - name: a\n'
        "    colour: red\n  - name: b\n    conditions:\n"
        '      - expression: "args.x =="\n        action: allow\n'
    )
    result = run_main("policy", "validate", EXAMPLE, str(bad))
    assert result.returncode == 1
    assert f"{bad}:6" in result.stderr  # the unknown key, with its line
    assert f"{bad}:9" in result.stderr  # the CEL error, with its line
    assert "colour" in result.stderr


def test_validate_json(tmp_path: Path) -> None:
    code, out, _ = invoke("policy", "validate", "--json", EXAMPLE)
    assert code == 0
    assert json.loads(out)[0]["valid"] is True


def test_eval_explains_the_decision() -> None:
    code, out, _ = invoke(
        "policy",
        "eval",
        EXAMPLE,
        "--tool",
        "bash",
        "--args",
        '{"command": "deploy to production"}',
        "--justification",
        "release",
    )
    assert code == 0
    assert "decision:    require_approval" in out
    assert "workflow:    deploy-approval" in out
    code, out, _ = invoke(
        "policy",
        "eval",
        EXAMPLE,
        "--tool",
        "bash",
        "--args",
        '{"command": "ls -la"}',
        "--justification",
        "look",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["action"] == "allow"


def test_eval_bad_json_is_a_clear_error() -> None:
    result = run_main("policy", "eval", EXAMPLE, "--tool", "bash", "--args", "{nope")
    assert result.returncode == 1
    assert "--args is not valid JSON" in result.stderr


SERVER_TOOLS = """version: "1.0"
metadata:
  name: server-tools
mcp_servers:
  - {name: everything, transport: stdio, command: npx}
  - {name: other, transport: stdio, command: npx}
tools:
  - name: echo
    server: everything
    conditions:
      - {expression: "args.message == 'secret'", action: deny}
  - {name: echo, server: other, action: allow}
"""


def test_eval_of_a_tool_listed_only_under_servers_asks_for_server(tmp_path: Path) -> None:
    policy_file = tmp_path / "servers.yaml"
    policy_file.write_text(SERVER_TOOLS, encoding="utf-8")

    result = run_main("policy", "eval", str(policy_file), "--tool", "echo")

    expected = (
        "error: the policy lists tool 'echo' only under server(s) everything, other: pass "
        "--server everything or --server other (a call with no server would get the "
        "unknown-tools default)\n"
    )
    assert (1, expected, "") == (result.returncode, result.stderr, result.stdout)


def test_eval_with_the_server_decides_by_its_rules(tmp_path: Path) -> None:
    policy_file = tmp_path / "servers.yaml"
    policy_file.write_text(SERVER_TOOLS, encoding="utf-8")

    code, out, _ = invoke(
        "policy", "eval", str(policy_file), "--tool", "echo", "--server", "everything",
        "--args", '{"message": "secret"}',
    )  # fmt: skip

    assert 0 == code
    assert "rule:        everything/echo#1" in out


@pytest.mark.parametrize("name", ["production-safeguards", "coding-agent"])
def test_policy_test_passes_on_shipped_cases(name: str) -> None:
    code, out, _ = invoke(
        "policy",
        "test",
        str(POLICIES / f"{name}.yaml"),
        "--cases",
        str(POLICIES / f"{name}.cases.yaml"),
    )
    assert code == 0
    assert "PASS" in out.upper()


def test_policy_test_fails_on_a_wrong_expectation(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n  - name: ls is denied (wrong)\n    tool: bash\n"
        "    args: {command: ls}\n    justification: look\n    expect: deny\n"
    )
    code, out, _ = invoke("policy", "test", EXAMPLE, "--cases", str(cases))
    assert code == 1
    assert "FAIL" in out.upper()
    assert "ls is denied (wrong)" in out


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run_main("policy", "validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert "nope.yaml" in result.stderr


def test_config_show_redacts_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRELOOP_ADMIN_KEY", "s" * 40)
    monkeypatch.setenv("PRELOOP_SERVER_PORT", "9100")
    code, out, _ = invoke("config", "show")
    assert code == 0
    assert "PRELOOP_SERVER_PORT" in out
    assert "9100" in out
    assert "s" * 40 not in out
    code, out, _ = invoke("config", "show", "--json")
    assert json.loads(out)["settings"]["PRELOOP_ADMIN_KEY"] == "********"


def test_a_mistyped_setting_is_one_line_naming_the_close_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "config", "show"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PRELOOP_DATABSE_URL": "sqlite:///x.db"},
        timeout=120,
    )
    assert 1 == result.returncode
    expected = "error: unknown setting PRELOOP_DATABSE_URL; did you mean PRELOOP_DATABASE_URL?\n"
    assert expected == result.stderr


def test_client_commands_without_a_key_say_how_to_get_one() -> None:
    result = run_main("keys", "list")
    assert result.returncode == 1
    assert "no API key" in result.stderr
    assert "preloop login" in result.stderr
