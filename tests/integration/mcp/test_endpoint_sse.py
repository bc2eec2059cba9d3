"""The legacy HTTP+SSE transport end to end: the SDK's own SSE client talks to Preloop's
``/sse`` on a real uvicorn; Preloop forwards to the stdio test server ``demo`` per policy,
exactly as it does for ``/mcp``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from tests.integration.conftest import LiveServer
from tests.integration.mcp.support import (
    call,
    direct_client,
    direct_raw,
    held_approval_id,
    stdio_config,
)
from tests.integration.mcp.test_endpoint import (
    INITIALIZE,
    MODES,
    agent,
    agent_key,
    raw_call,
    text_of,
    tool_calls,
    tools_of,
)


@asynccontextmanager
async def sse_agent(live: LiveServer, key: str, mode: str) -> AsyncIterator[Client]:
    """The MCP SDK client over legacy SSE, connected to Preloop's /sse with a bearer key."""
    transport = sse_client(f"{live.url}/sse", headers={"Authorization": f"Bearer {key}"})
    async with Client(transport, mode=mode, cache=None) as client:
        yield client


@asynccontextmanager
async def sse_stream(
    http: httpx.AsyncClient, key: str, **headers: str
) -> AsyncIterator[tuple[httpx.Response, str]]:
    """A raw ``GET /sse`` with ``key``: the response and the message URL it announced."""
    async with http.stream(
        "GET", "/sse", headers={"Authorization": f"Bearer {key}", **headers}
    ) as response:
        endpoint = ""
        if response.status_code == 200:
            lines = response.aiter_lines()
            async for line in lines:
                if line.startswith("data: "):
                    endpoint = line.removeprefix("data: ")
                    break
        yield response, endpoint


def post_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


@pytest.mark.parametrize("mode", MODES)
async def test_sse_lists_the_same_tools_as_mcp(gateway_server: LiveServer, mode: str) -> None:
    key = await agent_key(gateway_server)
    async with agent(gateway_server, key, mode) as client:
        expected = await tools_of(client)
    async with sse_agent(gateway_server, key, mode) as client:
        tools = await tools_of(client)
    assert "demo__echo" in tools
    assert "get_approval_status" in tools
    assert tools == expected


@pytest.mark.parametrize("mode", MODES)
async def test_sse_calls_match_a_direct_call_and_denials_are_audited(
    gateway_server: LiveServer, mode: str
) -> None:
    async with direct_client(stdio_config("demo")) as direct:
        expected_echo = await direct_raw(direct, call("echo", {"text": "hi"}))
        expected_image = await direct_raw(direct, call("image"))
    if mode == "legacy":
        for expected in (expected_echo, expected_image):
            expected.pop("resultType")
    key = await agent_key(gateway_server)
    async with sse_agent(gateway_server, key, mode) as client:
        echo = await raw_call(client, "demo__echo", {"text": "hi"})
        image = await raw_call(client, "demo__image", {})
        denied = await raw_call(client, "demo__add_tool", {"name": "sneaky"})
        tools = await tools_of(client)
    assert echo == expected_echo
    assert image == expected_image
    assert denied["isError"] is True
    assert "Adding tools is not allowed here." in text_of(denied)
    assert "demo__sneaky" not in tools  # the upstream never ran add_tool

    events = await tool_calls(gateway_server)
    assert [(e["tool"], e["decision"], e["status"]) for e in events] == [
        ("echo", "allow", "ok"),
        ("image", "allow", "ok"),
        ("add_tool", "deny", "denied"),
    ]
    sessions = {e["session"] for e in events}
    assert len(sessions) == 1  # the SSE session id, the same for every call of the stream
    assert len(sessions.pop()) == 32


