"""Errors in the provider's own envelope, so the OpenAI and Anthropic SDKs raise their usual
exceptions (they pick the exception class from the status, and read the envelope's message).

    OpenAI     {"error": {"message", "type", "param", "code"}}
    Anthropic  {"type": "error", "error": {"type", "message"}}

One table maps Preloop's error tree to (status, OpenAI type, OpenAI code, Anthropic type):

    AuthenticationError      401     invalid_request_error / invalid_api_key   authentication_error
    PermissionDeniedError    403     permission_denied                         permission_error
    NotFoundError            404     invalid_request_error / model_not_found   not_found_error
    ValidationError          400     invalid_request_error                     invalid_request_error
    PayloadTooLargeError     413     invalid_request_error / request_too_large request_too_large
    BudgetExceededError      429     insufficient_quota / budget_exceeded      rate_limit_error
    ProviderUnavailableError 502/504 upstream_error                            api_error
    ConfigError (custody)    502     upstream_error                            api_error

A budget refusal also carries ``x-should-retry: false`` (both SDKs honour it: retrying cannot
help until the budget resets) and, when the budget resets, ``retry-after`` in seconds.
Upstream errors are not rendered here: the provider's own answer passes through as it is.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from hub.errors import (
    AuthenticationError,
    ConfigError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PreloopError,
    ValidationError,
)
from hub.model_gateway.ports import BudgetExceededError

_encode = msgspec.json.Encoder().encode


class ProviderUnavailableError(PreloopError):
    """The provider could not be reached, or did not answer in time."""

    title = "Provider unavailable"

    def __init__(self, message: str, *, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class Rendered(msgspec.Struct, frozen=True):
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


# type → (status, OpenAI type, OpenAI code, Anthropic type); the first match wins.
_TABLE: list[tuple[type[PreloopError], int, str, str | None, str]] = [
    (BudgetExceededError, 429, "insufficient_quota", "budget_exceeded", "rate_limit_error"),
    (AuthenticationError, 401, "invalid_request_error", "invalid_api_key", "authentication_error"),
    (PermissionDeniedError, 403, "permission_denied", "model_not_allowed", "permission_error"),
    (NotFoundError, 404, "invalid_request_error", "model_not_found", "not_found_error"),
    (PayloadTooLargeError, 413, "invalid_request_error", "request_too_large", "request_too_large"),
    (ValidationError, 400, "invalid_request_error", None, "invalid_request_error"),
    (ProviderUnavailableError, 502, "upstream_error", None, "api_error"),
    (ConfigError, 502, "upstream_error", "provider_unavailable", "api_error"),
]


def render(error: PreloopError, *, anthropic: bool, now: datetime | None = None) -> Rendered:
    """``error`` as the status, body and headers the client's SDK expects."""
    status, openai_type, code, anthropic_type = 500, "server_error", None, "api_error"
    for kind, s, o_type, o_code, a_type in _TABLE:
        if isinstance(error, kind):
            status, openai_type, code, anthropic_type = s, o_type, o_code, a_type
            break
    if isinstance(error, ProviderUnavailableError):
        status = error.status
    message = error.message
    headers = [(b"content-type", b"application/json")]
    if isinstance(error, BudgetExceededError):
        headers.append((b"x-should-retry", b"false"))
        if error.resets_at is not None and now is not None:
            seconds = max(1, int((error.resets_at - now).total_seconds()))
            headers.append((b"retry-after", str(seconds).encode()))
    if anthropic:
        body = _encode({"type": "error", "error": {"type": anthropic_type, "message": message}})
    else:
        param = error.field if isinstance(error, ValidationError) else None
        error_body = {"message": message, "type": openai_type, "param": param, "code": code}
        body = _encode({"error": error_body})
    return Rendered(status, body, headers)


def short_reason(status: int, body: bytes) -> str:
    """A short, secret-free reason for the ledger from a provider's error answer: the status and
    the envelope's error type (never its message, which may echo a key)."""
    try:
        decoded = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return f"provider answered {status}"
    kind = None
    if isinstance(decoded, dict):
        inner = decoded.get("error")
        if isinstance(inner, dict):
            kind = inner.get("type") or inner.get("code")
    return f"provider answered {status}" + (f" ({kind})" if isinstance(kind, str) else "")
