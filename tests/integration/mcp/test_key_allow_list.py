"""Per-API-key tool allow-lists end to end: a key created with ``tools`` patterns sees a
virtual server with only the matching tools, through ``/mcp`` and ``/sse`` alike; a call to
any other tool is refused and audited before the policy is consulted."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import LiveServer
from tests.integration.mcp.test_endpoint import (
    MODES,
    agent,
    raw_call,
    text_of,
    tool_calls,
    tools_of,
)
from tests.integration.mcp.test_endpoint_sse import sse_agent

VISIBLE = {"demo__echo", "demo__fail", "get_approval_status"}
REFUSAL = "is not in the key's tool allow-list"


async def limited_key(live: LiveServer, *tools: str) -> str:
    """A new agent key with a tool allow-list, created through the REST API."""
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        created = await http.post(
            "/api/v1/keys/",
            json={"name": "limited", "role": "agent", "tools": list(tools)},
            headers={"Authorization": f"Bearer {live.admin_key}"},
        )
    assert created.status_code == 201, created.text
    assert list(tools) == created.json()["key"]["tools"]
    secret: str = created.json()["secret"]
    return secret


@pytest.mark.parametrize("mode", MODES)
async def test_a_key_sees_only_its_tools(gateway_server: LiveServer, mode: str) -> None:
    key = await limited_key(gateway_server, "demo__echo", "demo__f*")
    async with agent(gateway_server, key, mode) as client:
        tools = await tools_of(client)
        echo = await raw_call(client, "demo__echo", {"text": "hi"})
    async with sse_agent(gateway_server, key, mode) as client:
        over_sse = await tools_of(client)
    async with agent(gateway_server, gateway_server.admin_key, mode) as client:
        everything = await tools_of(client)
    assert VISIBLE == set(tools)
    assert VISIBLE == set(over_sse)
    assert tools["demo__echo"] == everything["demo__echo"]  # the same definition, unfiltered
    assert {"demo__image", "demo__getenv", "demo__whoami"} <= set(everything)  # no list: all
    assert echo.get("isError") in (None, False)
    assert text_of(echo) == "hi"


async def test_a_hidden_tool_is_refused_and_audited_before_the_policy(
    gateway_server: LiveServer,
) -> None:
    key = await limited_key(gateway_server, "demo__echo", "demo__f*")
    async with agent(gateway_server, key, "auto") as client:
        image = await raw_call(client, "demo__image", {})  # the policy would allow it
        getenv = await raw_call(client, "demo__getenv", {"name": "HOME"})  # would need approval
        missing = await raw_call(client, "demo__no_such_tool", {})
        fine = await raw_call(client, "demo__fail", {"message": "boom"})
    async with sse_agent(gateway_server, key, "legacy") as client:
        over_sse = await raw_call(client, "demo__image", {})

    for refused in (image, getenv, missing, over_sse):
        assert refused["isError"] is True
        assert REFUSAL in text_of(refused)
    # A hidden tool and a tool that does not exist get the same answer: no oracle.
    assert text_of(missing) == text_of(image).replace("demo__image", "demo__no_such_tool")
    assert text_of(fine) == "boom"

    async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
        pending = await http.get(
            "/api/v1/approvals/",
            params={"status": "pending"},
            headers={"Authorization": f"Bearer {gateway_server.admin_key}"},
        )
    assert pending.json() == []  # getenv never reached the policy, so nothing waits
    events = await tool_calls(gateway_server)
    assert [(e["server"], e["tool"], e["decision"], e["rule"], e["status"]) for e in events] == [
        ("demo", "image", "deny", "key-allow-list", "denied"),
        ("demo", "getenv", "deny", "key-allow-list", "denied"),
        ("demo", "no_such_tool", "deny", "key-allow-list", "denied"),
        ("demo", "fail", "allow", "tools.demo/fail.action", "error"),
        ("demo", "image", "deny", "key-allow-list", "denied"),
    ]
    assert events[1]["args"] == {"name": "HOME"}
