"""The process's ASGI app (``preloop serve``): it answers as soon as the hub is open, and loads
everything else after (docs/decisions/0069, 0070).

    uvicorn ─▶ Front
      lifespan startup: open the hub (database, migrations), first start, upstreams, on_ready
                        (the banner) ─▶ the server answers; then, in the background, the
                        Litestar app is imported, built and started (its lifespan: scheduler,
                        notices, ledger, system events)
      GET /healthz ─▶ answered here until the Litestar app is up, by Litestar after
      /mcp, /mcp/... ─▶ the MCP endpoint's ``handle``, before Litestar's routing; the endpoint
                        (the MCP SDK) is built and started on the first MCP request
      anything else ─▶ the Litestar app (a request arriving before it is up waits for it)
      lifespan shutdown: the MCP endpoint stops, then the Litestar app's lifespan, then the hub

Nothing here imports Litestar, the MCP SDK or the model gateway at module level: they cost
about 1.5 s of imports and 60 MB that ``/healthz`` does not need. What Litestar did for
``/mcp`` is done here: the host header check, the path seen by the endpoint (the mount's
remaining path), and a 500 in the error envelope (logged) when the endpoint fails before
answering.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import msgspec

from hub import __version__
from hub.settings import Settings

if TYPE_CHECKING:
    from litestar import Litestar

    from server.hub_services import Hub
    from server.mcp.endpoint import McpEndpoint
    from server.mcp.sse import SseEndpoint

log = logging.getLogger("preloop.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MCP_PATH = "/mcp"
# Litestar's own check of the Host header (litestar/_asgi/utils.py), kept for /mcp.
_VALID_HOST = re.compile(rb"\A[0-9A-Za-z!$&'()*+,;=\-._~:\[\]@%]*\Z")
_JSON = [(b"content-type", b"application/json")]
_INTERNAL_ERROR = msgspec.json.encode(
    {
        "error": {
            "type": "InternalError",
            "title": "Internal error",
            "message": "an unexpected error happened; see the server log",
        }
    }
)


async def answer_json(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def mcp_allowed_hosts(settings: Settings) -> list[str]:
    """Host headers the MCP endpoint accepts (DNS-rebinding protection)."""
    from urllib.parse import urlsplit

    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    public = urlsplit(settings.public_url).netloc
    if public and public not in hosts:
        hosts += [public, f"{public.rsplit(':', 1)[0]}:*"]
    return hosts


class McpEndpoints:
    """The MCP endpoint (``/mcp``) and the legacy SSE endpoint (``/sse``, ``/messages``) of one
    hub, built and started by ``start`` (at once, or on the first MCP request). Its run
    context (the SDK's session manager) lives in a task of its own, ended by ``aclose``."""

    def __init__(self, hub: Hub, settings: Settings) -> None:
        self._hub = hub
        self._settings = settings
        self._ready: asyncio.Future[tuple[McpEndpoint, SseEndpoint]] | None = None
        self._stop = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closed = False

    async def endpoint(self) -> McpEndpoint:
        return (await self._endpoints())[0]

    async def sse(self) -> SseEndpoint:
        return (await self._endpoints())[1]

    async def _endpoints(self) -> tuple[McpEndpoint, SseEndpoint]:
        if self._ready is None:
            self.start()
        assert self._ready is not None
        return await asyncio.shield(self._ready)

    def start(self) -> None:
        """Build and start the MCP endpoint in the background (once)."""
        if self._ready is not None:
            return
        if self._closed:
            raise RuntimeError("the MCP endpoints are closed")
        self._ready = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._run(self._ready), name="preloop-mcp")

    async def _run(self, ready: asyncio.Future[tuple[McpEndpoint, SseEndpoint]]) -> None:
        try:
            # The MCP SDK takes most of a second to import: off the event loop's thread.
            await asyncio.to_thread(_import_mcp)
            from server.mcp.endpoint import McpEndpoint
            from server.mcp.sse import SseEndpoint

            endpoint = McpEndpoint(self._hub, allowed_hosts=mcp_allowed_hosts(self._settings))
            endpoints = (endpoint, SseEndpoint(endpoint))
            async with endpoint.run():
                ready.set_result(endpoints)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
                ready.exception()  # retrieved: each waiting request raises it
            if not isinstance(exc, Exception):
                raise
            log.exception("the MCP endpoint failed to start")

    async def aclose(self) -> None:
        self._closed = True
        self._stop.set()
        if self._runner is not None:
            await self._runner


# One background import at a time: the Litestar app and the MCP SDK share modules (pydantic,
# server.errors), and two threads importing them in opposite orders could deadlock.
_BACKGROUND_IMPORTS = threading.Lock()


def _import_mcp() -> None:
    with _BACKGROUND_IMPORTS:
        import server.mcp.endpoint
        import server.mcp.sse  # noqa: F401 - imported for its side effect (loading it)


