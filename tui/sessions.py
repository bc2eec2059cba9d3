"""The Sessions screens' state: the search typed in the bar, and how sessions, times and
snippets read on screen.

The search bar takes free words (what to find in the captured text) and ``field:value``
words that narrow it, e.g. ``refund policy model:gpt-4o since:2h type:similarity``; each field
maps to a query parameter of ``GET /api/v1/gateway/interactions`` (``since``/``until`` take an
ISO time or an age, like the Audit screen's bar). A word with an unknown field is refused
rather than searched, so a typo never silently finds nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from rich.text import Text

from hub.errors import ValidationError
from hub.moments import moment
from hub.wire.sessions import snippet_parts
from tui.audit_log import FilterError

SEARCH_TYPES = ("fulltext", "similarity")
FIELDS = ("type", "model", "flow", "principal", "session", "since", "until")
MATCH_STYLE = "bold reverse"  # a highlighted match: reads in light and dark themes alike
_STATE_MARK = {"active": "●", "ended": "○"}


class InteractionFilter(msgspec.Struct, frozen=True, kw_only=True):
    text: str = ""  # as typed (normalised spaces)
    q: str = ""
    search_type: str = "fulltext"
    model: str | None = None
    flow: str | None = None
    principal: str | None = None
    session: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, text: str, now: datetime) -> InteractionFilter:
        values: dict[str, object] = {}
        words: list[str] = []
        for word in text.split():
            name, sep, value = word.partition(":")
            if not sep or "://" in word:
                words.append(word)
                continue
            field = name.lower()
            if field not in FIELDS or not value:
                raise FilterError(
                    f"{word!r}: use field:value words, with field one of {', '.join(FIELDS)}."
                )
            if field == "type":
                if value not in SEARCH_TYPES:
                    raise FilterError(f"{word!r}: the type is fulltext or similarity.")
                values["search_type"] = value
            elif field in ("since", "until"):
                try:
                    values[field] = moment(value, now)
                except ValidationError as exc:
                    raise FilterError(exc.message) from exc
            else:
                values[field] = value
        if not words:
            raise FilterError("Type the words to search for (field:value words only narrow it).")
        return cls(text=" ".join(text.split()), q=" ".join(words), **values)  # type: ignore[arg-type]  # checked above

    def filters(self) -> dict[str, Any]:
        """The search's arguments besides ``q`` (``ApiClient.search_interactions``)."""
        return {
            "search_type": self.search_type,
            "model": self.model,
            "flow": self.flow,
            "principal": self.principal,
            "session": self.session,
            "since": self.since,
            "until": self.until,
        }


def ago(when: datetime | None, now: datetime) -> str:
    """How long ago, shortly: ``45s ago``, ``12m ago``, ``3h ago``, ``2d ago``."""
    if when is None:
        return "-"
    seconds = max(0, int((now - when).total_seconds()))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def state_text(status: str) -> Text:
    """A session's state as a mark and a word (read without colour too)."""
    style = "bold" if status == "active" else ""
    return Text(f"{_STATE_MARK.get(status, '?')} {status}", style=style)


def cut(text: str, width: int) -> str:
    """``text`` within ``width`` characters, cut with ``…`` when longer."""
    return text if len(text) <= width else text[: width - 1] + "…"


def snippet_text(snippet: str, one_line: bool = True) -> Text:
    """A search snippet with its matches highlighted (the server marks them)."""
    text = Text()
    source = " ".join(snippet.split()) if one_line else snippet
    for part, match in snippet_parts(source):
        text.append(part, style=MATCH_STYLE if match else "")
    return text
