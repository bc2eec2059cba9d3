"""JSON nested too deeply to read, refused as a ``ValidationError`` instead of crashing.

msgspec decodes JSON (and skips unknown fields, converts and encodes values) recursively: one
C-level call per nested array or object, guarded by the interpreter's recursion limit. A body
nested deeper than that allows (about a thousand levels; no real request comes close) raises
``RecursionError``, which is neither a ``msgspec.DecodeError`` nor a ``PreloopError``, so an
edge that caught only the former answered 500. Every edge that decodes JSON someone sent (the
model gateway, the REST API's bodies, the WebSocket) decodes inside ``refuse_deep_json``: the
error is translated once, at that seam, into a 400 in the surface's own envelope.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hub.errors import ValidationError


def too_deep(what: str) -> ValidationError:
    return ValidationError(
        f"{what} is JSON nested too deeply to read (arrays and objects inside each other about "
        "a thousand levels deep or more)"
    )


@contextmanager
def refuse_deep_json(what: str) -> Iterator[None]:
    """Translate a ``RecursionError`` raised inside into ``too_deep(what)``."""
    try:
        yield
    except RecursionError as exc:
        raise too_deep(what) from exc
