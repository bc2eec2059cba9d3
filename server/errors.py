"""One table maps the hub's errors to HTTP responses. Every error body has one shape:

{"error": {"type": "PolicyError", "title": "Invalid policy", "message": "...",
           "problems": [{"message": ..., "file": ..., "line": ..., "key": ...}]}}
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.exceptions import ValidationException as LitestarValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_502_BAD_GATEWAY,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from hub.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PolicyError,
    PolicyTooLargeError,
    PreloopError,
    RateLimitedError,
    StorageError,
    TrackerError,
    ValidationError,
)
from hub.search.gateway_embedder import EmbeddingError
from hub.wire.errors import ErrorDetail, ErrorEnvelope

__all__ = ["EXCEPTION_HANDLERS", "STATUS_OF", "ErrorEnvelope", "error_body", "status_of"]

log = logging.getLogger("preloop.server")

STATUS_OF: dict[type[PreloopError], int] = {
    PolicyTooLargeError: HTTP_413_REQUEST_ENTITY_TOO_LARGE,  # a PolicyError, but not a 422
    PolicyError: HTTP_422_UNPROCESSABLE_ENTITY,
    ValidationError: HTTP_400_BAD_REQUEST,
    NotFoundError: HTTP_404_NOT_FOUND,
    ConflictError: HTTP_409_CONFLICT,
    AuthenticationError: HTTP_401_UNAUTHORIZED,
    PermissionDeniedError: HTTP_403_FORBIDDEN,
    PayloadTooLargeError: HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    RateLimitedError: HTTP_429_TOO_MANY_REQUESTS,
    StorageError: HTTP_503_SERVICE_UNAVAILABLE,
    TrackerError: HTTP_502_BAD_GATEWAY,  # the issue tracker refused or could not be reached
    EmbeddingError: HTTP_502_BAD_GATEWAY,  # the embeddings model (a search's query) failed
    # at request time: this server is not configured for it (the message names the setting)
    ConfigError: HTTP_503_SERVICE_UNAVAILABLE,
}


def status_of(exc: PreloopError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return HTTP_500_INTERNAL_SERVER_ERROR


def error_body(exc: PreloopError) -> dict[str, Any]:
    problems = list(exc.problems) if isinstance(exc, PolicyError) else msgspec.UNSET
    detail = ErrorDetail(
        type=type(exc).__name__, title=exc.title, message=str(exc), problems=problems
    )
    body: dict[str, Any] = msgspec.to_builtins(ErrorEnvelope(error=detail))
    return body


def handle_preloop_error(_: Request[Any, Any, Any], exc: PreloopError) -> Response[Any]:
    status = status_of(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="preloop"'} if status == 401 else None
    if isinstance(exc, RateLimitedError):
        headers = {"Retry-After": str(exc.retry_after)}
    return Response(error_body(exc), status_code=status, headers=headers)


_HTTP_KINDS = {
    HTTP_400_BAD_REQUEST: ("ValidationError", "Invalid request"),
    HTTP_401_UNAUTHORIZED: ("AuthenticationError", "Authentication required"),
    HTTP_403_FORBIDDEN: ("PermissionDeniedError", "Permission denied"),
    HTTP_404_NOT_FOUND: ("NotFoundError", "Not found"),
    HTTP_413_REQUEST_ENTITY_TOO_LARGE: ("PayloadTooLargeError", "Payload too large"),
}


def handle_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own errors (bad JSON, body too large, unknown route) in our envelope."""
    status = exc.status_code
    kind, title = _HTTP_KINDS.get(status, ("HTTPError", "HTTP error"))
    message = str(exc.detail)
    extra = getattr(exc, "extra", None)
    if isinstance(exc, LitestarValidationException) and extra:
        details = "; ".join(
            f"{e.get('key', '')}: {e.get('message', '')}".strip(": ")
            for e in extra
            if isinstance(e, dict)
        )
        message = f"{message}: {details}" if details else message
    return Response(
        {"error": {"type": kind, "title": title, "message": message}},
        status_code=status,
        headers=getattr(exc, "headers", None),
    )


def handle_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unexpected error", exc_info=exc)
    return Response(
        {
            "error": {
                "type": "InternalError",
                "title": "Internal error",
                "message": "an unexpected error happened; see the server log",
            }
        },
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    PreloopError: handle_preloop_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
