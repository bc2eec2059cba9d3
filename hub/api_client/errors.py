"""An HTTP error answer as the core's error: the one translation, for every client surface.

The server writes every error as ``{"error": {"type", "title", "message", "problems"?}}``
(server/errors.py). ``type`` names a class of ``hub.errors``, which is raised again here with
the server's message and title (an invalid policy with its problems). A type the tree does
not hold (``InternalError``, a proxy's page) falls back on the status: 401 is an
:class:`AuthenticationError`, 404 a :class:`NotFoundError`... and anything else a bare
:class:`PreloopError`. Each error carries a note ``(HTTP <status>, <type>)`` for surfaces
that show where it came from (the dashboard's error modal); the CLI prints the message only.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hub import errors
from hub.errors import PolicyError, PreloopError
from hub.wire.errors import ErrorEnvelope

# The class for a status when the answer names no class of the tree.
BY_STATUS: dict[int, type[PreloopError]] = {
    400: errors.ValidationError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    422: errors.ValidationError,
    429: errors.RateLimitedError,
    503: errors.StorageError,
}


_envelope = msgspec.json.Decoder(ErrorEnvelope)


def error_from_answer(status: int, body: bytes, reason: str = "") -> PreloopError:
    """The core error an HTTP error answer (``status`` >= 400, its ``body``) stands for."""
    try:
        detail = _envelope.decode(body).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = body.decode("utf-8", "replace").strip()[:200] or reason
        fallback = _error_class(status)
        title = "Server error" if fallback is PreloopError else None
        return fallback(f"HTTP {status}: {text}", title=title)
    found: Any = getattr(errors, detail.type, None)
    error: PreloopError
    if isinstance(found, type) and issubclass(found, PolicyError):  # PolicyTooLargeError too
        error = found(detail.problems or [])
    else:
        cls = found if isinstance(found, type) and issubclass(found, PreloopError) else None
        title = detail.title or None
        error = (cls or _error_class(status))(detail.message, title=title)
    error.add_note(f"(HTTP {status}, {detail.type})")
    return error


def _error_class(status: int) -> type[PreloopError]:
    return BY_STATUS.get(status, PreloopError)


def http_note(error: BaseException) -> str:
    """The ``(HTTP <status>, <type>)`` note of an error that came from the server, or ''."""
    notes = getattr(error, "__notes__", ())
    return next((n for n in notes if isinstance(n, str) and n.startswith("(HTTP ")), "")
