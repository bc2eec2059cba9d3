"""How the clients read runtime sessions and captured interactions (the shapes are in
:mod:`hub.wire.capture`): the snippet's match markers, why a call shows no content, and
captured JSON made readable. The CLI (``preloop sessions``) and the dashboard's Sessions
screens both use these, so they say the same thing.

Content (``request``, ``response``, ``snippet``) is in an answer only for admins and approvers
and only for what was captured with content; a viewer's answer has ``null`` there.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.wire.capture import InteractionView

# How a snippet marks the words that matched: the server writes each match as ``[[word]]``.
HIGHLIGHT = ("[[", "]]")


def snippet_parts(snippet: str) -> list[tuple[str, bool]]:
    """``snippet`` as runs of text, each with whether it is a highlighted match:
    ``"a [[b]] c"`` → ``[("a ", False), ("b", True), (" c", False)]``. A marker left open
    highlights to the end; text without markers is one plain run."""
    start, end = HIGHLIGHT
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


def score_text(score: float | None) -> str:
    """A match's score to read: three significant digits (full-text ranks can be tiny)."""
    return "-" if score is None else f"{score:.3g}"
