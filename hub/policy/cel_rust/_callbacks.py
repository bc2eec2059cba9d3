"""Python functions the Rust programs call: ``matches``, ``size`` of a string, conversions
and the other functions whose answers must be cel-python's."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import re2
from celpy import celtypes
from celpy.evaluation import CELEvalError, base_functions

from hub.policy.cel_python import _QUIET_RE2, _to_python
from hub.policy.cel_rust._values import _BAIL, _MISSING, _from_rust, _kind_of

_PATTERNS: dict[str, Any] = {}
_PATTERN_CACHE_SIZE = 1024


def _regex(pattern: str) -> Any:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        if len(_PATTERNS) >= _PATTERN_CACHE_SIZE:
            _PATTERNS.clear()
        try:
            compiled = re2.compile(pattern, _QUIET_RE2)
        except re2.error:
            compiled = _BAIL
        _PATTERNS[pattern] = compiled
    return compiled


def _matches(text: Any, pattern: Any) -> Any:
    """``matches`` exactly as cel-python runs it (``re2.search``)."""
    if type(text) is not str or type(pattern) is not str:
        return _BAIL
    compiled = _regex(pattern)
    return _BAIL if compiled is _BAIL else compiled.search(text) is not None


def _string_size(value: Any) -> Any:
    """``size`` of a string in code points, as cel-python counts it."""
    return len(value) if type(value) is str else _BAIL


def _to_celpy(value: Any) -> Any:
    """A scalar Rust value as cel-python's own type (``_MISSING`` for anything else)."""
    kind = type(value)
    converter = {
        bool: celtypes.BoolType,
        int: celtypes.IntType,
        float: celtypes.DoubleType,
        str: celtypes.StringType,
        bytes: celtypes.BytesType,
        datetime.datetime: celtypes.TimestampType,
        datetime.timedelta: celtypes.DurationType,
    }.get(kind)
    if converter is not None:
        return converter(value)
    return None if value is None else _MISSING


# cel-python's string(t) and bytes(t) show the timestamp's own UTC offset, which the UTC copy
# Rust holds has lost: let cel-python evaluate those.
_OFFSET_SENSITIVE = frozenset({"string", "bytes"})


def _celpy_function(name: str) -> Callable[..., Any]:
    """A callback running cel-python's function ``name`` on scalar arguments."""
    function = base_functions[name]
    offset_sensitive = name in _OFFSET_SENSITIVE

    def call(*args: Any) -> Any:
        converted = []
        for arg in args:
            if offset_sensitive and type(arg) is datetime.datetime:
                return _BAIL
            value = _to_celpy(arg)
            if value is _MISSING:
                return _BAIL
            converted.append(value)
        try:
            result = function(*converted)
        except Exception:
            return _BAIL
        if isinstance(result, CELEvalError):
            return _BAIL
        plain = _to_python(result)
        return plain if _kind_of(plain) is not None and _from_rust(plain) is not _BAIL else _BAIL

    call.__name__ = f"celpy_{name}"
    return call


_GETTERS = frozenset(
    {
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getFullYear",
        "getHours",
        "getMilliseconds",
        "getMinutes",
        "getMonth",
        "getSeconds",
    }
)
# Conversion functions and the kind of value they return.
_CONVERSIONS = {
    "int": "int",
    "double": "double",
    "string": "string",
    "bytes": "bytes",
    "bool": "bool",
    "timestamp": "timestamp",
    "duration": "duration",
}
_STRING_TESTS = frozenset({"contains", "startsWith", "endsWith"})

_CALLBACKS: dict[str, Callable[..., Any]] = {
    "_pl_re": _matches,
    "_pl_size": _string_size,
    **{
        f"_pl_fn_{name}": _celpy_function(name)
        for name in (*_CONVERSIONS, *_STRING_TESTS, *_GETTERS)
    },
}
