"""Values between Python, cel-python and Rust: what Rust may read (``_plain``), what it
returns (``_from_rust``), whether both interpreters agree (``_same``), and CEL kinds."""

from __future__ import annotations

import datetime
import math
from typing import Any

from celpy import celtypes

_UTC = datetime.UTC
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_MAX_DURATION_SECONDS = 315_576_000_000  # cel-python's DurationType range


class _Marker:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


# Returned by a Python callback to make the Rust program fail (Rust cannot convert it; a raised
# exception would work too, but the library logs those as warnings).
_BAIL: Any = _Marker("<bail>")
_NOT_PLAIN: Any = _Marker("<not plain>")
_MISSING: Any = _Marker("<missing>")


_SCALARS = frozenset({str, bool, float, type(None)})


def _plain(value: Any) -> Any:
    """``value`` as Rust should see it, or ``_NOT_PLAIN`` if Rust and cel-python could read it
    differently (only exact JSON-like types, string map keys, aware datetimes; datetimes are
    moved to UTC, which keeps the instant and is what cel-python's getters use). Returns the
    same object when nothing needs to change. Called once per decision: scalars are checked
    inline rather than by a call each."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else _NOT_PLAIN
    if kind is dict:
        copy: dict[str, Any] | None = None
        for key, item in value.items():
            if type(key) is not str:
                return _NOT_PLAIN
            item_kind = type(item)
            if item_kind in _SCALARS or (item_kind is int and _INT_MIN <= item <= _INT_MAX):
                continue
            converted = _plain(item)
            if converted is _NOT_PLAIN:
                return _NOT_PLAIN
            if converted is not item:
                copy = copy if copy is not None else dict(value)
                copy[key] = converted
        return copy if copy is not None else value
    if kind is list or kind is tuple:
        items: list[Any] | None = None
        for index, item in enumerate(value):
            item_kind = type(item)
            if item_kind in _SCALARS or (item_kind is int and _INT_MIN <= item <= _INT_MAX):
                continue
            converted = _plain(item)
            if converted is _NOT_PLAIN:
                return _NOT_PLAIN
            if converted is not item:
                items = items if items is not None else list(value)
                items[index] = converted
        return items if items is not None else value
    if kind is datetime.datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            return _NOT_PLAIN
        return value if value.tzinfo is _UTC else value.astimezone(_UTC)
    if kind is datetime.timedelta:
        return value if abs(value.total_seconds()) <= _MAX_DURATION_SECONDS else _NOT_PLAIN
    return _NOT_PLAIN


def _from_rust(value: Any) -> Any:
    """A Rust result as the plain Python value cel-python's engine returns, or ``_BAIL``."""
    kind = type(value)
    if kind is bool or kind is str or kind is float or value is None or kind is bytes:
        return value
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else _BAIL  # a uint cannot occur
    if kind is list:
        items = [_from_rust(item) for item in value]
        return _BAIL if any(item is _BAIL for item in items) else items
    if kind is dict:
        entries = {key: _from_rust(item) for key, item in value.items()}
        return _BAIL if any(item is _BAIL for item in entries.values()) else entries
    if kind is datetime.datetime:
        return value.astimezone(_UTC) if value.utcoffset() == datetime.timedelta(0) else _BAIL
    if kind is datetime.timedelta:
        return value
    return _BAIL


def _same(expected: Any, actual: Any) -> bool:
    """Whether a Rust value is exactly cel-python's (type, float sign and NaN, UTC offset)."""
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, float):
        if math.isnan(expected):
            return math.isnan(actual)
        return bool(expected == actual) and math.copysign(1, expected) == math.copysign(1, actual)
    if isinstance(expected, datetime.datetime):
        return bool(expected == actual) and actual.utcoffset() == datetime.timedelta(0)
    if isinstance(expected, list):
        return len(expected) == len(actual) and all(map(_same, expected, actual))
    if isinstance(expected, dict):
        return expected.keys() == actual.keys() and all(
            _same(expected[key], actual[key]) for key in expected
        )
    return bool(expected == actual)


_CELTYPES = (
    celtypes.BoolType,
    celtypes.IntType,
    celtypes.DoubleType,
    celtypes.StringType,
    celtypes.BytesType,
    celtypes.TimestampType,
    celtypes.DurationType,
)


def _deep_celtype(value: Any) -> bool:
    """Whether a cel-python value, and every value inside it, is one of cel-python's own types
    (cel-python's ``+`` returns plain ``str``/``float``/``bytes``/``list``, which behave
    differently: a plain ``str`` has no ``contains``)."""
    if value is None or isinstance(value, _CELTYPES):
        return True
    if isinstance(value, celtypes.ListType):
        return all(_deep_celtype(item) for item in value)
    if isinstance(value, celtypes.MapType):
        return all(_deep_celtype(item) for item in value.values())
    return False


def _kind_of(value: Any) -> str | None:
    kind = type(value)
    return {
        bool: "bool",
        int: "int",
        float: "double",
        str: "string",
        bytes: "bytes",
        type(None): "null_type",
        list: "list",
        dict: "map",
        datetime.datetime: "timestamp",
        datetime.timedelta: "duration",
    }.get(kind)
