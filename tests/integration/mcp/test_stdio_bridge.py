"""``preloop mcp stdio`` end to end: the SDK's client spawns the bridge as a stdio MCP server;
the bridge forwards to Preloop's ``/mcp`` on a real uvicorn, which applies the policy."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from mcp import Client, StdioServerParameters

from tests.integration.conftest import LiveServer
from tests.integration.mcp.support import REPO, call, direct_raw
from tests.integration.mcp.test_endpoint import MODES, agent, agent_key, raw_call, text_of


def bridge_command(live: LiveServer, key: str) -> list[str]:
    return ["-m", "server", "mcp", "stdio", "--url", live.url, "--key", key]


@asynccontextmanager
async def bridged(live: LiveServer, key: str, mode: str) -> AsyncIterator[Client]:
    """The SDK client, connected over stdio to ``preloop mcp stdio``."""
    params = StdioServerParameters(
        command=sys.executable, args=bridge_command(live, key), cwd=str(REPO)
    )
    async with Client(params, mode=mode, cache=None) as client:
        yield client


@pytest.mark.parametrize("mode", MODES)
async def test_the_bridge_forwards_tools_calls_and_denials(
    gateway_server: LiveServer, mode: str
) -> None:
    key = await agent_key(gateway_server)
    async with agent(gateway_server, key, mode) as direct:  # the same call through /mcp
        expected = await direct_raw(direct, call("demo__echo", {"text": "hi"}))
    async with bridged(gateway_server, key, mode) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        echo = await raw_call(client, "demo__echo", {"text": "hi"})
        denied = await raw_call(client, "demo__add_tool", {"name": "sneaky"})
        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total, message))

        stepped = await client.call_tool(
            "demo__progress", {"steps": 2}, progress_callback=on_progress
        )
    assert "demo__echo" in tools
    assert "get_approval_status" in tools
    assert echo == expected
    assert denied["isError"] is True
    assert "Adding tools is not allowed here." in text_of(denied)
    assert stepped.structured_content == {"steps": 2, "had_token": True}
    assert progress == [(1, 2, "step 1"), (2, 2, "step 2")]


def test_a_refused_key_exits_1_with_a_clear_message(gateway_server: LiveServer) -> None:
    completed = subprocess.run(
        [sys.executable, *bridge_command(gateway_server, "not-a-real-key")],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "cannot connect" in completed.stderr
    assert "refused the API key" in completed.stderr
