"""A real MCP server for the upstream-pool tests, built on the MCP SDK's low-level ``Server``.

Run it as a subprocess::

    python -m tests.servers.upstream_server stdio
    python -m tests.servers.upstream_server http [--port N]   # streamable HTTP at /mcp
    python -m tests.servers.upstream_server sse [--port N]    # legacy HTTP+SSE at /sse

Over HTTP it prints ``READY <url>`` on stdout once its socket listens, so a test can wait
for that line instead of sleeping. It serves both protocol eras the SDK speaks (the
``initialize`` handshake and the 2026-07-28 per-request envelope).

Tools: ``echo``, ``add`` (structured content, output schema), ``image``, ``audio``,
``resource_link``, ``embedded_resource``, ``fail`` (``isError``), ``slow``, ``barrier`` (returns
once N calls are in flight together), ``progress``, ``crash`` (exits mid-call), ``whoami``
(``TEST_SERVER_IDENTITY`` and the ``X-Test-Header`` request header), ``getenv``, ``stats`` (pid,
handshake count, session id, protocol version), ``add_tool`` (registers a tool and announces
``tools/list_changed``) and ``add_resource`` (registers ``test://added/<name>`` and announces
``resources/list_changed``). ``tools/list`` is paginated. Also a text and a blob resource, a
resource template and a prompt.

Environment: ``TEST_SERVER_TOOLSET=v2`` changes ``echo``'s description (tool pinning);
``TEST_SERVER_FEATURES=tools`` serves tools only (no resources, templates or prompts);
``TEST_SERVER_CALL_LOG=<file>`` appends one JSON line per tool call it runs (a call counter).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import struct
import sys
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    ResourcesListChanged,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

Ctx = ServerRequestContext[Any, Any]
ToolFn = Callable[[Ctx, dict[str, Any]], Awaitable[types.CallToolResult]]

PAGE_SIZE = 4  # tools/list is paginated so clients must walk every page
STATIC_TEXT_URI = "test://static/hello"
STATIC_BLOB_URI = "test://static/blob"
TEMPLATE_URI = "test://items/{item_id}"
ADDED_URI = "test://added/"


def _png_1x1() -> str:
    """A valid 1x1 red PNG, base64-encoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    png = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    return base64.b64encode(png).decode()


def _wav_silence() -> str:
    """A valid 8-sample mono 8 kHz silent WAV, base64-encoded."""
    samples = b"\x80" * 8
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    riff += b"data" + struct.pack("<I", len(samples)) + samples
    return base64.b64encode(b"RIFF" + struct.pack("<I", len(riff)) + riff).decode()


PNG_BASE64 = _png_1x1()
WAV_BASE64 = _wav_silence()


@dataclass
class _Barrier:
    parties: int
    arrived: int = 0
    released: anyio.Event = field(default_factory=anyio.Event)


@dataclass
class _State:
    """Process-wide state: runtime-added tools, barriers, counters."""

    added_tools: list[str] = field(default_factory=list)
    added_resources: list[str] = field(default_factory=list)
    barriers: dict[str, _Barrier] = field(default_factory=dict)
    sequence: int = 0
    handshakes: int = 0

    def tick(self) -> int:
        self.sequence += 1
        return self.sequence


