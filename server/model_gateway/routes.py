"""The gateway's mounts: ``/openai/v1`` and ``/anthropic/v1`` as raw ASGI, served by the
``ModelGatewayProxy`` in ``app.state.model_gateway`` (the hub's ``model_gateway``). They are left
out of the API-key middleware like ``/mcp``: gateway authentication is its own (a Preloop API
key or runtime token as ``Authorization: Bearer`` or ``x-api-key``), and refusals answer in the
provider's error envelope."""

from __future__ import annotations

from litestar import Litestar, asgi
from litestar.types import Receive, Scope, Send

from hub.errors import ConfigError
from server.model_gateway.errors import render

GATEWAY_PATHS = ["^/openai/", "^/anthropic/"]


async def _serve(scope: Scope, receive: Receive, send: Send, family: str) -> None:
    proxy = getattr(Litestar.from_scope(scope).state, "model_gateway", None)
    if proxy is None:  # not wired: fail closed in the provider's envelope
        error = ConfigError("the model gateway is not configured on this server")
        rendered = render(error, anthropic=family == "anthropic")
        start = {"type": "http.response.start", "status": 503, "headers": rendered.headers}
        await send(start)  # type: ignore[arg-type]
        await send({"type": "http.response.body", "body": rendered.body})  # type: ignore[arg-type]
        return
    await proxy.handle(scope, receive, send, family)


@asgi("/openai/v1", is_mount=True, copy_scope=True, include_in_schema=False)
async def openai_mount(scope: Scope, receive: Receive, send: Send) -> None:
    """OpenAI-compatible: ``GET /models``, ``POST /chat/completions``, ``POST /responses``,
    ``POST /embeddings``."""
    await _serve(scope, receive, send, "openai")


@asgi("/anthropic/v1", is_mount=True, copy_scope=True, include_in_schema=False)
async def anthropic_mount(scope: Scope, receive: Receive, send: Send) -> None:
    """Anthropic-compatible: ``POST /messages``."""
    await _serve(scope, receive, send, "anthropic")


GATEWAY_ROUTES = [openai_mount, anthropic_mount]
