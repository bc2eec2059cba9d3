"""The text an embedder reads of an issue (and of a draft not yet filed): the title, a blank
line, the body; capped at ``MAX_CHARS`` so one long issue costs no more than a page of text
(embedding models read a few hundred tokens; the rest would be cut by them anyway)."""

from __future__ import annotations

from hub.trackers.records import Issue

MAX_CHARS = 8_000


def draft_text(title: str, description: str) -> str:
    """What is embedded of a title and description: ``title``, a blank line, ``description``
    (just the title when there is none), at most ``MAX_CHARS`` characters."""
    title, description = title.strip(), description.strip()
    text = f"{title}\n\n{description}" if description else title
    return text[:MAX_CHARS]


def issue_text(issue: Issue) -> str:
    """What is embedded of a synced issue (its title and body, as ``draft_text``)."""
    return draft_text(issue.title, issue.body)