STATE = _State()
BUS = InMemorySubscriptionBus()


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _structured(value: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(content=[_text(json.dumps(value))], structured_content=value)


def _schema(
    properties: dict[str, Any] | None = None, required: list[str] | None = None
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties or {}}
    if required:
        schema["required"] = required
    return schema


def _tool_definitions() -> list[types.Tool]:
    v2 = os.environ.get("TEST_SERVER_TOOLSET") == "v2"
    echo_description = (
        "Echo the text back (v2: now trims nothing)." if v2 else "Echo the text back."
    )
    number = {"type": "number"}
    string = {"type": "string"}
    tools = [
        types.Tool(
            name="echo",
            description=echo_description,
            input_schema=_schema({"text": string}, ["text"]),
            annotations=types.ToolAnnotations(read_only_hint=True, title="Echo"),
        ),
        types.Tool(
            name="add",
            description="Add two numbers; the sum is structured content.",
            input_schema=_schema({"a": number, "b": number}, ["a", "b"]),
            output_schema=_schema({"sum": number}, ["sum"]),
        ),
        types.Tool(name="image", description="A tiny PNG image.", input_schema=_schema()),
        types.Tool(name="audio", description="A tiny WAV clip.", input_schema=_schema()),
        types.Tool(name="resource_link", description="A resource link.", input_schema=_schema()),
        types.Tool(
            name="embedded_resource", description="Embedded text and blob.", input_schema=_schema()
        ),
        types.Tool(
            name="fail",
            description="A result with isError true.",
            input_schema=_schema({"message": string}, ["message"]),
        ),
        types.Tool(
            name="slow",
            description="Sleep, then report start and finish sequence numbers.",
            input_schema=_schema({"seconds": number}, ["seconds"]),
        ),
        types.Tool(
            name="barrier",
            description="Return once `parties` calls with the same key are in flight at once.",
            input_schema=_schema(
                {"key": string, "parties": {"type": "integer"}, "timeout": number},
                ["key", "parties"],
            ),
        ),
        types.Tool(
            name="progress",
            description="Send `steps` progress notifications, then return.",
            input_schema=_schema({"steps": {"type": "integer"}}, ["steps"]),
        ),
        types.Tool(name="crash", description="Exit the process mid-call.", input_schema=_schema()),
        types.Tool(
            name="whoami",
            description="TEST_SERVER_IDENTITY and the X-Test-Header of this HTTP request.",
            input_schema=_schema(),
        ),
        types.Tool(
            name="getenv",
            description="The value of an environment variable, or null.",
            input_schema=_schema({"name": string}, ["name"]),
        ),
        types.Tool(
            name="stats",
            description="pid, handshake count, session id and protocol version.",
            input_schema=_schema(),
        ),
        types.Tool(
            name="add_tool",
            description="Register a new tool at runtime and announce tools/list_changed.",
            input_schema=_schema({"name": string}, ["name"]),
        ),
        types.Tool(
            name="add_resource",
            description="Register test://added/<name> and announce resources/list_changed.",
            input_schema=_schema({"name": string}, ["name"]),
        ),
    ]
    tools += [
        types.Tool(name=name, description=f"Added at runtime: {name}.", input_schema=_schema())
        for name in STATE.added_tools
    ]
    return tools


def _header(ctx: Ctx, name: str) -> str | None:
    request = ctx.request
    headers = getattr(request, "headers", None)
    return None if headers is None else headers.get(name)


async def _echo(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(content=[_text(str(args["text"]))])


async def _add(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    return _structured({"sum": args["a"] + args["b"]})


async def _image(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    image = types.ImageContent(
        type="image",
        data=PNG_BASE64,
        mime_type="image/png",
        annotations=types.Annotations(audience=["user"], priority=0.5),
    )
    return types.CallToolResult(content=[_text("a red pixel"), image])


async def _audio(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.AudioContent(type="audio", data=WAV_BASE64, mime_type="audio/wav")]
    )


async def _resource_link(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    link = types.ResourceLink(
        type="resource_link",
        uri=STATIC_TEXT_URI,
        name="hello",
        description="The static greeting.",
        mime_type="text/plain",
        _meta={"example.com/origin": "upstream"},
    )
    return types.CallToolResult(content=[link])


async def _embedded_resource(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    text = types.EmbeddedResource(
        type="resource",
        resource=types.TextResourceContents(
            uri=STATIC_TEXT_URI, mime_type="text/plain", text="hello, world"
        ),
    )
    blob = types.EmbeddedResource(
        type="resource",
        resource=types.BlobResourceContents(
            uri=STATIC_BLOB_URI, mime_type="image/png", blob=PNG_BASE64
        ),
        annotations=types.Annotations(priority=1.0),
    )
    return types.CallToolResult(content=[text, blob], _meta={"example.com/trace": "abc"})


async def _fail(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(content=[_text(str(args["message"]))], is_error=True)


async def _slow(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    started = STATE.tick()
    await ctx.session.report_progress(0, None, "started")  # tells a caller it is in flight
    await anyio.sleep(float(args["seconds"]))
    return _structured({"started": started, "finished": STATE.tick()})


async def _barrier(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    key, parties = str(args["key"]), int(args["parties"])
    barrier = STATE.barriers.setdefault(key, _Barrier(parties=parties))
    barrier.arrived += 1
    if barrier.arrived >= barrier.parties:
        barrier.released.set()
    with anyio.move_on_after(float(args.get("timeout", 10.0))):
        await barrier.released.wait()
        return _structured({"arrived": barrier.arrived, "parties": parties})
    return types.CallToolResult(
        content=[_text(f"only {barrier.arrived} of {parties} calls arrived")], is_error=True
    )


async def _progress(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    steps = int(args["steps"])
    for step in range(1, steps + 1):
        await ctx.session.report_progress(step, steps, f"step {step}")
    token = (ctx.meta or {}).get("progress_token")  # the SDK names the wire progressToken so
    return _structured({"steps": steps, "had_token": token is not None})


async def _crash(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    sys.stdout.flush()
    os._exit(3)


async def _whoami(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    return _structured(
        {
            "identity": os.environ.get("TEST_SERVER_IDENTITY"),
            "header": _header(ctx, "x-test-header"),
        }
    )


async def _getenv(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    name = str(args["name"])
    return _structured({"name": name, "value": os.environ.get(name)})


async def _stats(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    return _structured(
        {
            "pid": int(os.environ.get("TEST_SERVER_PID") or os.getpid()),
            "process": os.getpid(),
            "handshakes": STATE.handshakes,
            "session_id": _header(ctx, "mcp-session-id"),
            "protocol_version": ctx.protocol_version,
        }
    )


async def _add_tool(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    name = str(args["name"])
    if name not in STATE.added_tools:
        STATE.added_tools.append(name)
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        # 2026-07-28: change notifications ride subscriptions/listen streams only.
        await BUS.publish(ToolsListChanged())
    else:
        await ctx.session.send_notification(
            types.ToolListChangedNotification(), related_request_id=ctx.request_id
        )
    return types.CallToolResult(content=[_text(f"added {name}")])


async def _add_resource(ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
    name = str(args["name"])
    if name not in STATE.added_resources:
        STATE.added_resources.append(name)
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        await BUS.publish(ResourcesListChanged())
    else:
        await ctx.session.send_notification(
            types.ResourceListChangedNotification(), related_request_id=ctx.request_id
        )
    return types.CallToolResult(content=[_text(f"added {ADDED_URI}{name}")])


TOOLS: dict[str, ToolFn] = {
    "echo": _echo,
    "add": _add,
    "image": _image,
    "audio": _audio,
    "resource_link": _resource_link,
    "embedded_resource": _embedded_resource,
    "fail": _fail,
    "slow": _slow,
    "barrier": _barrier,
    "progress": _progress,
    "crash": _crash,
    "whoami": _whoami,
    "getenv": _getenv,
    "stats": _stats,
    "add_tool": _add_tool,
    "add_resource": _add_resource,
}


async def list_tools(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    tools = _tool_definitions()
    start = int(params.cursor) if params is not None and params.cursor else 0
    end = start + PAGE_SIZE
    return types.ListToolsResult(
        tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None
    )


async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    args = params.arguments or {}
    calls = os.environ.get("TEST_SERVER_CALL_LOG")
    if calls:  # the upstream's call counter: one JSON line per call it ran
        line = json.dumps({"tool": params.name, "arguments": args}) + "\n"
        async with await anyio.open_file(calls, "a") as log:
            await log.write(line)
    if params.name in STATE.added_tools:
        return types.CallToolResult(content=[_text(f"hello from {params.name}")])
    tool = TOOLS.get(params.name)
    if tool is None:
        return types.CallToolResult(content=[_text(f"unknown tool {params.name}")], is_error=True)
    return await tool(ctx, args)


async def list_resources(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    return types.ListResourcesResult(
        resources=[
            types.Resource(uri=STATIC_TEXT_URI, name="hello", mime_type="text/plain"),
            types.Resource(uri=STATIC_BLOB_URI, name="pixel", mime_type="image/png"),
            *(
                types.Resource(uri=ADDED_URI + name, name=name, mime_type="text/plain")
                for name in STATE.added_resources
            ),
        ]
    )


async def list_resource_templates(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    return types.ListResourceTemplatesResult(
        resource_templates=[
            types.ResourceTemplate(
                uri_template=TEMPLATE_URI,
                name="item",
                description="An item by id.",
                mime_type="application/json",
            )
        ]
    )


async def read_resource(
    ctx: Ctx, params: types.ReadResourceRequestParams
) -> types.ReadResourceResult:
    uri = str(params.uri)
    if uri == STATIC_TEXT_URI:
        contents: list[types.TextResourceContents | types.BlobResourceContents] = [
            types.TextResourceContents(uri=uri, mime_type="text/plain", text="hello, world")
        ]
    elif uri == STATIC_BLOB_URI:
        contents = [types.BlobResourceContents(uri=uri, mime_type="image/png", blob=PNG_BASE64)]
    elif uri.startswith(ADDED_URI) and uri.removeprefix(ADDED_URI) in STATE.added_resources:
        contents = [
            types.TextResourceContents(
                uri=uri, mime_type="text/plain", text=f"added {uri.removeprefix(ADDED_URI)}"
            )
        ]
    elif uri.startswith("test://items/"):
        item_id = uri.removeprefix("test://items/")
        contents = [
            types.TextResourceContents(
                uri=uri, mime_type="application/json", text=json.dumps({"id": item_id})
            )
        ]
    else:
        raise MCPError(code=types.INVALID_PARAMS, message=f"no resource {uri}")
    return types.ReadResourceResult(contents=contents)


async def list_prompts(
    ctx: Ctx, params: types.PaginatedRequestParams | None
) -> types.ListPromptsResult:
    return types.ListPromptsResult(
        prompts=[
            types.Prompt(
                name="greet",
                description="Greet someone.",
                arguments=[types.PromptArgument(name="name", description="Who", required=True)],
            )
        ]
    )


async def get_prompt(ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    who = (params.arguments or {}).get("name", "world")
    return types.GetPromptResult(
        description="A greeting.",
        messages=[
            types.PromptMessage(role="user", content=_text(f"Please greet {who}.")),
            types.PromptMessage(
                role="assistant",
                content=types.ImageContent(type="image", data=PNG_BASE64, mime_type="image/png"),
            ),
        ],
    )


class _CountHandshakes:
    """Middleware counting ``initialize`` and ``server/discover``: proves session reuse."""

    async def __call__(self, ctx: Ctx, call_next: CallNext) -> HandlerResult:
        if ctx.method in ("initialize", "server/discover"):
            STATE.handshakes += 1
        return await call_next(ctx)


def build_server() -> Server[Any]:
    if os.environ.get("TEST_SERVER_FEATURES") == "tools":
        server: Server[Any] = Server(
            "preloop-test-upstream",
            version="1.0.0",
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            on_subscriptions_listen=ListenHandler(BUS),
        )
        server.middleware.append(_CountHandshakes())
        return server
    server = Server(
        "preloop-test-upstream",
        version="1.0.0",
        instructions="A test server for Preloop's upstream pool.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_subscriptions_listen=ListenHandler(BUS),
    )
    server.middleware.append(_CountHandshakes())
    return server


NOTIFICATIONS = NotificationOptions(
    prompts_changed=True, resources_changed=True, tools_changed=True
)


async def serve_stdio() -> None:
    from mcp.server.stdio import stdio_server

    server = build_server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(
            read_stream, write_stream, server.create_initialization_options(NOTIFICATIONS)
        )


def _listen(port: int) -> socket.socket:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every response (headers, then body) waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


async def _serve_asgi(app: Any, port: int, path: str) -> None:
    import uvicorn

    sock = _listen(port)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    # The socket already listens: connections queue until uvicorn accepts them.
    print(f"READY http://127.0.0.1:{bound}{path}", flush=True)
    await server.serve(sockets=[sock])


async def serve_http(port: int) -> None:
    app = build_server().streamable_http_app(streamable_http_path="/mcp")
    await _serve_asgi(app, port, "/mcp")


async def serve_sse(port: int) -> None:
    from mcp.server.sse import SseServerTransport
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Mount, Route

    server = build_server()
    transport = SseServerTransport("/messages/")

    async def handle_sse(request: Request) -> Response:
        async with transport.connect_sse(request.scope, request.receive, request._send) as streams:
            await server.run(
                streams[0], streams[1], server.create_initialization_options(NOTIFICATIONS)
            )
        return Response()

    app = Starlette(
        routes=[
            Route("/sse", endpoint=handle_sse, methods=["GET"]),
            Mount("/messages/", app=transport.handle_post_message),
        ]
    )
    await _serve_asgi(app, port, "/sse")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.servers.upstream_server")
    parser.add_argument("transport", choices=["stdio", "http", "sse"])
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args(argv)
    if options.transport == "stdio":
        anyio.run(serve_stdio)
    elif options.transport == "http":
        anyio.run(serve_http, options.port)
    else:
        anyio.run(serve_sse, options.port)


if __name__ == "__main__":
    main()
