"""Runtime sessions and captured gateway interactions as the REST API answers them.

``GET /api/v1/runtime/sessions`` lists sessions (a flow execution, or the caller's
``X-Preloop-Session-Id``) from the usage ledger, so they list even when capture is off;
``GET /api/v1/runtime/sessions/{id}`` is one session with its timeline of interactions;
``GET /api/v1/gateway/interactions`` searches the captured interactions. Content (``request``,
``response``, ``snippet``) is in an answer only for admins and approvers and only for what was
captured with content: every content field is optional, and a viewer's answer simply lacks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec


class RuntimeSessionView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    flow: str | None = None
    principal: str = ""
    execution_id: str | None = None
    models: list[str] = []
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: str = "0"  # US dollars
    started_at: datetime | None = None
    last_at: datetime | None = None
    status: str = "ended"  # active | ended


class RuntimeSessionList(msgspec.Struct, frozen=True, kw_only=True):
    sessions: list[RuntimeSessionView]


class InteractionView(msgspec.Struct, frozen=True, kw_only=True):
    """One gateway request of a session. ``captured`` is the capture mode it was stored
    under (``metadata``, ``redacted_preview``, ``full``), ``None`` when nothing was captured;
    ``request``/``response`` are its (redacted, capped) text when the caller may read it."""

    id: str
    created_at: datetime
    endpoint: str = ""
    model: str = ""
    status: int = 0  # the HTTP status the gateway answered
    outcome: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost: str = "0"
    latency_ms: float = 0.0
    captured: str | None = None
    request: str | None = None
    response: str | None = None
    truncated: bool = False
    session: str | None = None
    flow: str | None = None
    principal: str | None = None


class RuntimeSessionDetail(msgspec.Struct, frozen=True, kw_only=True):
    session: RuntimeSessionView
    interactions: list[InteractionView]


class InteractionHit(InteractionView, frozen=True, kw_only=True):
    """A search result: the interaction, its score and a snippet of the matching text
    (highlighted; ``None`` for a caller who may not read content)."""

    score: float = 0.0
    snippet: str | None = None


class InteractionSearch(msgspec.Struct, frozen=True, kw_only=True):
    engine: str = ""  # what served the search (e.g. ``sqlite-fts5``, ``postgresql-tsvector``)
    model: str | None = None  # the embedder's identity for a similarity search
    interactions: list[InteractionHit]


# How a snippet marks the words that matched: the server writes each match between a pair of
# markers (``ts_headline``'s and FTS5's ``snippet()`` take them as arguments).
HIGHLIGHTS: tuple[tuple[str, str], ...] = (("[[", "]]"), ("<b>", "</b>"), ("<mark>", "</mark>"))


def snippet_parts(snippet: str) -> list[tuple[str, bool]]:
    """``snippet`` as runs of text, each with whether it is a highlighted match:
    ``"a <b>b</b> c"`` → ``[("a ", False), ("b", True), (" c", False)]``. A marker left open
    highlights to the end; text without markers is one plain run."""
    opening = next((pair for pair in HIGHLIGHTS if pair[0] in snippet), None)
    if opening is None:
        return [(snippet, False)] if snippet else []
    start, end = opening
    parts: list[tuple[str, bool]] = []
    rest = snippet
    while rest:
        before, found, after = rest.partition(start)
        if before:
            parts.append((before, False))
        if not found:
            break
        match, _, rest = after.partition(end)
        if match:
            parts.append((match, True))
    return parts


CAPTURE_OFF = (
    "Nothing was captured: capture of gateway content is off by default. An admin turns it "
    "on per account, flow or API key (PUT /api/v1/gateway/capture; see docs/search.md)."
)
TURN_CAPTURE_ON = (
    "Searching what sessions sent and received needs content capture, which is off by "
    "default: an admin turns it on per account, flow or API key (PUT /api/v1/gateway/capture; "
    "see docs/search.md)."
)
CONTENT_WITHHELD = "Content is not shown to this key: admins and approvers read it."
METADATA_ONLY = "Captured as metadata only: no request or response text was kept."


def content_note(calls: Sequence[InteractionView]) -> str:
    """Why no request or response text is shown for ``calls``, when none is ('' when some
    is): nothing was captured, the key may not read it, or only metadata was kept."""
    if any(c.request is not None or c.response is not None for c in calls):
        return ""
    if all(c.captured is None for c in calls):
        return CAPTURE_OFF
    if any(c.captured not in (None, "metadata") for c in calls):
        return CONTENT_WITHHELD
    return METADATA_ONLY


def readable(text: str) -> str:
    """Captured content to read: a whole JSON document indented, anything else (plain text,
    or JSON cut at the capture's size limit) as it is."""
    import json

    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
