"""SQL conditions on synced issues shared by the issue search (``SqlIssueStore.search``) and
the vector index (``SqlIssueVectorStore.nearest``): each narrows to a superset of what
``hub.trackers.search.matches`` accepts, which has the last word in Python."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    cast,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from hub.trackers.records import IssueQuery
from hub.trackers.search import words
from server.db import tables as t
from server.db.stores._base import Database

# Characters whose Python lower case holds an ASCII letter while SQL's ``lower`` (SQLite's is
# ASCII only) may leave them as they are: a text holding one may match an ASCII query word.
# The full-text index (decision 0100) is exact for texts of ASCII only, where FTS5's unicode61
# tokenizer and PostgreSQL's normalised words split and fold as hub.trackers.search does; it
# adds ``UNCERTAIN`` to every other text (and to texts too long to index whole), and every
# query asks for ``UNCERTAIN`` too: the narrowing stays a superset of ``matches``.
UNCERTAIN = "zzpreloopuncertainzz"
MAX_INDEXED_WORD = 200
MAX_INDEXED_TEXT = 100_000  # characters of title and body in the tsvector (its 1 MB limit)
_INDEXABLE = re.compile(f"[a-z0-9]{{1,{MAX_INDEXED_WORD}}}")
# PostgreSQL: the expression the GIN index of migration 0017 is built on, character for
# character (the planner uses the index only for the same expression).
_PG_TEXT = "issues.title || ' ' || issues.body"
_PG_BOTH = "issues.title || issues.body"
PG_TSVECTOR = (
    f"to_tsvector('simple'::regconfig, left(regexp_replace(lower({_PG_TEXT}), '[^a-z0-9]+',"
    f" ' ', 'g'), {MAX_INDEXED_TEXT}) || CASE WHEN octet_length({_PG_BOTH}) <>"
    f" char_length({_PG_BOTH}) OR char_length({_PG_BOTH}) >= {MAX_INDEXED_TEXT - 1}"
    f" THEN ' {UNCERTAIN}' ELSE '' END)"
)
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
    query_words = words(query.text)
    text = _text_narrowing(query_words)
    if text is not None:
        where.append(text)
    indexed = full_text_narrowing(query_words, db)
    if indexed is not None:
        where.append(indexed)
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


def full_text_narrowing(query_words: Sequence[str], db: Database) -> ColumnElement[bool] | None:
    """The issues whose full-text index entry holds one of the words (or marks the text as
    one the index cannot vouch for): SQLite FTS5, PostgreSQL ``tsvector`` (migration 0017,
    decision 0100). ``None`` when the words are not plain ASCII letters and digits of at most
    ``MAX_INDEXED_WORD`` characters (the LIKE narrowing alone then)."""
    if not query_words or not all(_INDEXABLE.fullmatch(w) for w in query_words):
        return None
    terms = [*query_words, UNCERTAIN]
    c = t.issues.c
    if db.dialect == "postgresql":
        tsquery = func.to_tsquery(literal_column("'simple'::regconfig"), " | ".join(terms))
        matched: ColumnElement[bool] = literal_column(PG_TSVECTOR).op("@@", return_type=Boolean)(
            tsquery
        )
        return matched
    match = " OR ".join(f'"{term}"' for term in terms)
    rows: Select[Any] = (
        select(literal_column("issue_search_rows.issue_id"))
        .select_from(
            text("issues_fts JOIN issue_search_rows ON issue_search_rows.rowid = issues_fts.rowid")
        )
        .where(text("issues_fts MATCH :fts_query").bindparams(fts_query=match))
    )
    return c.id.in_(rows.scalar_subquery())


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
