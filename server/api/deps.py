"""Small helpers shared by the API route modules."""

from __future__ import annotations

from typing import Any

from litestar import Request

from hub.keys import Caller
from server.hub_services import Hub


def hub_of(request: Request[Any, Any, Any]) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def caller_of(request: Request[Any, Any, Any]) -> Caller:
    caller: Caller = request.user
    return caller
