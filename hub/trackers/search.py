"""Full-text matching of synced issues: the engine ``IssueStore.search`` uses until the
vector engine arrives (issue 16). Words are lower-cased runs of letters and digits; an issue
matches a query when every filter holds and at least one query word appears in its title or
body; it ranks by how many distinct query words appear (title words count double), then by
``updated_at`` newest first, then id."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from hub.trackers.records import Issue, IssueQuery

ENGINE = "fulltext"  # what answers ``search`` here; named in the tools' and API's answers
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def words(text: str | None) -> list[str]:
    """The distinct words of ``text``, lower-cased, in order."""
    seen: dict[str, None] = {}
    for word in _WORD.findall((text or "").lower()):
        seen.setdefault(word, None)
    return list(seen)


def score(issue: Issue, query_words: Sequence[str]) -> int:
    title, body = set(words(issue.title)), set(words(issue.body))
    return sum(2 if w in title else 1 if w in body else 0 for w in query_words)


def matches(issue: Issue, query: IssueQuery) -> bool:
    """Whether ``issue`` passes every filter of ``query`` and (with text) shares a word."""
    if issue.deleted and not query.include_deleted:
        return False
    checks = (
        query.tracker_id is None or issue.tracker_id == query.tracker_id,
        query.project is None or issue.project == query.project,
        query.kind is None or issue.kind == query.kind,
        query.state is None or issue.state.lower() == query.state.lower(),
        all(label in issue.labels for label in query.labels),
        query.assignee is None or query.assignee in issue.assignees,
        query.priority is None or (issue.priority or "").lower() == query.priority.lower(),
        query.updated_after is None or issue.updated_at >= query.updated_after,
        query.updated_before is None or issue.updated_at <= query.updated_before,
    )
    if not all(checks):
        return False
    query_words = words(query.text)
    return not query_words or score(issue, query_words) > 0


def rank(issues: Iterable[Issue], text: str | None) -> list[Issue]:
    query_words = words(text)
    ordered = sorted(issues, key=lambda i: i.id)
    ordered.sort(key=lambda i: i.updated_at, reverse=True)
    if query_words:
        ordered.sort(key=lambda i: score(i, query_words), reverse=True)
    return ordered
