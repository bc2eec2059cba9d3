"""What the OpenAPI document says about errors and inputs, declared once for every route.

Every error of the REST API is one envelope, ``{"error": {...}}`` (server/errors.py). Which
statuses a route may answer follows from how it is declared, so no decorator repeats it:

    400  it takes a body, a query or a path parameter (or declares ValidationError)
    401  it needs a credential (every route but the public ones, which declare no security)
    403  it checks a role (idem): a key without the role, or a device credential
    404  it names a thing in its path (or declares NotFoundError)
    413  it takes a body (``server.max_body_bytes``)
    503  always: the database may fail (StorageError), or a setting be missing (ConfigError)

plus the errors a route declares with ``roles(..., raises=(...))`` (server/auth.py), mapped
to statuses by the one table of server/errors.py (ConflictError 409, PolicyError 422...).

Request bodies a route reads with ``forbid_unknown_fields`` say so in the schema
(``additionalProperties: false``), so the document refuses what the route refuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import HTTPRoute
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from msgspec import Struct

from hub.errors import PolicyTooLargeError, PreloopError
from server.auth import PUBLIC
from server.errors import STATUS_OF, ErrorEnvelope

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.routes import BaseRoute
    from litestar.typing import FieldDefinition

# What each status means on this API: the response's description in the document.
MEANING = {
    HTTP_400_BAD_REQUEST: "Invalid request: a parameter or a body field is wrong (named)",
    HTTP_401_UNAUTHORIZED: "No credential, or one that is not valid (revoked, expired)",
    HTTP_403_FORBIDDEN: "The credential is valid but may not do this (its role is named)",
    HTTP_404_NOT_FOUND: "The thing named does not exist in this account",
    409: "The change collides with the current state",
    HTTP_413_REQUEST_ENTITY_TOO_LARGE: "The body is over the server's limit",
    422: "The policy is invalid: every problem is listed in `problems`",
    429: "Too many attempts: try again after the seconds in the `Retry-After` header",
    502: "The issue tracker refused the request or could not be reached (its message is shown)",
    HTTP_503_SERVICE_UNAVAILABLE: "The database failed or is out of date, or this server is not "
    "configured for this (the message names the setting)",
}
# Handler parameters that are not inputs of the request.
_NOT_INPUTS = frozenset({"self", "request", "socket", "state", "scope", "headers", "cookies"})


def error_statuses(handler: HTTPRouteHandler, path_parameters: tuple[str, ...]) -> set[int]:
    """Every error status ``handler`` may answer (see the module's docstring)."""
    statuses = {HTTP_503_SERVICE_UNAVAILABLE}
    inputs = set(handler.parsed_fn_signature.parameters) - _NOT_INPUTS
    if inputs or path_parameters:
        statuses.add(HTTP_400_BAD_REQUEST)
    if "data" in inputs:
        statuses.add(HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    roles = handler.opt.get("roles")
    if roles and roles != (PUBLIC,):
        statuses |= {HTTP_401_UNAUTHORIZED, HTTP_403_FORBIDDEN}
    if path_parameters:
        statuses.add(HTTP_404_NOT_FOUND)
    declared: tuple[type[PreloopError], ...] = handler.opt.get("raises", ())
    for error in declared:
        statuses.add(next(STATUS_OF[cls] for cls in error.__mro__ if cls in STATUS_OF))
    return statuses


# A route that reads a policy also answers 413 for a policy far below the body limit.
POLICY_TOO_LARGE = (
    "; or the policy is over its size limit (512 KiB, or aliases that expand too far): "
    "`PolicyTooLargeError`, its problems listed"
)


def error_responses(
    statuses: set[int], declared: tuple[type[PreloopError], ...] = ()
) -> dict[int, ResponseSpec]:
    meaning = dict(MEANING)
    if any(issubclass(error, PolicyTooLargeError) for error in declared):
        meaning[HTTP_413_REQUEST_ENTITY_TOO_LARGE] += POLICY_TOO_LARGE
    return {
        status: ResponseSpec(
            data_container=ErrorEnvelope, description=meaning[status], generate_examples=False
        )
        for status in sorted(statuses)
    }


class DocumentedErrors(ReceiveRoutePlugin):
    """Gives every HTTP route in the document its error responses as it is registered."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        path_parameters = tuple(route.path_parameters)
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            if handler.opt.get("roles") == (PUBLIC,):
                # Litestar adds every layer's security (the API router's bearer) and offers no
                # way to drop it; a public route needs none, so the document must say so.
                handler._resolved_security = []
            declared = dict(handler.responses or {})
            raises: tuple[type[PreloopError], ...] = handler.opt.get("raises", ())
            handler.responses = {
                **error_responses(error_statuses(handler, path_parameters), raises),
                **declared,
            }


class StrictStructs(StructSchemaPlugin):
    """Struct schemas as Litestar draws them, with ``additionalProperties: false`` for the
    ones that refuse unknown fields (every request body)."""

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        struct: type[Struct] = field_definition.type_
        if struct.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


def openapi_plugins() -> list[Any]:
    """The plugins ``create_app`` installs."""
    return [DocumentedErrors(), StrictStructs()]
