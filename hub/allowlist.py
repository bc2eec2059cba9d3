"""Per-API-key tool allow-lists: glob patterns over the tool names an agent sees.

A key without patterns sees every tool. A key with patterns sees, and may call, only the
tools whose exposed name ``<server>__<tool>`` matches at least one of them (the policy still
decides each call on top); the built-in ``get_approval_status`` is always there. Preloop's
built-in tools (hub/builtin_tools) are matched by their bare names: ``get_issue``,
``search``, ``*_pull_request`` (``*`` matches them too).

Patterns: ``*`` matches any run of characters (none included), ``?`` exactly one; every other
character stands for itself (``[`` too); matching is case-sensitive, like tool names.
``github__*`` is every tool of the server ``github``, ``db__query`` one tool, ``*__read_*``
the ``read_`` tools of every server. See docs/decisions/0007-key-tool-allow-lists.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from hub.builtin_tools.names import BUILTIN_TOOL_NAMES, BUILTIN_TOOLS
from hub.errors import ValidationError
from hub.keys import Caller

MAX_PATTERNS = 100
MAX_PATTERN_LENGTH = 200
ALWAYS_ALLOWED = frozenset({"get_approval_status"})  # hub.tool_calls.STATUS_TOOL
_SEPARATOR = "__"
_WILDCARDS = frozenset("*?")
# The shape check_patterns accepts, for the OpenAPI document: a wildcard or the separator,
# printable ASCII without spaces (check_patterns also takes other printable characters).
PATTERN_SHAPE = (
    r"^(?:get_approval_status|" + "|".join(BUILTIN_TOOL_NAMES) + r"|[!-~]*(?:[*?]|__)[!-~]*)$"
)


def check_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """The patterns of an allow-list, validated, duplicates dropped (first one kept).

    Raises ``ValidationError`` naming the pattern that is wrong and why."""
    checked: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise ValidationError("a tool pattern must be a non-empty string")
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise ValidationError(
                f"tool pattern {pattern[:40]!r}... is longer than {MAX_PATTERN_LENGTH} characters"
            )
        if any(c.isspace() or not c.isprintable() for c in pattern):
            raise ValidationError(
                f"tool pattern {pattern!r} contains whitespace or a control character"
            )
        literal = not _WILDCARDS & set(pattern)
        named = pattern in ALWAYS_ALLOWED or pattern in BUILTIN_TOOLS
        if literal and _SEPARATOR not in pattern and not named:
            raise ValidationError(
                f"tool pattern {pattern!r} matches no tool: tools are named "
                f"<server>__<tool> or are built-in ({', '.join(BUILTIN_TOOL_NAMES)}); did "
                f"you mean '{pattern}__*' for every tool of a server?"
            )
        if pattern not in checked:
            checked.append(pattern)
    if len(checked) > MAX_PATTERNS:
        raise ValidationError(f"a key may carry at most {MAX_PATTERNS} tool patterns")
    return tuple(checked)


def matches(patterns: tuple[str, ...], name: str) -> bool:
    """Whether ``name`` matches at least one of ``patterns`` (an empty list matches all)."""
    return not patterns or _matcher(patterns).fullmatch(name) is not None


def key_allows(caller: Caller, exposed_name: str) -> bool:
    """Whether the caller's key may see and call the tool an agent knows as ``exposed_name``."""
    return exposed_name in ALWAYS_ALLOWED or matches(caller.tools, exposed_name)


@lru_cache(maxsize=1024)
def _matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regular expression for a whole allow-list (compiled once per distinct list)."""
    alternatives = (
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        for pattern in patterns
    )
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.DOTALL)
