"""The MCP hot path (server/mcp/_fast.py): a plain tools/call is answered without the SDK's
server, in both protocol eras; everything it does not fully handle reaches the SDK unchanged.

Which path answered is read from the fast path's debug log line, never from timing."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from hub.keys import Caller
from hub.records import Role
from hub.tool_results import ToolResult
from server.mcp._fast import FastCalls
from tests.integration.conftest import LiveServer
from tests.integration.mcp.support import (
    agent,
    agent_key,
    call,
    direct_client,
    direct_raw,
    new_agent_key,
    raw_call,
    stdio_config,
    text_of,
)

MODES = ["auto", "legacy"]
MODERN = "2026-07-28"
ACCEPT_BOTH = {"Accept": "application/json, text/event-stream"}
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
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


class FastLog(logging.Handler):
    """The names of the tools the fast path answered, as it logs them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.tools: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().endswith("answered on the fast path"):
            args = record.args if isinstance(record.args, tuple) else ()
            self.tools.append(str(args[0]) if args else "")


@contextmanager
def fast_log() -> Iterator[FastLog]:
    logger = logging.getLogger("preloop.mcp.fast")
    handler, level = FastLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def modern_call(name: str, arguments: dict[str, Any], request_id: int | str = 7) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments, "_meta": ENVELOPE}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def modern_headers(key: str, name: str) -> dict[str, str]:
    return {
        **ACCEPT_BOTH,
        "Authorization": f"Bearer {key}",
        "Mcp-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
    }


@pytest.mark.parametrize("mode", MODES)
async def test_a_plain_tools_call_takes_the_fast_path(
    gateway_server: LiveServer, mode: str
) -> None:
    with fast_log() as served:
        async with agent(gateway_server, gateway_server.admin_key, mode) as client:
            await client.list_tools()
            echoed = await raw_call(client, "demo__echo", {"text": "hi"})
            structured = await raw_call(client, "demo__add_tool", {"name": "x"})  # denied
    assert "hi" == text_of(echoed)
    assert "Adding tools is not allowed here." in text_of(structured)
    assert ["demo__echo", "demo__add_tool"] == served.tools  # and never tools/list


async def test_the_result_is_the_upstreams_result_object_as_sent(
    gateway_server: LiveServer,
) -> None:
    # The answer is the envelope around the result's bytes; the result is what the upstream
    # answers a direct call with (content blocks, annotations, _meta, isError).
    headers = modern_headers(gateway_server.admin_key, "demo__image")
    with fast_log() as served:
        async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
            answer = await http.post(
                "/mcp", json=modern_call("demo__image", {}, "id-7"), headers=headers
            )
    assert ["demo__image"] == served.tools
    assert 200 == answer.status_code
    assert "application/json" == answer.headers["content-type"]
    prefix, suffix = b'{"jsonrpc":"2.0","id":"id-7","result":', b"}"
    assert answer.content.startswith(prefix)
    assert answer.content.endswith(suffix)
    result = json.loads(answer.content[len(prefix) : -len(suffix)])
    async with direct_client(stdio_config("demo", env={"TEST_SERVER_TOOLSET": "v1"})) as direct:
        expected = await direct_raw(direct, call("image"))
    assert expected == result


