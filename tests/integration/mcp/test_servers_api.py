"""``/api/v1/servers`` and ``preloop servers`` against the live gateway in front of ``demo``:
health, tools, refresh, accepting a changed tool, roles, and servers registered by hand."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from hub.settings import Settings
from server.cli.main import cli
from tests.integration.conftest import LiveServer, run_live


def run(live: LiveServer, *args: str, key: str | None = None) -> str:
    result = CliRunner().invoke(
        cli, [*args, "--url", live.url, "--key", key or live.admin_key], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def api(live: LiveServer, method: str, path: str, key: str | None = None, **kw: Any) -> Any:
    with httpx.Client(base_url=live.url, timeout=60) as http:
        return http.request(
            method,
            f"/api/v1/servers{path}",
            headers={"Authorization": f"Bearer {key or live.admin_key}"},
            **kw,
        )


def viewer_key(live: LiveServer) -> str:
    created = json.loads(run(live, "keys", "create", "--name", "v", "--role", "viewer", "--json"))
    secret: str = created["secret"]
    return secret


def test_lists_demo_with_its_health_and_tools(gateway_server: LiveServer) -> None:
    refreshed = api(gateway_server, "POST", "/demo/refresh")
    assert refreshed.status_code == 200, refreshed.text
    assert "echo" in {t["name"] for t in refreshed.json()}
    assert not any(t["blocked"] for t in refreshed.json())

    servers = json.loads(run(gateway_server, "servers", "list", "--json"))
    demo = next(s for s in servers if s["name"] == "demo")
    assert demo["source"] == "policy"
    assert demo["health"]["state"] == "ready"
    assert demo["env_keys"] == ["TEST_SERVER_TOOLSET"]
    assert "DEMO_TOOLSET" not in json.dumps(demo)  # keys only, never values
    listed = run(gateway_server, "servers", "list")
    assert "demo" in listed
    assert "ready" in listed

    tools = json.loads(run(gateway_server, "servers", "tools", "demo", "--json"))
    echo = next(t for t in tools if t["name"] == "echo")
    assert echo["definition_hash"] == echo["pinned_hash"]
    assert api(gateway_server, "POST", "/nope/refresh").status_code == 404


def test_a_changed_tool_is_accepted_with_its_diff(
    gateway_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_live(gateway_settings) as live:
        assert api(live, "POST", "/demo/refresh").status_code == 200  # pins v1
    monkeypatch.setenv("DEMO_TOOLSET", "v2")  # the upstream now describes echo differently
    with run_live(gateway_settings) as live:
        refreshed = {t["name"]: t for t in api(live, "POST", "/demo/refresh").json()}
        assert refreshed["echo"]["blocked"] is True
        assert refreshed["fail"]["blocked"] is False
        assert refreshed["fail"]["diff"] == ""
        assert "v2: now trims nothing" in refreshed["echo"]["diff"]  # shown before accepting
        assert "(pinned)" in refreshed["echo"]["diff"]
        blocked = run(live, "servers", "tools", "demo")
        assert "BLOCKED" in blocked

        viewer = viewer_key(live)
        assert api(live, "POST", "/demo/refresh", key=viewer).status_code == 403
        denied = api(live, "POST", "/demo/tools/echo/accept", key=viewer)
        assert denied.status_code == 403
        assert api(live, "GET", "/demo/tools", key=viewer).status_code == 200

        out = run(live, "servers", "accept", "demo", "echo")
        assert '-  "description": "Echo the text back."' in out
        assert "v2: now trims nothing" in out
        assert "Accepted" in out
        tools = {t["name"]: t for t in api(live, "GET", "/demo/tools").json()}
        assert tools["echo"]["blocked"] is False
        assert tools["echo"]["diff"] == ""
        again = json.loads(run(live, "servers", "accept", "demo", "echo", "--json"))
        assert again["diff"] == ""
        assert again["tool"]["blocked"] is False
        missing = api(live, "POST", "/demo/tools/nope/accept")
        assert missing.status_code == 404


def test_a_server_added_by_hand_is_connected_and_removed(gateway_server: LiveServer) -> None:
    viewer = viewer_key(gateway_server)
    body = {
        "name": "extra",
        "transport": "stdio",
        "command": sys.executable,
        "args": ["-m", "tests.servers.launch", "stdio"],
        "env": {"TEST_SERVER_IDENTITY": "hand-made"},
    }
    assert api(gateway_server, "POST", "/", key=viewer, json=body).status_code == 403
    bad = api(gateway_server, "POST", "/", json={"name": "bad", "transport": "stdio"})
    assert bad.status_code == 400, bad.text
    assert "needs 'command'" in bad.json()["error"]["message"]
    wrong = api(gateway_server, "POST", "/", json={**body, "transport": "carrier-pigeon"})
    assert wrong.status_code == 400, wrong.text

    added = api(gateway_server, "POST", "/", json=body)
    assert added.status_code == 200, added.text
    assert added.json()["source"] == "api"
    assert added.json()["env_keys"] == ["TEST_SERVER_IDENTITY"]
    assert "hand-made" not in added.text
    refreshed = api(gateway_server, "POST", "/extra/refresh")
    assert refreshed.status_code == 200, refreshed.text
    assert "echo" in {t["name"] for t in refreshed.json()}
    names = {s["name"]: s for s in json.loads(run(gateway_server, "servers", "list", "--json"))}
    assert set(names) == {"demo", "extra"}
    assert names["extra"]["health"]["state"] == "ready"

    assert api(gateway_server, "DELETE", "/extra", key=viewer).status_code == 403
    out = run(gateway_server, "servers", "remove", "extra")
    assert "Removed" in out
    names = {s["name"] for s in json.loads(run(gateway_server, "servers", "list", "--json"))}
    assert names == {"demo"}
    assert api(gateway_server, "DELETE", "/extra").status_code == 404
    kinds = [
        e["kind"]
        for e in httpx.get(
            f"{gateway_server.url}/api/v1/audit/",
            params={"kind": "server."},
            headers={"Authorization": f"Bearer {gateway_server.admin_key}"},
        ).json()
    ]
    assert sorted(kinds) == ["server.added", "server.removed"]


def test_cli_add_builds_the_definition(gateway_server: LiveServer) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "servers",
            "add",
            "remote",
            "--url",
            "http://127.0.0.1:9/mcp",
            "--transport",
            "sse",
            "--header",
            "Authorization=Bearer s3cret",
            "--preloop-url",
            gateway_server.url,
            "--key",
            gateway_server.admin_key,
            "--json",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    added = json.loads(result.stdout)
    assert (added["transport"], added["url"]) == ("sse", "http://127.0.0.1:9/mcp")
    assert added["header_keys"] == ["Authorization"]
    assert "s3cret" not in result.stdout
    run(gateway_server, "servers", "remove", "remote")