async def test_sse_progress_and_async_approval(gateway_server: LiveServer) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    key = await agent_key(gateway_server)
    admin = {"Authorization": f"Bearer {gateway_server.admin_key}"}  # the approver
    async with (
        sse_agent(gateway_server, key, "legacy") as client,
        httpx.AsyncClient(base_url=gateway_server.url, headers=admin, timeout=30) as http,
    ):
        stepped = await client.call_tool(
            "demo__progress", {"steps": 2}, progress_callback=on_progress
        )
        held = await raw_call(client, "demo__add", {"a": 2, "b": 3})
        approval_id = held_approval_id(held)
        approved = await http.post(f"/api/v1/approvals/{approval_id}/approve", json={})
        assert approved.status_code == 200, approved.text
        result = await raw_call(client, "get_approval_status", {"approval_id": approval_id})
    assert stepped.structured_content == {"steps": 2, "had_token": True}
    assert seen == [(1, 2, "step 1"), (2, 2, "step 2")]
    assert held["_meta"]["ai.preloop/decision"]["status"] == "pending"
    assert result["structuredContent"] == {"sum": 5}


async def test_sse_without_a_valid_key_gets_401(gateway_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
        missing = await http.get("/sse")
        wrong = await http.get("/sse", headers={"Authorization": "Bearer pl_nope"})
        post = await http.post(
            "/messages/?session_id=" + "0" * 32, json=INITIALIZE, headers={"Authorization": ""}
        )
    for response in (missing, wrong, post):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="preloop"'
        assert response.json()["error"]["type"] == "AuthenticationError"
    assert "Authorization: Bearer" in missing.json()["error"]["message"]


async def test_an_sse_session_belongs_to_the_key_that_opened_it(
    gateway_server: LiveServer,
) -> None:
    owner, other = await agent_key(gateway_server, "owner"), await agent_key(gateway_server, "b")
    async with (
        httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http,
        sse_stream(http, owner) as (stream, endpoint),
    ):
        assert stream.status_code == 200
        assert endpoint.startswith("/messages/?session_id=")
        hijack = await http.post(endpoint, json=INITIALIZE, headers=post_headers(other))
        unknown = await http.post(
            "/messages/?session_id=" + "f" * 32, json=INITIALIZE, headers=post_headers(owner)
        )
        no_session = await http.post("/messages/", json=INITIALIZE, headers=post_headers(owner))
        too_big = await http.post(
            endpoint, content=b"x" * (4 * 1024 * 1024 + 1), headers=post_headers(owner)
        )
        accepted = await http.post(endpoint, json=INITIALIZE, headers=post_headers(owner))
    assert hijack.status_code == 403
    assert "another API key" in hijack.json()["error"]["message"]
    assert unknown.status_code == 404
    assert no_session.status_code == 400
    assert too_big.status_code == 413
    assert accepted.status_code == 202


@pytest.mark.parametrize("bad_id", [{"a": 1}, [1], True, 1.5, None])
async def test_an_sse_message_with_an_invalid_id_gets_a_json_rpc_error(
    gateway_server: LiveServer, bad_id: object
) -> None:
    key = await agent_key(gateway_server)
    async with (
        httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http,
        sse_stream(http, key) as (_, endpoint),
    ):
        refused = await http.post(
            endpoint, json={**INITIALIZE, "id": bad_id}, headers=post_headers(key)
        )
    assert 400 == refused.status_code
    assert {"jsonrpc": "2.0", "id": None} == {k: refused.json()[k] for k in ("jsonrpc", "id")}
    assert -32600 == refused.json()["error"]["code"]


async def test_a_closed_sse_session_is_gone(gateway_server: LiveServer) -> None:
    key = await agent_key(gateway_server)
    async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
        async with sse_stream(http, key) as (_, endpoint):
            pass
        async with asyncio.timeout(30):
            while True:  # the server notices the closed stream asynchronously
                after = await http.post(endpoint, json=INITIALIZE, headers=post_headers(key))
                if after.status_code != 202:
                    break
                await asyncio.sleep(0.05)
    assert after.status_code == 404


async def test_sse_refuses_a_foreign_host_and_other_methods(gateway_server: LiveServer) -> None:
    key = gateway_server.admin_key
    async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
        async with sse_stream(http, key, Host="evil.example") as (rebound, endpoint):
            status = rebound.status_code
        posted = await http.post("/sse", json=INITIALIZE, headers=post_headers(key))
    assert status == 421
    assert endpoint == ""
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET"
