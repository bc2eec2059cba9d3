"""Matching a URI against an RFC 6570 URI template, to learn which upstream serves it.

Only matching, never expansion: each expression becomes a pattern that accepts whatever its
operator could expand to (a simple ``{var}`` stops at ``/``, ``?`` and ``#``; ``{+var}`` and
``{#var}`` take anything; ``{/var}``, ``{.var}``, ``{;var}`` take their prefixed segments;
``{?var}`` and ``{&var}`` a query). Literal text must match exactly.
"""

from __future__ import annotations

import re

_EXPRESSION = re.compile(r"\{([^{}]*)\}")
_SEGMENT = r"[^/?#]*"
_BY_OPERATOR = {
    "+": r".*",
    "#": r".*",
    "/": r"(?:/[^/?#]*)*",
    ".": r"(?:\.[^/?#]*)*",
    ";": r"(?:;[^/?#]*)*",
    "?": r"(?:[?&][^#]*)?",
    "&": r"(?:&[^#]*)?",
}


def template_pattern(template: str) -> re.Pattern[str]:
    """A pattern whose ``fullmatch`` says whether a URI could come from ``template``."""
    parts: list[str] = []
    position = 0
    for expression in _EXPRESSION.finditer(template):
        parts.append(re.escape(template[position : expression.start()]))
        parts.append(_BY_OPERATOR.get(expression.group(1)[:1], _SEGMENT))
        position = expression.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts), re.DOTALL)


def matches(pattern: re.Pattern[str], uri: str) -> bool:
    return pattern.fullmatch(uri) is not None