@pytest.mark.parametrize("mode", MODES)
async def test_progress_streams_before_the_result_on_the_fast_path(
    gateway_server: LiveServer, mode: str
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    with fast_log() as served:
        async with agent(gateway_server, gateway_server.admin_key, mode) as client:
            result = await client.call_tool(
                "demo__progress", {"steps": 2}, progress_callback=on_progress
            )
    assert ["demo__progress"] == served.tools
    assert {"steps": 2, "had_token": True} == result.structured_content
    assert [(1, 2, "step 1"), (2, 2, "step 2")] == seen


async def test_what_the_fast_path_does_not_handle_reaches_the_sdk(
    gateway_server: LiveServer,
) -> None:
    key = gateway_server.admin_key
    batch = [modern_call("demo__echo", {"text": "a"}, 1)]
    mismatched = modern_headers(key, "demo__fail")  # Mcp-Name disagrees with the body
    task = modern_call("demo__echo", {"text": "a"})
    task["params"]["task"] = {"ttl": 1000}  # a field the fast path does not know
    with fast_log() as served:
        async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
            post = http.post
            batched = await post("/mcp", json=batch, headers=modern_headers(key, "demo__echo"))
            header = await post("/mcp", json=modern_call("demo__echo", {}), headers=mismatched)
            unknown = await post("/mcp", json=task, headers=modern_headers(key, "demo__echo"))
            no_sse = await post(
                "/mcp",
                json=modern_call("demo__echo", {"text": "a"}),
                headers={**modern_headers(key, "demo__echo"), "Accept": "application/json"},
            )
            garbage = await post(
                "/mcp",
                content=b'{"jsonrpc":"2.0","id":1,"method":"tools/call",',
                headers={**modern_headers(key, "demo__echo"), "Content-Type": "application/json"},
            )
    assert [] == served.tools
    assert (400, -32600) == (batched.status_code, batched.json()["error"]["code"])
    assert "single JSON-RPC request" in batched.json()["error"]["message"]
    assert 400 == header.status_code
    assert "mcp-name header does not match" in header.json()["error"]["message"]
    assert 200 == unknown.status_code  # the SDK's own answer (it ignores the field)
    assert 406 == no_sse.status_code
    assert (400, -32700) == (garbage.status_code, garbage.json()["error"]["code"])


async def test_invalid_ids_and_oversized_bodies_keep_their_answers(
    gateway_server: LiveServer,
) -> None:
    key = gateway_server.admin_key
    bad_id = {**modern_call("demo__echo", {"text": "a"}), "id": 1.5}
    big = modern_call("demo__echo", {"text": "x" * (5 * 1024 * 1024)})
    with fast_log() as served:
        async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
            headers = modern_headers(key, "demo__echo")
            invalid = await http.post("/mcp", json=bad_id, headers=headers)
            oversized = await http.post("/mcp", json=big, headers=headers)
    assert [] == served.tools
    assert 400 == invalid.status_code
    assert "id must be a string or an integer, not a fraction" in invalid.json()["error"]["message"]
    assert 413 == oversized.status_code


async def test_a_session_of_another_key_is_refused_before_any_call(
    gateway_server: LiveServer,
) -> None:
    other = await agent_key(gateway_server, "not the owner")
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "demo__echo"}}
    with fast_log() as served:
        async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
            opened = await http.post(
                "/mcp",
                json=INITIALIZE,
                headers={**ACCEPT_BOTH, "Authorization": f"Bearer {gateway_server.admin_key}"},
            )
            hijack = await http.post(
                "/mcp",
                json={**body, "params": {"name": "demo__echo", "arguments": {"text": "x"}}},
                headers={
                    **ACCEPT_BOTH,
                    "Authorization": f"Bearer {other}",
                    "Mcp-Session-Id": opened.headers["mcp-session-id"],
                    "Mcp-Protocol-Version": "2025-11-25",
                },
            )
    assert [] == served.tools
    assert 403 == hijack.status_code
    assert "another API key" in hijack.json()["error"]["message"]


async def test_a_session_the_sdk_no_longer_serves_is_not_served_either(
    gateway_server: LiveServer,
) -> None:
    headers = {**ACCEPT_BOTH, "Authorization": f"Bearer {gateway_server.admin_key}"}
    body = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "demo__echo", "arguments": {"text": "x"}},
    }
    with fast_log() as served:
        async with httpx.AsyncClient(base_url=gateway_server.url, timeout=30) as http:
            opened = await http.post("/mcp", json=INITIALIZE, headers=headers)
            headers |= {
                "Mcp-Session-Id": opened.headers["mcp-session-id"],
                "Mcp-Protocol-Version": "2025-11-25",
            }
            closed = await http.delete("/mcp", headers=headers)
            after = await http.post("/mcp", json=body, headers=headers)
    assert 200 == closed.status_code
    assert [] == served.tools
    assert 404 == after.status_code


