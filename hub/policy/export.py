"""The canonical YAML form of a policy.

Canonical means: fields in schema order, default values omitted, mappings such as ``env``
sorted by key, lists indented under their key, multi-line strings as ``|`` blocks, no line
folding. The same document always gives the same bytes, so the canonical text is what is
stored, hashed (``CompiledPolicy.digest``) and diffed:

    load_policy(export_policy(d)).document == d
    export_policy(load_policy(export_policy(d)).document) == export_policy(d)

Diffs between two policy texts load both, so they live beside the loader
(:mod:`hub.policy.diff`): this module never imports the loader, which imports it.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import math
import re
import unicodedata
from typing import Any

import msgspec
import yaml

from hub.policy.model import Defaults, PolicyDocument

__all__ = ["export_policy", "policy_digest"]

_SORTED_MAPPINGS = frozenset({"env", "headers"})
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()
_PLAIN_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/.$(")
# characters a double-quoted scalar must escape beyond what JSON escapes: DEL and C1 controls
# (the YAML reader rejects most; U+0085 is a line break), line/paragraph separators, BOM,
# non-characters
_MUST_ESCAPE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def export_policy(document: PolicyDocument) -> str:
    """The canonical YAML text of ``document``."""
    lines: list[str] = []
    _mapping(_to_data(document), 0, lines, None)
    return "\n".join(lines) + "\n"


# Fields exported even when they hold their default: a policy that has a ``defaults`` section
# states every fallback decision explicitly, so a reviewer never has to know the defaults.
_ALWAYS_SHOWN: dict[type[msgspec.Struct], tuple[str, ...]] = {
    Defaults: ("action", "unknown_tools", "on_error"),
}


def _to_data(value: Any) -> Any:
    """Plain data, fields in schema order, every field equal to its default left out.

    (msgspec's own ``omit_defaults`` compares strings by identity, so a loaded ``"mcp"``
    would not count as the default ``"mcp"``.)"""
    if isinstance(value, msgspec.Struct):
        out: dict[str, Any] = {}
        shown = _ALWAYS_SHOWN.get(type(value), ())
        for field in _fields(type(value)):
            item = getattr(value, field.name)
            if field.name in shown:
                out[field.encode_name] = _to_data(item)
                continue
            if field.default is not msgspec.NODEFAULT and item == field.default:
                continue
            if field.default_factory is not msgspec.NODEFAULT and item == field.default_factory():
                continue
            out[field.encode_name] = _to_data(item)
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_to_data(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_data(item) for key, item in value.items()}
    return value


@functools.cache
def _fields(cls: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    return msgspec.structs.fields(cls)


# -- a small canonical emitter -------------------------------------------------------------
# PyYAML's emitter is slow (about 12 s for a 10,000-tool policy) and its exact output may
# change between versions; canonical bytes must not. The data is simple (mappings, lists,
# strings, integers, booleans), and the round-trip property test checks this emitter
# against PyYAML's loader.


def _mapping(data: dict[str, Any], indent: int, lines: list[str], first: str | None) -> None:
    pad = " " * indent
    for position, (key, value) in enumerate(data.items()):
        lead = first if position == 0 and first is not None else pad
        _value(f"{lead}{_inline(str(key))}:", value, indent, lines, key=str(key))


def _value(head: str, value: Any, indent: int, lines: list[str], key: str | None = None) -> None:
    if isinstance(value, dict) and value:
        lines.append(head)
        items = sorted(value.items()) if key in _SORTED_MAPPINGS else value.items()
        _mapping(dict(items), indent + 2, lines, None)
    elif isinstance(value, list | tuple) and value:
        lines.append(head)
        _sequence(value, indent + 2, lines)
    else:
        _scalar_after(head, value, indent + 2, lines)


def _sequence(items: list[Any] | tuple[Any, ...], indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for item in items:
        if isinstance(item, dict) and item:
            _mapping(item, indent + 2, lines, f"{pad}- ")
        elif isinstance(item, list | tuple) and item:
            lines.append(f"{pad}-")
            _sequence(item, indent + 2, lines)
        else:
            _scalar_after(f"{pad}-", item, indent + 2, lines)


def _scalar_after(head: str, value: Any, indent: int, lines: list[str]) -> None:
    if isinstance(value, str) and _block_ok(value):
        lines.append(f"{head} |" if value.endswith("\n") else f"{head} |-")
        pad = " " * indent
        lines.extend(
            f"{pad}{line}" if line else "" for line in value.removesuffix("\n").split("\n")
        )
    else:
        lines.append(f"{head} {_inline(value)}")


def _inline(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value) if math.isfinite(value) else _special_float(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    text = str(value)
    if _plain_ok(text):
        return text
    return _MUST_ESCAPE.sub(
        lambda m: f"\\u{ord(m.group(0)):04x}", json.dumps(text, ensure_ascii=False)
    )


def _special_float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    return ".inf" if value > 0 else "-.inf"


def _plain_ok(text: str) -> bool:
    if not text or text[0] not in _PLAIN_FIRST or text != text.strip(" "):
        return False
    if text.startswith(("---", "...")) or text.endswith(":") or ": " in text or "#" in text:
        return False
    for char in text:
        if " " <= char <= "~":
            continue
        if char < "\x80" or unicodedata.category(char)[0] not in "LMNPS":
            return False
        if _MUST_ESCAPE.match(char):
            return False
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return bool(tag == _STR_TAG)


def _block_ok(text: str) -> bool:
    """A ``|`` block holds ``text`` exactly: several lines, no trailing blanks, no specials."""
    if "\n" not in text or text.startswith((" ", "\n")) or text.endswith("\n\n"):
        return False
    for line in text.removesuffix("\n").split("\n"):
        if line != line.rstrip():
            return False
    for char in text:
        if char == "\n" or " " <= char <= "~":
            continue
        if char < "\x80" or unicodedata.category(char)[0] not in "LMNPS":
            return False
        if _MUST_ESCAPE.match(char):
            return False
    return True


def policy_digest(canonical_text: str) -> str:
    """sha256 of a canonical export, hex: the policy's identity in decisions and audit."""
    return hashlib.sha256(canonical_text.encode("utf-8")).hexdigest()
