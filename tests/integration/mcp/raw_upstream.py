"""A stdio MCP server that writes its answers byte for byte as this file spells them, for the
tests of raw forwarding (an SDK server would re-serialise them): odd spacing, escapes, numbers
no float survives, every content block type, ``structuredContent``, ``_meta``, fields no
schema knows. It speaks the handshake era (configure it with ``protocol="legacy"``).

Tools: ``canned`` (the result below), ``error`` (a JSON-RPC error with data), ``marked`` (a
result whose text looks like one of Preloop's raw ids), ``hang`` (never answers; reports
progress once when asked to), ``gather`` (answers once ``parties`` calls arrived, in reverse
order of arrival), ``cancelled`` (the ``notifications/cancelled`` it received), ``exit``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

CANNED = (
    '{ "content" : [ {"type":"text","text":"h\\u00e9llo \\ud83d\\ude00 \\"q\\"",'
    '"annotations":{"audience":["user"],"priority":0.50}},'
    '{"type":"image","data":"iVBORw0KGgo=","mimeType":"image/png"},'
    '{"type":"audio","data":"UklGRg==","mimeType":"audio/wav"},'
    '{"type":"resource_link","uri":"file:///x.txt","name":"x","mimeType":"text/plain"},'
    '{"type":"resource","resource":{"uri":"file:///y","blob":"AAE=","mimeType":"x/y"}}],'
    '"structuredContent":{"n":1.50,"big":123456789012345678901234567890,"e":1E+2,'
    '"nested":{"b":2,"a":[]}},\t"isError" : false,'
    '"_meta":{"vendor.example/trace":"abc","order":[3,1,2]},"notInAnySchema":{"x":null}}'
)
MARKED = '{"content":[{"type":"text","text":"{\\"id\\":\\"preloop~1\\",\\"result\\":{}}"}]}'

TOOLS = [
    {"name": name, "inputSchema": {"type": "object"}}
    for name in ("canned", "error", "marked", "hang", "gather", "cancelled", "exit")
]


def write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def answer(request_id: Any, result: str) -> None:
    write('{"jsonrpc":"2.0","id":' + json.dumps(request_id) + ',"result":' + result + "}")


def main() -> None:
    cancelled: list[Any] = []
    gathered: list[tuple[Any, Any]] = []
    for line in sys.stdin:
        message = json.loads(line)
        method, request_id = message.get("method"), message.get("id")
        params = message.get("params") or {}
        if method == "notifications/cancelled":
            cancelled.append(params)
        if request_id is None or "method" not in message:
            continue
        if method == "initialize":
            answer(
                request_id,
                json.dumps(
                    {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {"tools": {}},
                        "serverInfo": {"name": "raw-upstream", "version": "1"},
                    }
                ),
            )
        elif method == "ping":
            answer(request_id, "{}")
        elif method == "tools/list":
            answer(request_id, json.dumps({"tools": TOOLS}))
        elif method == "tools/call":
            call(request_id, params, cancelled, gathered)
        else:
            write(
                '{"jsonrpc":"2.0","id":'
                + json.dumps(request_id)
                + ',"error":{"code":-32601,"message":"Method not found"}}'
            )


def call(
    request_id: Any,
    params: dict[str, Any],
    cancelled: list[Any],
    gathered: list[tuple[Any, Any]],
) -> None:
    name, arguments = params["name"], params.get("arguments") or {}
    if name == "canned":
        answer(request_id, CANNED)
    elif name == "marked":
        answer(request_id, MARKED)
    elif name == "error":
        write(
            '{"jsonrpc":"2.0","id":'
            + json.dumps(request_id)
            + ',"error":{"code":-32602,"message":"bad arguments","data":{"field":"x"}}}'
        )
    elif name == "hang":
        token = (params.get("_meta") or {}).get("progressToken")
        if token is not None:
            progress = {"progressToken": token, "progress": 1, "message": "started"}
            notification = {"method": "notifications/progress", "params": progress}
            write(json.dumps({"jsonrpc": "2.0", **notification}))
    elif name == "gather":
        gathered.append((request_id, arguments["n"]))
        if len(gathered) >= int(arguments["parties"]):
            for held, n in reversed(gathered):
                answer(held, json.dumps({"content": [{"type": "text", "text": str(n)}]}))
            gathered.clear()
    elif name == "cancelled":
        answer(request_id, json.dumps({"content": [], "structuredContent": {"seen": cancelled}}))
    elif name == "exit":
        sys.exit(5)


if __name__ == "__main__":
    main()
