"""Bearer API-key authentication and role checks for every API route.

Every handler under the API router declares ``opt={"roles": ...}``; a handler without it is
refused (fail closed), and a test walks the app to prove each route has one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from hub.errors import AuthenticationError, PermissionDeniedError
from hub.keys import Caller
from hub.records import Role

READ = (Role.ADMIN, Role.APPROVER, Role.VIEWER)
ADMIN = (Role.ADMIN,)
DECIDE = (Role.ADMIN, Role.APPROVER)
AGENT = (Role.AGENT, Role.ADMIN)


def roles(allowed: Iterable[Role]) -> dict[str, Any]:
    """The ``opt`` a route handler declares: who may call it."""
    return {"roles": tuple(allowed)}


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
        caller = await connection.app.state.hub.identity.authenticate(token)
        return AuthenticationResult(user=caller, auth=token)


def role_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    allowed = handler.opt.get("roles")
    if allowed is None:
        raise PermissionDeniedError("this route declares no roles, so nobody may call it")
    caller: Caller = connection.user
    if caller.role not in allowed:
        names = ", ".join(r.value for r in allowed)
        raise PermissionDeniedError(
            f"this needs one of the roles: {names}; key {caller.key_id} has role "
            f"{caller.role.value}"
        )
