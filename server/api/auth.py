"""``/api/v1/auth/token``: a password login for an access token, and logging one out.

``POST`` is public and takes either body clients send: JSON ``{"username", "password"}`` or
the OAuth2 password-grant form (``application/x-www-form-urlencoded``: ``grant_type=password``,
``username``, ``password``; ``scope``, ``client_id`` and ``client_secret`` are accepted and
ignored). Either way the answer is OAuth2's ``{"access_token", "token_type": "bearer",
"expires_in"}``, never cached. ``DELETE`` revokes the access token it is sent with.
Decisions 0092 and 0093; hub/logins.py does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs

import msgspec
from litestar import Request, Response, delete, post
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

from hub.errors import (
    AuthenticationError,
    PayloadTooLargeError,
    RateLimitedError,
    ValidationError,
)
from hub.logins import MAX_USERNAME_LENGTH
from hub.passwords import MAX_PASSWORD_LENGTH
from hub.records import Role
from hub.wire import AccessTokenIssued
from server.api.deps import caller_of, hub_of
from server.auth import public, roles

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# What the OAuth2 password grant may send beside username and password (RFC 6749 4.3.2 and
# the client credentials some clients put in the body, 2.3.1): read and ignored.
_FORM_IGNORED = frozenset({"scope", "client_id", "client_secret"})


class LoginBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A login as JSON (the form carries the same fields)."""

    username: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_USERNAME_LENGTH)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
    grant_type: Annotated[str, msgspec.Meta(pattern="^password$")] = "password"


_json_login = msgspec.json.Decoder(LoginBody)


def _field(description: str, max_length: int) -> Schema:
    return Schema(
        type=OpenAPIType.STRING, min_length=1, max_length=max_length, description=description
    )


def _login_schema(*, form: bool) -> Schema:
    properties: dict[str, Schema | Reference] = {
        "username": _field(
            "The user's email, or their name when no other user has it.", MAX_USERNAME_LENGTH
        ),
        "password": _field("The user's password.", MAX_PASSWORD_LENGTH),
        "grant_type": Schema(
            type=OpenAPIType.STRING,
            enum=["password"],
            description="OAuth2's password grant (required in the form, optional in JSON).",
        ),
    }
    if form:
        for name in sorted(_FORM_IGNORED):
            properties[name] = Schema(type=OpenAPIType.STRING, description="Ignored.")
    required = ["grant_type", "password", "username"] if form else ["password", "username"]
    return Schema(
        type=OpenAPIType.OBJECT,
        properties=properties,
        required=required,
        additional_properties=False,
    )


@dataclass
class LoginOperation(Operation):
    """The document says what the route reads: JSON, or the OAuth2 form."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="The user's email and password, as JSON or as the OAuth2 "
            "password-grant form.",
            content={
                JSON: OpenAPIMediaType(schema=_login_schema(form=False)),
                FORM: OpenAPIMediaType(schema=_login_schema(form=True)),
            },
        )


def read_login(content_type: str, body: bytes) -> LoginBody:
    """The login in ``body``; ``ValidationError`` naming the field at fault."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == FORM:
        return _form_login(body)
    if media not in (JSON, ""):
        raise ValidationError(
            f"send the login as {JSON} or {FORM}, not {media!r}", field="content-type"
        )
    try:
        return _json_login.decode(body)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"invalid login: {exc}", field=_field_of(str(exc))) from exc
    except msgspec.DecodeError as exc:
        raise ValidationError(f"the body is not JSON: {exc}") from exc


def _form_login(body: bytes) -> LoginBody:
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(f"the form body cannot be read: {exc}") from exc
    values: dict[str, str] = {}
    for name, given in fields.items():
        if name in _FORM_IGNORED:
            continue
        if name not in ("username", "password", "grant_type"):
            raise ValidationError(f"unknown form field {name!r}", field=name)
        if len(given) != 1:
            raise ValidationError(f"{name}: give it once", field=name)
        values[name] = given[0]
    if "grant_type" not in values:
        raise ValidationError(
            "grant_type: required in the form, and must be 'password'", field="grant_type"
        )
    try:
        return msgspec.convert(values, LoginBody)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"invalid login: {exc}", field=_field_of(str(exc))) from exc


def _field_of(message: str) -> str | None:
    """The field msgspec's message names (``... - at `$.password` ``, ``missing required
    field `username` ``, ``unknown field `x` ``)."""
    for marker in ("`$.", "field `"):
        if marker in message:
            return message.split(marker, 1)[1].split("`", 1)[0]
    return None


@post(
    "/auth/token",
    opt=public(
        raises=(AuthenticationError, RateLimitedError, ValidationError, PayloadTooLargeError)
    ),
    operation_class=LoginOperation,
    status_code=200,
    tags=["auth"],
)
async def issue_token(request: Request[Any, Any, Any]) -> Response[AccessTokenIssued]:
    """Log in with a user's email (or unique name) and password for a short-lived access token
    (`PRELOOP_AUTH_TOKEN_SECONDS`) that works wherever an API key does, with the role the
    user's password was given. A wrong password and an unknown user get the same 401; too
    many failures for a username or from an address get 429 with `Retry-After`."""
    login = read_login(request.headers.get("content-type", ""), await request.body())
    address = request.client.host if request.client else ""
    issued = await hub_of(request).logins.login(login.username, login.password, address=address)
    answer = AccessTokenIssued(access_token=issued.text, expires_in=issued.expires_in)
    return Response(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@delete(
    "/auth/token",
    opt=roles(Role),
    status_code=204,
    tags=["auth"],
)
async def revoke_token(request: Request[Any, Any, Any]) -> None:
    """Log out: revoke the access token this request is sent with (an API key cannot be
    logged out; revoke it with `POST /api/v1/keys/{key_id}/revoke`)."""
    await hub_of(request).logins.logout(caller_of(request))
