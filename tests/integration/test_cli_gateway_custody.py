"""``preloop providers``, ``preloop secrets`` (with key rotation) and ``preloop flows``
against a real server on 127.0.0.1 (uvicorn, SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.errors import ValidationError
from server.bootstrap import open_hub
from server.cli.main import cli
from server.custody.local import new_key_entry
from tests.integration.conftest import LiveServer, make_settings, run_live

VALUE = "sk-cli-0123456789abcdefVALUE"


def invoke(server: LiveServer, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    argv = [*args, "--url", server.url, "--key", server.admin_key]
    result = CliRunner().invoke(cli, argv, input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_providers_and_flows(live_server: LiveServer) -> None:
    code, out, err = invoke(
        live_server,
        "providers",
        "add",
        "anthropic",
        "--kind",
        "anthropic",
        "--base-url",
        "https://api.anthropic.com",
        "--secret",
        "local:anthropic",
        "--model",
        "claude-*",
        "--alias",
        "smart=claude-sonnet-4-5",
    )
    assert (0, "") == (code, err)
    assert "Added provider anthropic." in out
    assert "smart=claude-sonnet-4-5" in out
    code, out, _ = invoke(live_server, "providers", "list", "--json")
    assert ["anthropic"] == [p["name"] for p in json.loads(out)]
    code, out, _ = invoke(live_server, "providers", "show", "anthropic")
    assert "local:anthropic" in out
    with pytest.raises(ValidationError, match="invalid secret reference") as bad:
        invoke(
            live_server,
            "providers",
            "add",
            "bad",
            "--kind",
            "openai",
            "--base-url",
            "https://x.example",
            "--secret",
            "sk-not-a-ref",
        )
    assert "expected local:NAME, vault:PATH#FIELD or env:VAR" in str(bad.value)

    code, out, _ = invoke(live_server, "flows", "run", "nightly", "--ttl", "600")
    assert 0 == code
    lines = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    token = lines["OPENAI_API_KEY"]
    assert token.startswith("plrt_")
    assert token == lines["ANTHROPIC_API_KEY"]
    assert f"{live_server.settings.public_url}/openai/v1" == lines["OPENAI_BASE_URL"]
    assert f"{live_server.settings.public_url}/anthropic" == lines["ANTHROPIC_BASE_URL"]
    execution_id = out.split("Started execution ", 1)[1].split()[0]
    code, out, _ = invoke(live_server, "flows", "show", execution_id)
    assert "active" in out
    assert token not in out
    code, out, _ = invoke(live_server, "flows", "revoke", execution_id)
    code, out, _ = invoke(live_server, "flows", "show", execution_id)
    assert "revoked" in out
    code, out, _ = invoke(live_server, "providers", "remove", "anthropic")
    assert (0, "Removed provider anthropic.\n") == (code, out)


def test_secrets_set_list_rotate_delete_and_drop_the_old_key(tmp_path: Path) -> None:
    old, new = new_key_entry("k1"), new_key_entry("k2")
    with run_live(make_settings(tmp_path, PRELOOP_SECRETS_KEYS=old)) as server:
        for name in ("openai", "anthropic"):
            code, out, err = invoke(server, "secrets", "set", name, stdin=f"{VALUE}-{name}\n")
            assert (0, "") == (code, err)
            assert f"Stored local:{name} (sealed with key k1)." in out
        with pytest.raises(ValidationError, match="no value for secret 'empty'"):
            invoke(server, "secrets", "set", "empty", stdin="")

    rotated = make_settings(tmp_path, PRELOOP_SECRETS_KEYS=f"{new},{old}")
    with run_live(rotated) as server:
        code, out, _ = invoke(server, "secrets", "list")
        assert 2 == out.count("NO (rotate)")
        code, out, _ = invoke(server, "secrets", "rotate")
        assert 0 == code
        assert "[1/2] local:anthropic: re-sealed under k2" in out
        assert "Rotated 2 of 2 secrets." in out
        code, out, _ = invoke(server, "secrets", "rotate")  # idempotent
        assert "Rotated 0 of 2 secrets." in out
        code, out, _ = invoke(server, "secrets", "list", "--json")
        assert {("local:anthropic", "k2", True), ("local:openai", "k2", True)} == {
            (r["ref"], r["key_id"], r["current"]) for r in json.loads(out)
        }
        assert VALUE not in out
        code, out, _ = invoke(server, "secrets", "delete", "anthropic")
        assert "Deleted local:anthropic." in out

    import asyncio

    async def resolve() -> str:
        hub = await open_hub(make_settings(tmp_path, PRELOOP_SECRETS_KEYS=new))
        try:
            account = await hub.identity.default_account()
            return await hub.custody.resolve(account.id, "local:openai")
        finally:
            await hub.close()

    assert f"{VALUE}-openai" == asyncio.run(resolve())  # the old key is gone and not needed
