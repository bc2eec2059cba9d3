"""The shapes of request fields, stated in the OpenAPI document as the routes check them.

The hub checks names, emails, URLs, references, tool patterns and amounts itself, with
messages that say what is expected (``invalid base URL '...': expected http(s)://host...``);
a msgspec ``pattern`` would answer first with the regex instead. So these helpers give the
document the pattern (from the hub's own constant) as a schema extra, and leave the check
to the hub. tests/integration/test_api_openapi.py fuzzes the server against the document,
so a pattern looser than the check fails there (valid data rejected)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec


def _string(pattern: str, max_length: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "pattern": pattern}
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


def shaped(pattern: str, *, min_length: int | None = None, max_length: int | None = None) -> Any:
    """The ``Meta`` of a string the hub checks against ``pattern`` (lengths checked here)."""
    extra = {"pattern": pattern}
    return msgspec.Meta(
        min_length=min_length, max_length=max_length, extra_json_schema={"extra": extra}
    )


def each(pattern: str, *, max_items: int | None = None, max_length: int | None = None) -> Any:
    """The ``Meta`` of a list whose items the hub checks against ``pattern``."""
    extra = {"items": _string(pattern, max_length)}
    return msgspec.Meta(max_length=max_items, extra_json_schema={"extra": extra})


def keyed(key_pattern: str, value_pattern: str) -> Any:
    """The ``Meta`` of a dict whose keys and values the hub checks against these patterns."""
    extra = {
        "property_names": _string(key_pattern),
        "additional_properties": _string(value_pattern),
    }
    return msgspec.Meta(extra_json_schema={"extra": extra})


def dollars(maximum: Decimal, *, nullable: bool = False) -> Any:
    """The ``Meta`` of an amount of US dollars from 0 to ``maximum`` (a power of ten): a
    decimal string (``"0.0025"``) or a JSON number, as msgspec reads a ``Decimal``;
    ``nullable`` for a field that may be ``null`` too."""
    digits = len(str(int(maximum))) - 1
    assert Decimal(10) ** digits == maximum, "the maximum is a power of ten"
    pattern = rf"^(?:[0-9]{{1,{digits}}}(?:\.[0-9]+)?|{int(maximum)}(?:\.0+)?)$"
    types = ["string", "number", "null"] if nullable else ["string", "number"]
    extra = {
        "type": types,
        "one_of": None,  # Litestar's oneOf of a string and null: the types above say it
        "pattern": pattern,
        "minimum": 0,
        "maximum": int(maximum),
    }
    return msgspec.Meta(extra_json_schema={"extra": extra})
