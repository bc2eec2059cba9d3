"""The Audit screen's state: the filter typed in its bar, and the pages of events loaded.

The filter is one line of ``field:value`` words, e.g. ``tool:push decision:deny since:2h``;
each field maps to a query parameter of ``GET /api/v1/audit/`` (``principal`` is the event's
actor, ``since`` / ``until`` take an ISO time or an age such as ``30m``, ``2h``, ``7d``). The
other words are a free-text search (``q``: in the kind, the actor or the data, any case); a
word with an unknown ``field:`` is refused rather than searched, so a typo is not silent.
The same filter narrows the export and decides which live events join the table, so the
table, the feed and the file always agree.

:class:`AuditLog` holds the events loaded so far, newest first. It pages backwards by seq
(``before_seq`` = the smallest seq loaded): only the pages the cursor reached are ever
fetched, however many events the store holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec

from hub.errors import ValidationError
from hub.moments import moment
from hub.wire import AuditEventView
from tui.feed import ActivityEvent

PAGE = 200
FIELDS = {"tool": "tool", "server": "server", "principal": "actor", "actor": "actor",
          "decision": "decision", "kind": "kind", "since": "since", "until": "until"}  # fmt: skip


class FilterError(ValidationError, ValueError):
    """A filter the bar cannot turn into a query; the message says which word and why. Still
    a ``ValueError``, as it was before it joined the error tree."""

    title = "Filter not understood"


class AuditFilter(msgspec.Struct, frozen=True, kw_only=True):
    text: str = ""
    tool: str | None = None
    server: str | None = None
    actor: str | None = None
    decision: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None

    @classmethod
    def parse(cls, text: str, now: datetime) -> AuditFilter:
        values: dict[str, Any] = {}
        words: list[str] = []
        for word in text.split():
            name, sep, value = word.partition(":")
            if not sep:
                words.append(word)
                continue
            if name.lower() not in FIELDS or not value:
                known = ", ".join(sorted(FIELDS))
                raise FilterError(f"{word!r}: use field:value words, with field one of {known}.")
            field = FIELDS[name.lower()]
            values[field] = _time(value, now) if field in ("since", "until") else value
        return cls(text=" ".join(text.split()), search=" ".join(words) or None, **values)

    def params(self) -> dict[str, str | int]:
        """The query parameters of the API (search and export) for this filter."""
        found: dict[str, str | int] = {}
        for field in ("tool", "server", "actor", "decision", "kind"):
            value = getattr(self, field)
            if value is not None:
                found[field] = value
        for field in ("since", "until"):
            moment = getattr(self, field)
            if moment is not None:
                found[field] = moment.isoformat()
        if self.search is not None:
            found["q"] = self.search
        return found

    def admits(self, event: AuditEventView | ActivityEvent) -> bool:
        """Whether a live event belongs in the table (what the server's search would say)."""
        data = event.data
        if self.kind is not None and not (
            event.kind.startswith(self.kind) if self.kind.endswith(".") else event.kind == self.kind
        ):
            return False
        return (
            (self.actor is None or event.actor == self.actor)
            and (self.since is None or event.at >= self.since)
            and (self.until is None or event.at < self.until)
            and all(
                data.get(field) == getattr(self, field)
                for field in ("tool", "server", "decision")
                if getattr(self, field) is not None
            )
            and (self.search is None or _mentions(event, self.search))
        )


def _mentions(event: AuditEventView | ActivityEvent, text: str) -> bool:
    needle = text.lower()
    haystacks = (event.kind, event.actor, json.dumps(event.data, ensure_ascii=True))
    return any(needle in haystack.lower() for haystack in haystacks)


def _time(value: str, now: datetime) -> datetime:
    try:
        return moment(value, now)
    except ValidationError as exc:
        raise FilterError(exc.message) from exc


class AuditLog:
    """The loaded events, newest first, keyed by seq; ``fetched`` counts every event received
    (pages and live), so tests can check that paging stays bounded."""

    def __init__(self) -> None:
        self.events: dict[int, AuditEventView | ActivityEvent] = {}
        self.exhausted = False  # the oldest page was loaded
        self.fetched = 0

    def __len__(self) -> int:
        return len(self.events)

    def reset(self, keep: Iterable[AuditEventView | ActivityEvent] = ()) -> None:
        """Forget the loaded events, except ``keep`` (live ones newer than a page in flight)."""
        self.events = {event.seq: event for event in keep}
        self.exhausted = False

    @property
    def oldest(self) -> int | None:
        return min(self.events) if self.events else None

    @property
    def newest(self) -> int:
        return max(self.events) if self.events else 0

    def next_page(self) -> dict[str, int]:
        """The cursor of the page after the loaded ones."""
        oldest = self.oldest
        return {"limit": PAGE} if oldest is None else {"limit": PAGE, "before_seq": oldest}

    def add_page(self, page: Iterable[AuditEventView]) -> list[AuditEventView]:
        added = [event for event in page if event.seq not in self.events]
        count = 0
        for event in page:
            self.events[event.seq] = event
            count += 1
        self.fetched += count
        if count < PAGE:
            self.exhausted = True
        return added

    def add_live(self, event: AuditEventView | ActivityEvent) -> bool:
        """A live event; ``False`` if it is known already (a catch-up page had it)."""
        self.fetched += 1
        if event.seq in self.events:
            return False
        self.events[event.seq] = event
        return True

    def get(self, seq: int) -> AuditEventView | ActivityEvent | None:
        return self.events.get(seq)
