"""An agent as a process of its own, for tests that kill it while its call is in flight: the
MCP SDK's client connects to Preloop's ``/mcp`` with a key, calls one tool and prints the
result as one JSON line.

    python -m tests.servers.mcp_agent URL KEY MODE TOOL '{"argument": "value"}'

``MODE`` is the client's protocol era: ``auto`` (2026-07-28) or ``legacy`` (the ``initialize``
handshake). It prints ``CALLING`` just before it sends the call.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def call(url: str, key: str, mode: str, tool: str, arguments: dict[str, Any]) -> None:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, cache=None) as client:  # type: ignore[arg-type]
            print("CALLING", flush=True)
            result = await client.call_tool(tool, arguments)
    print(json.dumps(result.model_dump(by_alias=True, mode="json", exclude_none=True)), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.servers.mcp_agent")
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("mode", choices=["auto", "legacy"])
    parser.add_argument("tool")
    parser.add_argument("arguments", type=json.loads)
    options = parser.parse_args(argv)
    anyio.run(call, options.url, options.key, options.mode, options.tool, options.arguments)


if __name__ == "__main__":
    main()
