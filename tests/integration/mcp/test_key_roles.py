"""Only agent and admin keys make an upstream act through ``/mcp`` (docs/decisions/0044):
viewer and approver keys may list, but their tools/call (``get_approval_status`` included),
resources/read and prompts/get are refused, audited and never forwarded."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from hub.errors import StorageError
from hub.settings import Settings
from server.hub_services import Hub
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.mcp.conftest import GATEWAY_POLICY
from tests.integration.mcp.support import (
    REPO,
    agent,
    agent_key,
    raw_call,
    text_of,
    tool_calls,
)
from tests.integration.mcp.test_endpoint import MODES

# `slow` ticks the test server's sequence counter: the agent's first call sees 1 only if no
# refused call reached the upstream before it.
ROLES_POLICY = GATEWAY_POLICY.replace(
    "tools:\n", "tools:\n  - {name: slow, server: demo, action: allow}\n", 1
)


@pytest.fixture
def roles_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(ROLES_POLICY % {"python": sys.executable})
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("DEMO_TOOLSET", "v1")
    settings: Settings = make_settings(
        tmp_path, PRELOOP_POLICY_FILE=str(policy), PRELOOP_MCP_ENV_ALLOW="DEMO_TOOLSET"
    )
    with run_live(settings) as live:
        yield live


async def key_with_role(live: LiveServer, role: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        created = await http.post(
            "/api/v1/keys/",
            json={"name": role, "role": role},
            headers={"Authorization": f"Bearer {live.admin_key}"},
        )
    assert created.status_code == 201, created.text
    return created.json()["secret"], created.json()["key"]["id"]


@pytest.mark.parametrize("mode", MODES)
async def test_viewer_and_approver_keys_cannot_make_an_upstream_act(
    roles_server: LiveServer, mode: str
) -> None:
    for role in ("viewer", "approver"):
        key, key_id = await key_with_role(roles_server, role)
        async with agent(roles_server, key, mode) as client:
            listed = await client.list_tools()  # reading the catalogue stays open
            slow = await raw_call(client, "demo__slow", {"seconds": 0})
            status = await raw_call(client, "get_approval_status", {"approval_id": "ap_x"})
            resources = await client.list_resources()
            with pytest.raises(MCPError) as read:
                await client.read_resource(str(resources.resources[0].uri))
            with pytest.raises(MCPError) as prompt:
                await client.get_prompt("demo__greet", {"name": "x"})
        assert "demo__slow" in {tool.name for tool in listed.tools}
        expected = f"API key {key_id} has role {role}"
        for result in (slow, status):
            assert True is result["isError"]
            assert expected in text_of(result)
            assert {"decision": "deny", "rule": "key-role"} == result["_meta"][
                "ai.preloop/decision"
            ]
        assert expected in read.value.error.message
        assert expected in prompt.value.error.message

    async with agent(roles_server, await agent_key(roles_server), mode) as client:
        first = await raw_call(client, "demo__slow", {"seconds": 0})
    assert {"started": 1, "finished": 2} == first["structuredContent"]  # nothing ran before

    events = await tool_calls(roles_server)
    assert [
        ("slow", "deny", "key-role", "denied"),
        ("get_approval_status", "deny", "key-role", "denied"),
        ("slow", "deny", "key-role", "denied"),
        ("get_approval_status", "deny", "key-role", "denied"),
        ("slow", "allow", "tools.demo/slow.action", "ok"),
    ] == [(e["tool"], e["decision"], e["rule"], e["status"]) for e in events]
    async with httpx.AsyncClient(base_url=roles_server.url, timeout=30) as http:
        audit = await http.get(
            "/api/v1/audit/",
            params={"kind": "resource.read", "order": "oldest"},
            headers={"Authorization": f"Bearer {roles_server.admin_key}"},
        )
        prompts = await http.get(
            "/api/v1/audit/",
            params={"kind": "prompt.get", "order": "oldest"},
            headers={"Authorization": f"Bearer {roles_server.admin_key}"},
        )
    assert ["refused", "refused"] == [e["data"]["status"] for e in audit.json()]
    assert ["refused", "refused"] == [e["data"]["status"] for e in prompts.json()]


async def test_a_refusal_is_answered_when_its_audit_record_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing ran, so the refusal still reaches the agent (like the firewall's own refusals,
    # docs/decisions/0047), never "Internal server error".
    policy = tmp_path / "policy.yaml"
    policy.write_text(ROLES_POLICY % {"python": sys.executable})
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("DEMO_TOOLSET", "v1")
    settings = make_settings(
        tmp_path, PRELOOP_POLICY_FILE=str(policy), PRELOOP_MCP_ENV_ALLOW="DEMO_TOOLSET"
    )
    hubs: list[Hub] = []

    async def ready(hub: Hub) -> None:
        hubs.append(hub)

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("cannot reach the database: connection refused")

    with run_live(settings, on_ready=ready) as live:
        key, key_id = await key_with_role(live, "viewer")
        async with agent(live, key, "auto") as client:
            resources = await client.list_resources()
            monkeypatch.setattr(hubs[0].auditor, "record", down)
            slow = await raw_call(client, "demo__slow", {"seconds": 0})
            with pytest.raises(MCPError) as read:
                await client.read_resource(str(resources.resources[0].uri))
    expected = f"API key {key_id} has role viewer"
    assert True is slow["isError"]
    assert expected in text_of(slow)
    assert expected in read.value.error.message
