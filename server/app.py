"""``create_app(settings)``: the Litestar application. ``preloop serve`` runs it behind
``server.front.Front``, which answers before this module is imported and hands it ``/mcp``
only through the shared ``McpEndpoints`` (docs/decisions/0069)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Request, asgi, get
from litestar.logging import LoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import Receive, Scope, Send

from hub import __version__
from hub.settings import Settings
from server.api import api_router
from server.api_docs import swagger_assets_router, swagger_render_plugin
from server.auth import ApiKeyAuthenticationMiddleware
from server.bootstrap import (
    check_delivery,
    first_start,
    open_hub,
    start_upstreams,
)
from server.channel_routes import channel_inbound, channel_router
from server.errors import EXCEPTION_HANDLERS
from server.front import McpEndpoints
from server.hub_services import Hub, ModelGatewayOnFirstUse
from server.model_gateway.routes import GATEWAY_PATHS, GATEWAY_ROUTES
from server.openapi import openapi_plugins
from server.request import JsonRequest
from server.scheduler import scheduler_running
from server.search_loop import indexer_running
from server.system_events import system_events_running
from server.tracker_loops import trackers_running
from server.ws import unified_websocket

# /email/links: the signed link token is the credential (bots/email/pages.py); the app's
# exchange of a pairing token for a device credential, /mattermost/actions (the button's
# signed token): the token is the proof.
PUBLIC_PATHS = [
    "^/healthz",
    "^/docs",
    "^/openapi.json",
    "^/email/links/",
    "^/api/v1/devices/pair$",
    "^/mattermost/actions$",
    "^/slack/events$",  # Slack signs every request; bolt verifies it (bots/slack/interactions.py)
    "^/api/v1/webhooks/",  # a tracker signs each delivery its own way (hub/trackers/webhooks.py)
]
# Paths that authenticate themselves (the MCP endpoints answer in their own way).
# The unified WebSocket authenticates on connect (a browser cannot send the header).
SELF_AUTHENTICATED = ["^/mcp", "^/sse", "^/messages", "^/api/v1/ws/"]
# The model gateway authenticates its own way (Bearer or x-api-key; runtime tokens too) and
# answers in the providers' error envelopes (server/model_gateway/routes.py).
SELF_AUTHENTICATED += GATEWAY_PATHS


@get("/healthz", include_in_schema=True, tags=["health"])
async def healthz(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Liveness and readiness: the server runs and its database answers."""
    hub: Hub = request.app.state.hub
    await hub.storage.accounts.list()
    return {"status": "ok", "version": __version__}


@get("/openapi.json", media_type=MediaType.JSON, include_in_schema=False)
async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi_schema.to_schema()
    return schema


@asgi("/mcp", is_mount=True, copy_scope=True, include_in_schema=False)
async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """The MCP firewall for agents (streamable HTTP); see docs/mcp.md. Behind the front
    (``preloop serve``) requests reach the endpoint before this app; tests reach it here."""
    endpoint = await Litestar.from_scope(scope).state.mcp.endpoint()
    await endpoint.handle(scope, receive, send)


@asgi("/sse", copy_scope=True, include_in_schema=False)
async def sse_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """The MCP firewall for older agents (legacy HTTP+SSE): the event stream."""
    sse = await Litestar.from_scope(scope).state.mcp.sse()
    await sse.connect(scope, receive, send)


@asgi("/messages", is_mount=True, copy_scope=True, include_in_schema=False)
async def sse_messages(scope: Scope, receive: Receive, send: Send) -> None:
    """The MCP firewall for older agents (legacy HTTP+SSE): messages for a stream's session."""
    sse = await Litestar.from_scope(scope).state.mcp.sse()
    await sse.post(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    hub: Hub | None = None,
    on_ready: Callable[[Hub], Awaitable[None]] | None = None,
    mcp: McpEndpoints | None = None,
) -> Litestar:
    """The application. With ``hub`` given (tests, the front), it is used as is and not
    closed; ``on_ready`` runs once the hub is open and the first start is done. With ``mcp``
    given (the front), the MCP endpoints are those, started and stopped by their owner; else
    the app builds its own and starts them with its lifespan."""

    @asynccontextmanager
    async def serve_mcp(app: Litestar, opened: Hub) -> AsyncIterator[None]:
        endpoints = mcp or McpEndpoints(opened, settings)
        app.state.mcp = endpoints
        app.state.model_gateway = ModelGatewayOnFirstUse(opened)  # built on first use
        app.state.channels = channel_inbound(opened)  # Slack, Mattermost, email callbacks
        every = settings.server.scheduler_seconds
        delivering = settings.notifications.deliver == "server"
        async with (
            opened.notifications.running() if delivering else contextlib.nullcontext(),
            _own_mcp(endpoints) if mcp is None else contextlib.nullcontext(),
            scheduler_running(opened.scheduler, every=every),
            trackers_running(opened, every=settings.server.tracker_sync_seconds),
            indexer_running(opened, every=settings.search.index_seconds),
            opened.ledger.running(),  # flushes queued usage records at shutdown
            opened.capture.running(),  # captured content, and the retention purge
            system_events_running(opened),  # last: started once all runs, stopping first
        ):
            yield

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if hub is not None:
            app.state.hub = hub
            async with serve_mcp(app, hub):
                yield
            return
        check_delivery(settings)
        opened = await open_hub(settings)
        try:
            await first_start(opened)
            await start_upstreams(opened)
            app.state.hub = opened
            async with serve_mcp(app, opened):
                if on_ready is not None:
                    await on_ready(opened)
                yield
        finally:
            await opened.close()

    return Litestar(
        route_handlers=[
            healthz,
            openapi_json,
            mcp_endpoint,
            sse_endpoint,
            sse_messages,
            unified_websocket,
            api_router(),
            swagger_assets_router(),
            channel_router(),
            *GATEWAY_ROUTES,
        ],
        lifespan=[lifespan],
        middleware=[
            DefineMiddleware(
                ApiKeyAuthenticationMiddleware, exclude=PUBLIC_PATHS + SELF_AUTHENTICATED
            )
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=JsonRequest,
        plugins=openapi_plugins(),
        request_max_body_size=settings.server.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Preloop",
            version=__version__,
            description="Policy engine and approval hub for AI agents.",
            path="/docs",
            render_plugins=[swagger_render_plugin()],  # its assets served locally
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="A Preloop API key ('Bearer pl_...') or an access token "
                        "from POST /api/v1/auth/token ('Bearer plat_...')",
                    ),
                }
            ),
        ),
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="never"),
        debug=False,
    )


@asynccontextmanager
async def _own_mcp(endpoints: McpEndpoints) -> AsyncIterator[None]:
    """The app's own MCP endpoints, started with it (not on first use, as behind the front)."""
    endpoints.start()
    try:
        await endpoints.endpoint()
        yield
    finally:
        await endpoints.aclose()
