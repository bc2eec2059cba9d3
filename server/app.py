"""``create_app(settings)``: the Litestar application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Request, get
from litestar.logging import LoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from hub import __version__
from hub.settings import Settings
from server.api import api_router
from server.auth import ApiKeyAuthenticationMiddleware
from server.bootstrap import Hub, first_start, open_hub
from server.errors import EXCEPTION_HANDLERS

PUBLIC_PATHS = ["^/healthz", "^/docs", "^/openapi.json"]


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


def create_app(
    settings: Settings,
    *,
    hub: Hub | None = None,
    on_ready: Callable[[Hub], Awaitable[None]] | None = None,
) -> Litestar:
    """The application. With ``hub`` given (tests), it is used as is and not closed;
    ``on_ready`` runs once the hub is open and the first start is done."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if hub is not None:
            app.state.hub = hub
            yield
            return
        opened = await open_hub(settings)
        try:
            await first_start(opened)
            app.state.hub = opened
            if on_ready is not None:
                await on_ready(opened)
            yield
        finally:
            await opened.close()

    return Litestar(
        route_handlers=[healthz, openapi_json, api_router()],
        lifespan=[lifespan],
        middleware=[DefineMiddleware(ApiKeyAuthenticationMiddleware, exclude=PUBLIC_PATHS)],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.server.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Preloop",
            version=__version__,
            description="Policy engine and approval hub for AI agents.",
            path="/docs",
            render_plugins=[SwaggerRenderPlugin(path="/")],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="A Preloop API key: 'Bearer pl_...'",
                    ),
                }
            ),
        ),
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="never"),
        debug=False,
    )