@pytest.mark.parametrize("mode", MODES)
async def test_cancelling_a_held_call_on_the_fast_path_withdraws_it(
    gateway_server: LiveServer, mode: str
) -> None:
    key, key_id = await new_agent_key(gateway_server, f"cancels in {mode} mode")
    admin = {"Authorization": f"Bearer {gateway_server.admin_key}"}
    with fast_log() as served:
        async with (
            agent(gateway_server, key, mode) as client,
            httpx.AsyncClient(base_url=gateway_server.url, headers=admin, timeout=30) as http,
        ):
            waiting = asyncio.create_task(raw_call(client, "demo__getenv", {"name": "HOME"}))
            async with asyncio.timeout(30):
                while True:  # the request appears once the call is held; poll the REST API
                    pending = (await http.get("/api/v1/approvals/")).json()
                    if pending:
                        break
                    await asyncio.sleep(0.05)
            waiting.cancel()  # legacy: notifications/cancelled; 2026-07-28: the stream closes
            with pytest.raises(asyncio.CancelledError):
                await waiting
            async with asyncio.timeout(30):
                while True:
                    shown = (await http.get(f"/api/v1/approvals/{pending[0]['id']}")).json()
                    if shown["request"]["status"] != "pending":
                        break
                    await asyncio.sleep(0.05)
            echoed = await raw_call(client, "demo__echo", {"text": "still here"})
    assert ["demo__getenv", "demo__echo"] == served.tools
    assert "cancelled" == shown["request"]["status"]
    assert key_id == shown["request"]["decided_by"]
    assert "still here" == text_of(echoed)


def test_the_sdk_transport_still_has_the_fields_the_fast_path_holds_a_session_with() -> None:
    # server/mcp/_fast.py _held: the SDK's idle countdown, read from its private fields.
    transport = StreamableHTTPServerTransport(mcp_session_id="s", idle_timeout=60.0)
    assert 0 == transport._requests_in_flight
    assert 60.0 == transport._idle_timeout


async def test_the_results_bytes_reach_the_agent_unchanged() -> None:
    # Whitespace, key order and escapes of the result as the pipeline answered it survive:
    # the answer is the envelope around those very bytes (at 2026-07-28 the result already
    # carries resultType and a server-info stamp, so nothing is added).
    raw = (
        b'{ "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "u", "version": "1"}},\n'
        b'  "resultType": "complete", "isError": false,\n'
        b'  "content": [{"type": "text", "text": "caf\\u00e9 \\"x\\""}] }'
    )
    seen: list[tuple[str, dict[str, Any]]] = []

    async def call_tool(caller: Caller, name: str, arguments: dict[str, Any], **_: Any) -> Any:
        seen.append((name, arguments))
        return ToolResult.of_json(raw)

    manager = StreamableHTTPSessionManager(
        app=Server("t"),
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    fast = FastCalls(call_tool, manager, lambda name: None, dict)
    body = json.dumps(modern_call("demo__echo", {"text": "hi"}, 9)).encode()
    headers = {k.lower(): v for k, v in modern_headers("k", "demo__echo").items()}
    headers["content-type"] = "application/json"
    sent: list[MutableMapping[str, Any]] = []
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        done.set()

    caller = Caller(key_id="k", account_id="a", role=Role.AGENT)
    raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
    assert await fast.answer(caller, headers, raw_headers, body, receive, send)

    assert [("demo__echo", {"text": "hi"})] == seen
    assert 200 == sent[0]["status"]
    assert b'{"jsonrpc":"2.0","id":9,"result":' + raw + b"}" == sent[1]["body"]
