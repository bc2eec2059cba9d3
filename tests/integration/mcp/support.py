"""Helpers for the MCP tests: configurations for the in-repo test server, the test server as an
HTTP subprocess, the MCP SDK's own client as the reference to compare with, and the SDK client
as an agent of Preloop's ``/mcp`` (with the audit trail it leaves)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from pydantic import TypeAdapter

from server.mcp import UpstreamConfig
from tests.integration.conftest import LiveServer

REPO = Path(__file__).resolve().parents[3]
SERVER_MODULE = "tests.servers.upstream_server"
# Started through the launcher: a fork of an already-imported copy when the fork server runs.
LAUNCH_MODULE = "tests.servers.launch"
READY_TIMEOUT = 30.0

RAW: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])
# What the SDK's own HTTP client allows (mcp.shared._httpx_utils): 30 s, and 300 s to read a
# stream a server may hold open. httpx's 5 s default is not what agents run with.
AGENT_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
T = TypeVar("T")


def stdio_config(
    name: str = "upstream", *, protocol: str = "auto", env: dict[str, str] | None = None
) -> UpstreamConfig:
    """The in-repo test server as a stdio upstream."""
    return UpstreamConfig(
        name=name,
        transport="stdio",
        command=sys.executable,
        args=("-m", LAUNCH_MODULE, "stdio"),
        env=env or {},
        cwd=str(REPO),
        protocol=protocol,
    )


def http_config(
    name: str,
    url: str,
    *,
    transport: str = "streamable-http",
    protocol: str = "auto",
    headers: dict[str, str] | None = None,
) -> UpstreamConfig:
    return UpstreamConfig(
        name=name, transport=transport, url=url, headers=headers or {}, protocol=protocol
    )


class ServerProcess:
    """The test server over HTTP (``http``) or legacy SSE (``sse``), as a subprocess.

    Waits for its ``READY <url>`` line: no sleeping, no polling.
    """

    def __init__(self, kind: str, port: int = 0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", LAUNCH_MODULE, kind, "--port", str(port)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        line = self._read_ready_line()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the {kind} test server did not start (said {line!r})")
        self.url = line.split()[1]
        self.port = int(self.url.split(":")[2].split("/")[0])

    def _read_ready_line(self) -> str:
        assert self.process.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()))
        reader.start()
        reader.join(READY_TIMEOUT)
        return lines[0].strip() if lines else ""

    def wait_exit(self) -> int:
        return self.process.wait(timeout=READY_TIMEOUT)

    def stop(self) -> None:
        """Kill it (a test server needs no graceful shutdown, and uvicorn's would wait for
        open event streams)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@asynccontextmanager
async def direct_client(config: UpstreamConfig) -> AsyncIterator[Client]:
    """The MCP SDK's own client, connected to ``config``'s server the same way."""
    mode = "legacy" if config.protocol == "legacy" else "auto"
    server: Any
    if config.transport == "stdio":
        assert config.command is not None
        server = StdioServerParameters(
            command=config.command, args=list(config.args), env=dict(config.env), cwd=config.cwd
        )
    elif config.transport == "sse":
        from mcp.client.sse import sse_client

        assert config.url is not None
        server = sse_client(config.url, headers=dict(config.headers))
    else:
        assert config.url is not None
        server = config.url
    async with Client(server, mode=mode, cache=None) as client:
        yield client


async def direct_raw(client: Client, request: Any) -> dict[str, Any]:
    """A request's result exactly as the server sent it."""
    result: Any = await client.session.send_request(request, RAW)  # type: ignore[arg-type]
    assert isinstance(result, dict)
    return result


def call(tool: str, arguments: dict[str, Any] | None = None) -> types.CallToolRequest:
    return types.CallToolRequest(
        params=types.CallToolRequestParams(name=tool, arguments=arguments or {})
    )


async def direct_tools(client: Client) -> list[dict[str, Any]]:
    """Every tool, walking all pages, as the SDK client dumps them."""
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await client.session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
        tools += [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in page.tools]
        if page.next_cursor is None:
            return tools
        cursor = page.next_cursor


# The npm reference server's tools that need nothing but their arguments, with the arguments
# the tests call them with.
EVERYTHING_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("echo", {"message": "hello"}),
    ("get-sum", {"a": 2, "b": 3}),
    ("get-tiny-image", {}),
    ("get-structured-content", {"location": "New York"}),
    ("get-annotated-message", {"messageType": "error", "includeImage": True}),
    ("get-resource-links", {"count": 3}),
    ("get-resource-reference", {"resourceType": "Text", "resourceId": 2}),
]
_CLOCK_TIME = re.compile(r"\d{1,2}:\d{2}:\d{2}\s?(?:[AP]M)?")


