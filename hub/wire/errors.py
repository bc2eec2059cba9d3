"""The error body of every REST route: ``{"error": {"type", "title", "message", "problems"?}}``.

``type`` names a class of the core's error tree (``hub.errors``): the server writes it from
the error it raised (server/errors.py), a client raises that class again
(``hub.api_client.errors``)."""

from __future__ import annotations

import msgspec

from hub.errors import Problem


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What went wrong. ``type`` names the error (``ValidationError``, ``NotFoundError``...);
    ``problems`` lists each problem of an invalid policy (``PolicyError`` only)."""

    type: str
    title: str = ""  # always written by the server; read leniently
    message: str
    problems: list[Problem] | msgspec.UnsetType = msgspec.UNSET


class ErrorEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """Every error body of the REST API (the OpenAPI document's error responses)."""

    error: ErrorDetail
