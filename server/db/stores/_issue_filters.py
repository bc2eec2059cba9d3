"""SQL conditions on synced issues shared by the issue search (``SqlIssueStore.search``) and
the vector index (``SqlIssueVectorStore.nearest``): each narrows to a superset of what
``hub.trackers.search.matches`` accepts, which has the last word in Python."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, cast, exists, false, func, or_
from sqlalchemy.dialects.postgresql import JSONB

from hub.trackers.records import IssueQuery
from hub.trackers.search import words
from server.db import tables as t
from server.db.stores._base import Database

# Characters whose Python lower case holds an ASCII letter while SQL's ``lower`` (SQLite's is
# ASCII only) may leave them as they are: a text holding one may match an ASCII query word.
_LOWERS_TO_ASCII = {"i": "\u0130", "k": "\u212a"}  # İ -> i̇, the Kelvin sign -> k


def by_code_point(column: ColumnElement[str], db: Database) -> ColumnElement[str]:
    """``column`` ordered as Python orders text (PostgreSQL's "C" collation; SQLite's default
    is already binary)."""
    return column.collate("C") if db.dialect == "postgresql" else column


def narrowing(query: IssueQuery, db: Database) -> list[ColumnElement[bool]]:
    """SQL conditions that every issue ``matches(issue, query)`` accepts also pass (a superset
    where SQL and Python could differ: case folding outside ASCII, JSON lists)."""
    c = t.issues.c
    where: list[ColumnElement[bool]] = []
    if not query.include_deleted:
        where.append(c.deleted == false())
    if query.tracker_id is not None:
        where.append(c.tracker_id == query.tracker_id)
    if query.project is not None:
        where.append(c.project == query.project)
    if query.kind is not None:
        where.append(c.kind == str(query.kind))
    if query.updated_after is not None:
        where.append(c.updated_at >= query.updated_after)
    if query.updated_before is not None:
        where.append(c.updated_at <= query.updated_before)
    for column, wanted in ((c.state, query.state), (c.priority, query.priority)):
        if wanted is not None and wanted.isascii():
            where.append(_folds_to(column, wanted.lower()))
    for label in query.labels:
        where.append(_json_list_holds(c.labels, label, db))
    if query.assignee is not None:
        where.append(_json_list_holds(c.assignees, query.assignee, db))
    text = _text_narrowing(words(query.text))
    if text is not None:
        where.append(text)
    return where


def _json_list_holds(column: ColumnElement[Any], value: str, db: Database) -> ColumnElement[bool]:
    """The JSON list in ``column`` holds the text ``value`` (exactly, as Python's ``in``)."""
    if db.dialect == "postgresql":
        return cast(column, JSONB).contains([value])
    element = func.json_each(column).table_valued("value")
    return exists().select_from(element).where(element.c.value == value)


def _folds_to(column: ColumnElement[Any], lowered: str) -> ColumnElement[bool]:
    """``column`` whose Python ``lower()`` may equal the ASCII ``lowered``."""
    maybe = [func.lower(column) == lowered]
    maybe += [column.contains(odd) for ascii, odd in _LOWERS_TO_ASCII.items() if ascii in lowered]
    return or_(*maybe)


def _text_narrowing(query_words: Sequence[str]) -> ColumnElement[bool] | None:
    """Title or body holds one of the words (``None``: no narrowing possible)."""
    if not query_words or not all(w.isascii() for w in query_words):
        return None  # SQL's lower() may not fold the text the way Python does
    c = t.issues.c
    either: list[ColumnElement[bool]] = []
    for word in query_words:  # letters and digits only: nothing LIKE treats specially
        for column in (c.title, c.body):
            either.append(func.lower(column).contains(word))
            either += [column.contains(odd) for ch, odd in _LOWERS_TO_ASCII.items() if ch in word]
    return or_(*either)
