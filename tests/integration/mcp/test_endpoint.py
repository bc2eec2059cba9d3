"""The MCP firewall end to end: the SDK's own client, in both protocol eras, talks to Preloop's
``/mcp`` on a real uvicorn; Preloop forwards to the stdio test server ``demo`` per policy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest

from hub.errors import ConfigError
from hub.records import McpServer
from hub.settings import McpSettings, Settings
from server.bootstrap import upstream_config
from tests.integration.conftest import LiveServer, run_live
from tests.integration.mcp.support import (
    agent,
    agent_key,
    call,
    direct_client,
    direct_raw,
    held_approval_id,
    raw_call,
    stdio_config,
    text_of,
    tool_calls,
    tools_of,
)

MODES = ["auto", "legacy"]


@pytest.mark.parametrize("mode", MODES)
async def test_lists_prefixed_tools_with_justification_and_status_tool(
    gateway_server: LiveServer, mode: str
) -> None:
    async with agent(gateway_server, gateway_server.admin_key, mode) as client:
        tools = await tools_of(client)
    assert "demo__echo" in tools
    assert "echo" not in tools
    assert all(name.startswith("demo__") for name in tools if name != "get_approval_status")
    status = tools["get_approval_status"]
    assert status["inputSchema"]["required"] == ["approval_id"]
    whoami = tools["demo__whoami"]["inputSchema"]
    assert whoami["properties"]["justification"]["type"] == "string"
    assert "justification" in whoami["required"]
    assert "justification" not in tools["demo__echo"]["inputSchema"]["properties"]


@pytest.mark.parametrize("mode", MODES)
async def test_listing_shows_only_the_tools_the_policy_may_run(
    gateway_server: LiveServer, mode: str
) -> None:
    # GATEWAY_POLICY: add_tool's first rule always denies; slow, stats, crash... fall under
    # unknown_tools: deny; add and getenv only ever need approval, so they stay listed.
    async with agent(gateway_server, gateway_server.admin_key, mode) as client:
        tools = await tools_of(client)
        hidden = await raw_call(client, "demo__stats", {})
        first_rule_denies = await raw_call(client, "demo__add_tool", {"name": "sneaky"})
    assert {
        "demo__add",
        "demo__echo",
        "demo__embedded_resource",
        "demo__fail",
        "demo__getenv",
        "demo__image",
        "demo__progress",
        "demo__whoami",
        "get_approval_status",
    } == set(tools)
    assert True is hidden["isError"]  # hidden, and still refused
    assert "is not covered by the policy" in text_of(hidden)
    assert True is first_rule_denies["isError"]
    assert "Adding tools is not allowed here." in text_of(first_rule_denies)
    events = await tool_calls(gateway_server)
    assert [
        ("stats", "deny", "defaults.unknown_tools", "denied"),
        ("add_tool", "deny", "demo/add_tool#1", "denied"),
    ] == [(e["tool"], e["decision"], e["rule"], e["status"]) for e in events]


@pytest.mark.parametrize("mode", MODES)
async def test_allowed_calls_match_a_direct_call(gateway_server: LiveServer, mode: str) -> None:
    # Preloop's pool speaks the newest era to the upstream, whatever era the agent speaks;
    # only the era's own envelope key (resultType) differs.
    async with direct_client(stdio_config("demo")) as direct:
        expected_echo = await direct_raw(direct, call("echo", {"text": "hi"}))
        expected_image = await direct_raw(direct, call("image"))
        expected_embedded = await direct_raw(direct, call("embedded_resource"))
    if mode == "legacy":
        for expected in (expected_echo, expected_image, expected_embedded):
            expected.pop("resultType")
    async with agent(gateway_server, gateway_server.admin_key, mode) as client:
        echo = await raw_call(client, "demo__echo", {"text": "hi"})
        image = await raw_call(client, "demo__image", {})
        embedded = await raw_call(client, "demo__embedded_resource", {})
        failed = await raw_call(client, "demo__fail", {"message": "boom"})
    assert echo == expected_echo
    assert image == expected_image  # image block with annotations, untouched
    assert embedded == expected_embedded  # text and blob resources, annotations, _meta
    assert failed["isError"] is True
    assert text_of(failed) == "boom"


@pytest.mark.parametrize("mode", MODES)
async def test_denied_and_unjustified_calls_are_refused(
    gateway_server: LiveServer, mode: str
) -> None:
    async with agent(gateway_server, gateway_server.admin_key, mode) as client:
        denied = await raw_call(client, "demo__add_tool", {"name": "sneaky"})
        tools = await tools_of(client)
        unjustified = await raw_call(client, "demo__whoami", {})
        justified = await raw_call(client, "demo__whoami", {"justification": "checking"})
    assert denied["isError"] is True
    assert "Adding tools is not allowed here." in text_of(denied)
    assert "demo__sneaky" not in tools  # the upstream never ran add_tool
    assert unjustified["isError"] is True
    assert "requires a justification" in text_of(unjustified)
    assert justified.get("isError") in (None, False)

    events = await tool_calls(gateway_server)
    summary = [(e["tool"], e["decision"], e["status"]) for e in events]
    assert summary == [
        ("add_tool", "deny", "denied"),
        ("whoami", "deny", "denied"),
        ("whoami", "allow", "ok"),
    ]
    assert events[2]["justification"] == "checking"
    assert "justification" not in events[2]["args"]


async def test_every_call_is_audited_once(gateway_server: LiveServer) -> None:
    async with agent(gateway_server, gateway_server.admin_key, "auto") as client:
        await raw_call(client, "demo__echo", {"text": "a"})
        await raw_call(client, "demo__fail", {"message": "b"})
    events = await tool_calls(gateway_server)
    assert [(e["server"], e["tool"], e["decision"], e["status"]) for e in events] == [
        ("demo", "echo", "allow", "ok"),
        ("demo", "fail", "allow", "error"),
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_progress_reaches_the_agent(gateway_server: LiveServer, mode: str) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with agent(gateway_server, gateway_server.admin_key, mode) as client:
        result = await client.call_tool(
            "demo__progress", {"steps": 3}, progress_callback=on_progress
        )
    assert result.structured_content == {"steps": 3, "had_token": True}
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_sync_approval_runs_the_call_once_approved(gateway_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {gateway_server.admin_key}"}  # the approver
    key = await agent_key(gateway_server)
    async with (
        agent(gateway_server, key, "auto") as client,
        httpx.AsyncClient(base_url=gateway_server.url, headers=headers, timeout=30) as http,
    ):
        waiting = asyncio.create_task(raw_call(client, "demo__getenv", {"name": "HOME"}))
        async with asyncio.timeout(30):
            while True:  # the request appears once the call is held; poll the REST API
                pending = (
                    await http.get("/api/v1/approvals/", params={"status": "pending"})
                ).json()
                if pending:
                    break
                await asyncio.sleep(0.05)
        assert not waiting.done()
        approved = await http.post(f"/api/v1/approvals/{pending[0]['id']}/approve", json={})
        assert approved.status_code == 200, approved.text
        async with asyncio.timeout(30):
            result = await waiting
    assert result.get("isError") in (None, False)
    assert result["structuredContent"]["name"] == "HOME"
    events = await tool_calls(gateway_server)
    assert [(e["tool"], e["decision"], e["status"]) for e in events] == [
        ("getenv", "require_approval", "ok")
    ]


async def test_async_approval_runs_through_get_approval_status(
    gateway_server: LiveServer,
) -> None:
    headers = {"Authorization": f"Bearer {gateway_server.admin_key}"}  # the approver
    key = await agent_key(gateway_server)
    async with (
        agent(gateway_server, key, "legacy") as client,
        httpx.AsyncClient(base_url=gateway_server.url, headers=headers, timeout=30) as http,
    ):
        held = await raw_call(client, "demo__add", {"a": 2, "b": 3})  # never listed here
        approval_id = held_approval_id(held)
        assert "pending" == held["_meta"]["ai.preloop/decision"]["status"]
        assert True is held["isError"]  # demo__add has an output schema: no structured answer
        assert "structuredContent" not in held
        still = await raw_call(client, "get_approval_status", {"approval_id": approval_id})
        assert still["structuredContent"]["status"] == "pending"
        approved = await http.post(f"/api/v1/approvals/{approval_id}/approve", json={})
        assert approved.status_code == 200, approved.text
        result = await raw_call(client, "get_approval_status", {"approval_id": approval_id})
        again = await raw_call(client, "get_approval_status", {"approval_id": approval_id})
    assert result["structuredContent"] == {"sum": 5}
    assert again == result  # run once; later polls return the stored result
    events = await tool_calls(gateway_server)
    assert [(e["tool"], e["status"]) for e in events] == [("add", "pending"), ("add", "ok")]


@pytest.mark.parametrize("mode", MODES)
async def test_held_and_refused_answers_fit_the_tools_output_schema(
    gateway_server: LiveServer, mode: str
) -> None:
    # demo__add declares an output schema {sum}; the SDK client validates every successful
    # result against it, so a held answer must not be a successful {approval_id, ...}.
    headers = {"Authorization": f"Bearer {gateway_server.admin_key}"}  # the approver
    async with httpx.AsyncClient(base_url=gateway_server.url, headers=headers, timeout=30) as http:
        created = await http.post("/api/v1/keys/", json={"name": "v", "role": "viewer"})
        viewer = created.json()["secret"]
        async with agent(gateway_server, await agent_key(gateway_server), mode) as client:
            assert "outputSchema" in (await tools_of(client))["demo__add"]
            held = await client.call_tool("demo__add", {"a": 2, "b": 3})
            decision = (held.meta or {})["ai.preloop/decision"]
            approval_id = decision["approval_id"]
            pending = await client.call_tool("get_approval_status", {"approval_id": approval_id})
            approved = await http.post(f"/api/v1/approvals/{approval_id}/approve", json={})
            assert 200 == approved.status_code, approved.text
            result = await client.call_tool("get_approval_status", {"approval_id": approval_id})
        async with agent(gateway_server, viewer, mode) as client:
            refused = await client.call_tool("demo__add", {"a": 2, "b": 3})
    assert True is held.is_error  # the call has not run: not the tool's result
    assert None is held.structured_content
    assert "pending" == decision["status"]
    assert approval_id in " ".join(b.text for b in held.content if b.type == "text")
    assert {"approval_id": approval_id, "status": "pending"} == pending.structured_content
    assert {"sum": 5} == result.structured_content
    assert True is refused.is_error
    assert None is refused.structured_content


# A raw handshake-era initialize request, for tests that look at HTTP answers directly.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
ACCEPT_BOTH = {"Accept": "application/json, text/event-stream"}


async def test_unauthenticated_requests_get_401(gateway_server: LiveServer) -> None:
    body, accept = INITIALIZE, ACCEPT_BOTH
    async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
        missing = await http.post("/mcp", json=body, headers=accept)
        wrong = await http.post(
            "/mcp", json=body, headers={**accept, "Authorization": "Bearer pl_nope"}
        )
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "AuthenticationError"


@pytest.mark.parametrize("bad_id", [{"a": 1}, [1], True, 1.5, None])
@pytest.mark.parametrize("method", ["tools/list", "initialize"])
async def test_a_request_with_an_invalid_id_gets_a_json_rpc_error(
    gateway_server: LiveServer, bad_id: object, method: str
) -> None:
    # JSON-RPC ids are strings or integers (MCP also forbids null on a request); the SDK took
    # such a message for a notification and answered 202 with nothing.
    body = {**INITIALIZE, "method": method, "id": bad_id}
    headers = {**ACCEPT_BOTH, "Authorization": f"Bearer {gateway_server.admin_key}"}
    async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
        if method == "tools/list":  # in an open session
            opened = await http.post("/mcp", json=INITIALIZE, headers=headers)
            headers |= {
                "Mcp-Session-Id": opened.headers["mcp-session-id"],
                "Mcp-Protocol-Version": "2025-11-25",
            }
            body["params"] = {}
        answer = await http.post("/mcp", json=body, headers=headers)
        batch = await http.post("/mcp", json=[body], headers=headers)
    for response in (answer, batch):
        assert 400 == response.status_code
        assert "application/json" == response.headers["content-type"]
        error = response.json()
        assert {"jsonrpc": "2.0", "id": None} == {k: error[k] for k in ("jsonrpc", "id")}
        assert -32600 == error["error"]["code"]
        assert "id must be a string or an integer" in error["error"]["message"]


async def test_a_message_nested_too_deeply_gets_a_json_rpc_error_not_a_500(
    gateway_server: LiveServer,
) -> None:
    # The id check decodes the body first: a RecursionError there was a 500.
    deep = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":' + '{"a":' * 5000
    body = deep + "1" + "}" * 5001
    headers = {
        **ACCEPT_BOTH,
        "Authorization": f"Bearer {gateway_server.admin_key}",
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
        answer = await http.post("/mcp", content=body, headers=headers)
    assert 400 == answer.status_code, answer.text
    error = answer.json()
    assert {"jsonrpc": "2.0", "id": None} == {k: error[k] for k in ("jsonrpc", "id")}
    assert -32600 == error["error"]["code"]
    assert "nested too deeply" in error["error"]["message"]


async def test_a_session_cannot_be_used_with_another_key(gateway_server: LiveServer) -> None:
    body, accept = INITIALIZE, ACCEPT_BOTH
    async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
        other_key = await agent_key(gateway_server, "agent two")
        opened = await http.post(
            "/mcp",
            json=body,
            headers={**accept, "Authorization": f"Bearer {gateway_server.admin_key}"},
        )
        session = opened.headers["mcp-session-id"]
        hijack = await http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
            headers={
                **accept,
                "Authorization": f"Bearer {other_key}",
                "Mcp-Session-Id": session,
                "Mcp-Protocol-Version": "2025-11-25",
            },
        )
        unknown = await http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}},
            headers={
                **accept,
                "Authorization": f"Bearer {other_key}",
                "Mcp-Session-Id": "not-a-session",
                "Mcp-Protocol-Version": "2025-11-25",
            },
        )
    assert unknown.status_code == 404
    assert hijack.status_code == 403
    assert "another API key" in hijack.json()["error"]["message"]


async def test_a_changed_tool_is_listed_but_refused(
    gateway_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_live(gateway_settings) as live:
        async with agent(live, live.admin_key, "auto") as client:
            await tools_of(client)  # pins every tool as first seen
    monkeypatch.setenv("DEMO_TOOLSET", "v2")  # the upstream now describes echo differently
    with run_live(gateway_settings) as live:
        async with agent(live, live.admin_key, "legacy") as client:
            tools = await tools_of(client)
            refused = await raw_call(client, "demo__echo", {"text": "hi"})
            still_fine = await raw_call(client, "demo__fail", {"message": "x"})
        events = await tool_calls(live)
    assert "v2" in tools["demo__echo"]["description"]
    assert refused["isError"] is True
    assert "preloop servers accept demo echo" in text_of(refused)
    assert text_of(still_fine) == "x"
    assert [(e["tool"], e["decision"], e["status"]) for e in events] == [
        ("echo", "deny", "blocked"),
        ("fail", "allow", "error"),
    ]


def test_server_references_resolve_only_through_the_allow_list(
    gateway_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    record = McpServer(
        id="srv_1",
        account_id="acc_1",
        name="github",
        transport="stdio",
        config={"command": "gh-mcp", "env": {"TOKEN": "${GITHUB_TOKEN}"}},
        created_at=now,
        updated_at=now,
    )
    monkeypatch.setenv("GITHUB_TOKEN", "secret")
    with pytest.raises(ConfigError, match="GITHUB_TOKEN"):
        upstream_config(record, gateway_settings)  # set, but not on the allow-list
    allowed = msgspec.structs.replace(
        gateway_settings, mcp=McpSettings(env_allow="DEMO_TOOLSET, GITHUB_TOKEN")
    )
    assert upstream_config(record, allowed).env == {"TOKEN": "secret"}


async def test_a_policy_apply_reconnects_the_servers(gateway_server: LiveServer) -> None:
    policy = gateway_server.settings.policy.file and Path(gateway_server.settings.policy.file)
    assert policy
    source = policy.read_text().replace("  - name: demo\n", "  - name: other\n", 1)
    source = source.replace("server: demo", "server: other")
    async with agent(gateway_server, gateway_server.admin_key, "auto") as client:
        before = await tools_of(client)
        async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
            applied = await http.post(
                "/api/v1/policies/apply",
                json={"source": source},
                headers={"Authorization": f"Bearer {gateway_server.admin_key}"},
            )
        assert applied.status_code == 200, applied.text
        after = await tools_of(client)
        echoed = await raw_call(client, "other__echo", {"text": "moved"})
        gone = await raw_call(client, "demo__echo", {"text": "x"})
    assert "demo__echo" in before
    assert "other__echo" in after
    assert "demo__echo" not in after
    assert text_of(echoed) == "moved"
    assert gone["isError"] is True
