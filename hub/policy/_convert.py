"""Convert plain data into strict msgspec Structs, collecting every problem, not the first.

``msgspec.convert`` stops at the first error. That is the fast path: when it succeeds there is
nothing to report. When it fails we walk the Struct's fields ourselves (unknown keys, missing
keys, then each field's value, recursing into nested Structs and lists of Structs) so that one
bad field does not hide another, and translate msgspec's ``$.a[0].b`` paths into full key
paths located through the :class:`SourceMap`.
"""

from __future__ import annotations

import difflib
import enum
import re
import types
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import msgspec

from hub.errors import Problem
from hub.policy._source import Path, SourceMap

T = TypeVar("T")

_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`$")
_CONSTRAINED = re.compile(r"^Expected `(?P<want>[^`]+)` (?P<rest>.+)$")
_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing (null)",
    "datetime": "a timestamp",
}


class Collector:
    """Problems found so far, each located through one source map."""

    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def add(self, path: Path, message: str, *, line: int | None = None) -> None:
        self.problems.append(self.source.problem(path, message, line=line))

    def in_file_order(self) -> list[Problem]:
        return sorted(self.problems, key=lambda p: (p.line or 0, p.column or 0))

    def convert(self, data: Any, type_: Any, path: Path) -> Any | None:
        """``data`` as ``type_``, or ``None`` after recording every problem found."""
        try:
            return msgspec.convert(data, type_)
        except msgspec.ValidationError as exc:
            before = len(self.problems)
            self._collect(data, type_, path)
            if len(self.problems) == before:  # our walk found nothing: report msgspec's view
                self._leaf_error(exc, type_, path)
            return None

    def convert_list(self, data: Any, item_type: type[T], path: Path) -> list[tuple[int, T]]:
        """Each item of a list converted on its own; returns the good ones with their index."""
        if data is None:
            return []
        if not isinstance(data, list):
            self.add(path, f"expected a list, got {_describe(data)}")
            return []
        good: list[tuple[int, T]] = []
        for index, item in enumerate(data):
            value = self.convert(item, item_type, (*path, index))
            if value is not None:
                good.append((index, value))
        return good

    def check_keys(self, data: dict[Any, Any], struct: type[msgspec.Struct], path: Path) -> None:
        """Unknown keys and missing required keys of a mapping meant for ``struct``."""
        fields = msgspec.structs.fields(struct)
        names = [f.encode_name for f in fields]
        for key in data:
            if key not in names:
                self.add((*path, key), _unknown_key_message(key, names))
        for f in fields:
            if f.required and f.encode_name not in data:
                self.add(path, f"missing required key '{f.encode_name}'")

    # -- the slow walk -----------------------------------------------------------------

    def _collect(self, data: Any, type_: Any, path: Path) -> None:
        struct = _struct_of(type_)
        if struct is not None:
            if data is None and _is_optional(type_):
                return
            if not isinstance(data, dict):
                self.add(path, f"expected a mapping, got {_describe(data)}")
                return
            before = len(self.problems)
            self.check_keys(data, struct, path)
            for f in msgspec.structs.fields(struct):
                if f.encode_name in data:
                    self._collect(data[f.encode_name], f.type, (*path, f.encode_name))
            if len(self.problems) == before:
                try:
                    msgspec.convert(data, type_)
                except msgspec.ValidationError as exc:
                    self._leaf_error(exc, type_, path)
            return
        item = _struct_items_of(type_)
        if item is not None:
            if not isinstance(data, list):
                self.add(path, f"expected a list, got {_describe(data)}")
                return
            for index, value in enumerate(data):
                self._collect(value, item, (*path, index))
            return
        try:
            msgspec.convert(data, type_)
        except msgspec.ValidationError as exc:
            self._leaf_error(exc, type_, path)

    def _leaf_error(self, exc: msgspec.ValidationError, type_: Any, path: Path) -> None:
        match = _AT.match(str(exc))
        assert match is not None  # the pattern matches any text
        message = match.group("message")
        full = path
        for name, index in _PATH_PART.findall(match.group("path") or ""):
            if name:
                full = (*full, name)
            elif index == "...":
                break
            else:
                full = (*full, int(index))
        self.add(full, _friendly(message, type_))


def _friendly(message: str, type_: Any) -> str:
    expected = _EXPECTED.match(message)
    if expected:
        want = _TYPE_WORDS.get(expected["want"], f"`{expected['want']}`")
        got = _TYPE_WORDS.get(expected["got"], f"`{expected['got']}`")
        return f"expected {want}, got {got}"
    if "matching regex '^(user|team|role)" in message:
        return "expected an approver like user:alice@example.com, team:oncall or role:approver"
    constrained = _CONSTRAINED.match(message)
    if constrained:
        want = _TYPE_WORDS.get(constrained["want"], f"`{constrained['want']}`")
        return f"expected {want} {constrained['rest']}"
    if message.startswith("Invalid enum value"):
        choices = _enum_choices(type_)
        value = message.removeprefix("Invalid enum value ").strip()
        if choices:
            return f"invalid value {value}: expected one of {', '.join(choices)}"
        return f"invalid value {value}"
    if message.startswith("Object contains unknown field"):
        return message.replace("Object contains unknown field", "unknown key")
    if message.startswith("Object missing required field"):
        return message.replace("Object missing required field", "missing required key")
    return message[:1].lower() + message[1:]


def _unknown_key_message(key: Any, names: list[str]) -> str:
    text = str(key)
    prefixed = [n for n in names if n.startswith(text) or text.startswith(n)]
    close = prefixed[:1] or difflib.get_close_matches(text, names, n=1)
    if close:
        return f"unknown key '{key}' (did you mean '{close[0]}'?)"
    return f"unknown key '{key}' (allowed: {', '.join(names)})"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return type(value).__name__


def _strip(type_: Any) -> Any:
    while get_origin(type_) is Annotated:
        type_ = get_args(type_)[0]
    return type_


def _union_members(type_: Any) -> tuple[Any, ...]:
    type_ = _strip(type_)
    if get_origin(type_) in (Union, types.UnionType):
        return tuple(_strip(a) for a in get_args(type_))
    return (type_,)


def _is_optional(type_: Any) -> bool:
    return type(None) in _union_members(type_)


def _struct_of(type_: Any) -> type[msgspec.Struct] | None:
    """The Struct type of ``S`` or ``S | None``, else None."""
    members = [m for m in _union_members(type_) if m is not type(None)]
    if (
        len(members) == 1
        and isinstance(members[0], type)
        and issubclass(members[0], msgspec.Struct)
    ):
        return members[0]
    return None


def _struct_items_of(type_: Any) -> type[msgspec.Struct] | None:
    """The Struct type ``S`` of ``tuple[S, ...]`` or ``list[S]``, else None."""
    members = [m for m in _union_members(type_) if m is not type(None)]
    if len(members) != 1:
        return None
    origin = get_origin(members[0])
    if origin not in (tuple, list):
        return None
    args = get_args(members[0])
    if not args:
        return None
    return _struct_of(args[0])


def _enum_choices(type_: Any) -> list[str]:
    for member in _union_members(type_):
        if isinstance(member, type) and issubclass(member, enum.Enum):
            return [str(e.value) for e in member]
        for arg in get_args(member):  # tuple[Enum, ...]
            arg = _strip(arg)
            if isinstance(arg, type) and issubclass(arg, enum.Enum):
                return [str(e.value) for e in arg]
    return []
