"""Bearer authentication and role checks for every API route.

Every handler under the API router declares ``opt={"roles": ...}``; a handler without it is
refused (fail closed), and a test walks the app to prove each route has one. The bearer is an
API key (``pl_...``), a password login's access token (``plat_...``, hub/access_tokens.py)
or a paired device's credential (``pld_...``, hub/devices.py); a device
may only call the routes declared with ``device_only()``, and no API key may call those.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from hub.devices import DeviceCaller, DeviceService
from hub.errors import AuthenticationError, PermissionDeniedError, PreloopError
from hub.keys import Caller
from hub.records import Role

READ = (Role.ADMIN, Role.APPROVER, Role.VIEWER)
ADMIN = (Role.ADMIN,)
DECIDE = (Role.ADMIN, Role.APPROVER)
AGENT = (Role.AGENT, Role.ADMIN)
DEVICE = "device"  # not a Role: no API key has it
PUBLIC = "public"  # not a Role: the route proves the caller itself (e.g. a pairing token)


def roles(allowed: Iterable[Role], *, raises: Iterable[type[PreloopError]] = ()) -> dict[str, Any]:
    """The ``opt`` a route handler declares: who may call it, and the errors it may answer
    beyond the ones its shape implies (its OpenAPI error responses: server/openapi.py)."""
    return {"roles": tuple(allowed), "raises": tuple(raises)}


def device_only(*, raises: Iterable[type[PreloopError]] = ()) -> dict[str, Any]:
    """The ``opt`` of a route only a paired device's credential may call."""
    return {"roles": (DEVICE,), "raises": tuple(raises)}


def public(*, raises: Iterable[type[PreloopError]] = ()) -> dict[str, Any]:
    """The ``opt`` of a route outside authentication: the middleware skips it
    (``exclude_from_auth``), also where another method of its path authenticates."""
    return {"roles": (PUBLIC,), "raises": tuple(raises), "exclude_from_auth": True}


def bearer_token(header: str) -> str:
    scheme, _, token = header.strip().partition(" ")
    if not header.strip():
        raise AuthenticationError(
            "missing API key: send 'Authorization: Bearer <key>' (create one with "
            "'preloop keys create')"
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <key>'")
    return token.strip()


class ApiKeyAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = bearer_token(connection.headers.get("authorization", ""))
        hub = connection.app.state.hub
        if DeviceService.is_credential(token):
            device = await hub.devices.authenticate(token)
            return AuthenticationResult(user=device, auth=token)
        caller = await hub.identity.authenticate(token)
        return AuthenticationResult(user=caller, auth=token)


def role_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    allowed = handler.opt.get("roles")
    if allowed is None:
        raise PermissionDeniedError("this route declares no roles, so nobody may call it")
    if allowed == (PUBLIC,):
        return
    if isinstance(connection.user, DeviceCaller):
        if allowed != (DEVICE,):
            raise PermissionDeniedError(
                "a device credential may only list and decide its user's approvals and set "
                "its push token (/api/v1/devices/me/...)"
            )
        return
    if allowed == (DEVICE,):
        raise PermissionDeniedError("this route is for paired devices, not API keys")
    caller: Caller = connection.user
    if caller.role not in allowed:
        names = ", ".join(r.value for r in allowed)
        raise PermissionDeniedError(
            f"this needs one of the roles: {names}; key {caller.key_id} has role "
            f"{caller.role.value}"
        )