class Front:
    """The ASGI app ``preloop serve`` runs (module docstring). ``on_ready`` runs once the hub
    is open and the first start is done, before the server answers."""

    def __init__(
        self, settings: Settings, *, on_ready: Callable[[Hub], Awaitable[None]] | None = None
    ) -> None:
        self.settings = settings
        self.on_ready = on_ready
        self.hub: Hub | None = None
        self.mcp: McpEndpoints | None = None
        self._app: asyncio.Future[Litestar] | None = None
        self._app_ready: Litestar | None = None  # set once the app is up: no await per request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == MCP_PATH or path.startswith("/mcp/"):
                await self._mcp(scope, receive, send)
                return
            if path == "/healthz" and self._app_ready is None:
                await self._healthz(send)
                return
        elif kind == "lifespan":
            await self._lifespan(receive, send)
            return
        app = self._app_ready or await self._litestar()
        await app(scope, receive, send)  # type: ignore[arg-type] # ASGI mappings, one shape

    async def _litestar(self) -> Litestar:
        assert self._app is not None, "a request before the lifespan started"
        return await asyncio.shield(self._app)

    # -- /healthz, /mcp ----------------------------------------------------------------------

    async def _healthz(self, send: Send) -> None:
        """What Litestar's ``/healthz`` answers (server/app.py), while it is not up yet."""
        assert self.hub is not None
        try:
            await self.hub.storage.accounts.list()  # the database answers
        except Exception as exc:
            await _error_answer(send, exc)
            return
        await answer_json(send, 200, msgspec.json.encode({"status": "ok", "version": __version__}))

    async def _mcp(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("root_path") or not _valid_host(scope):
            # Litestar strips a root path and refuses a malformed Host (400, its envelope)
            app = self._app_ready or await self._litestar()
            await app(scope, receive, send)  # type: ignore[arg-type] # ASGI mappings
            return
        assert self.mcp is not None
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        # The mount's remaining path, as Litestar hands it to the endpoint (``/mcp`` ─▶ ``/``).
        mounted = {**scope, "path": scope["path"][len(MCP_PATH) :] or "/", "path_params": {}}
        try:
            endpoint = await self.mcp.endpoint()
            await endpoint.handle(mounted, receive, sending)
        except Exception as exc:
            if started:
                raise
            await _error_answer(send, exc)

    # -- lifespan ----------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with AsyncExitStack() as stack:
            try:
                await self._start(stack)
            except BaseException:
                await send({"type": "lifespan.startup.failed", "message": traceback.format_exc()})
                raise
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
            try:
                await stack.aclose()
            except BaseException:
                await send({"type": "lifespan.shutdown.failed", "message": traceback.format_exc()})
                raise
        await send({"type": "lifespan.shutdown.complete"})

    async def _start(self, stack: AsyncExitStack) -> None:
        from server.bootstrap import check_delivery, first_start, open_hub, start_upstreams

        settings = self.settings
        check_delivery(settings)
        hub = await open_hub(settings)
        stack.push_async_callback(hub.close)  # last out
        await first_start(hub)
        await start_upstreams(hub)
        self.hub = hub
        mcp = self.mcp = McpEndpoints(hub, settings)
        stop_app = asyncio.Event()
        self._app = asyncio.get_running_loop().create_future()
        runner = asyncio.create_task(self._run_litestar(hub, stop_app), name="preloop-app")

        async def stop_litestar() -> None:
            stop_app.set()
            await runner

        stack.push_async_callback(stop_litestar)
        stack.push_async_callback(mcp.aclose)  # first out: agents' sessions end first
        if self.on_ready is not None:
            await self.on_ready(hub)

    async def _run_litestar(self, hub: Hub, stop: asyncio.Event) -> None:
        """Import, build and start the Litestar app in the background, and run it until
        ``stop``; requests wait on ``self._app`` meanwhile."""
        assert self._app is not None
        assert self.mcp is not None
        try:
            create_app = await asyncio.to_thread(_import_app)
            app = create_app(self.settings, hub=hub, mcp=self.mcp)
            async with app.lifespan():
                self._app.set_result(app)
                self._app_ready = app
                await stop.wait()
        except BaseException as exc:
            if not self._app.done():
                self._app.set_exception(exc)
                self._app.exception()  # retrieved: each waiting request raises it
            if not isinstance(exc, Exception):
                raise
            log.exception("the application failed to start")


def _import_app() -> Callable[..., Litestar]:
    with _BACKGROUND_IMPORTS:
        from server.app import create_app

    return create_app


def _valid_host(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"host":
            return _VALID_HOST.match(value) is not None
    return True


async def _error_answer(send: Send, exc: Exception) -> None:
    """What Litestar's exception handlers (server/errors.py) answer for an error raised before
    a response started."""
    from hub.errors import PreloopError

    if isinstance(exc, PreloopError):
        from server.errors import error_body, status_of

        status = status_of(exc)
        body = msgspec.json.encode(error_body(exc))
        headers = [*_JSON, (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="preloop"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    log.exception("unexpected error", exc_info=exc)
    await answer_json(send, 500, _INTERNAL_ERROR)