def without_clock_times(result: dict[str, Any]) -> Any:
    """The reference server stamps dynamic resources with the time of day."""
    return json.loads(_CLOCK_TIME.sub("<time>", json.dumps(result)))


class ChangeRecorder:
    """An ``on_list_changed`` callback that tests can wait on."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._event: anyio.Event | None = None

    def _current(self) -> anyio.Event:
        if self._event is None:
            self._event = anyio.Event()
        return self._event

    async def __call__(self, server: str, kind: str) -> None:
        self.seen.append((server, kind))
        event, self._event = self._current(), anyio.Event()
        event.set()

    async def wait_for(
        self, server: str, kind: str, *, after: int = 0, within: float = 10.0
    ) -> None:
        """Until ``(server, kind)`` is seen at index ``after`` or later."""
        with anyio.fail_after(within):
            while True:
                event = self._current()
                if (server, kind) in self.seen[after:]:
                    return
                await event.wait()


# -- agents of Preloop's /mcp ---------------------------------------------------------------


@asynccontextmanager
async def agent(live: LiveServer, key: str, mode: str) -> AsyncIterator[Client]:
    """The MCP SDK client, connected to Preloop's /mcp with a bearer key."""
    async with httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"}, timeout=AGENT_TIMEOUT
    ) as http:
        transport = streamable_http_client(f"{live.url}/mcp", http_client=http)
        async with Client(transport, mode=mode, cache=None) as client:  # type: ignore[arg-type]
            yield client


async def agent_key(live: LiveServer, name: str = "agent") -> str:
    """A new key with the agent role, created through the REST API."""
    secret, _ = await new_agent_key(live, name)
    return secret


async def new_agent_key(live: LiveServer, name: str) -> tuple[str, str]:
    """A new key with the agent role: (its secret, its id, the actor of its audit events)."""
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        created = await http.post(
            "/api/v1/keys/",
            json={"name": name, "role": "agent"},
            headers={"Authorization": f"Bearer {live.admin_key}"},
        )
    assert created.status_code == 201, created.text
    body = created.json()
    return body["secret"], body["key"]["id"]


async def tools_of(client: Client) -> dict[str, dict[str, Any]]:
    listed = await client.list_tools()
    return {
        t.name: t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in listed.tools
    }


async def raw_call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return await direct_raw(client, call(tool, arguments))


def held_approval_id(result: dict[str, Any]) -> str:
    """The approval id of a call Preloop holds (in ``_meta`` whether or not the tool has an
    output schema; a tool with one gets no ``structuredContent`` on a held answer)."""
    approval_id: str = result["_meta"]["ai.preloop/decision"]["approval_id"]
    return approval_id


def text_of(result: dict[str, Any]) -> str:
    return " ".join(block.get("text", "") for block in result["content"])


async def approval_status(http: httpx.AsyncClient, request_id: str) -> str:
    """The status of an approval request, read through the REST API (``http`` as a reader)."""
    got = await http.get(f"/api/v1/approvals/{request_id}")
    assert got.status_code == 200, got.text
    status: str = got.json()["request"]["status"]
    return status


async def tool_calls(live: LiveServer) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        response = await http.get(
            "/api/v1/audit/",
            params={"kind": "tool.call", "order": "oldest"},
            headers={"Authorization": f"Bearer {live.admin_key}"},
        )
    response.raise_for_status()
    return [event["data"] for event in response.json()]


async def calls_by(live: LiveServer, key_id: str) -> list[dict[str, Any]]:
    """The ``tool.call`` audit events of one key, oldest first (their data)."""
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        response = await http.get(
            "/api/v1/audit/",
            params={"kind": "tool.call", "actor": key_id, "order": "oldest", "limit": 1000},
            headers={"Authorization": f"Bearer {live.admin_key}"},
        )
    response.raise_for_status()
    return [event["data"] for event in response.json()]


async def eventually(probe: Callable[[], Awaitable[T | None]], *, within: float = 30.0) -> T:
    """``probe``'s first answer that is not ``None``. For state another process (the live
    server) changes and the REST API offers no event for: polled, bounded by ``within``."""
    async with asyncio.timeout(within):
        while True:
            answer = await probe()
            if answer is not None:
                return answer
            await asyncio.sleep(0.05)
