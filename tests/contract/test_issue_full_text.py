"""The issue search's full-text narrowing (SQLite FTS5, PostgreSQL ``tsvector``; decision 0100)
on every backend: it must never drop an issue that ``hub.trackers.search.matches`` accepts,
whatever the text holds, and it follows every write (insert, update, delete, tracker removal).
"""

from __future__ import annotations

import asyncpg
import pytest

from hub.ports import Storage
from hub.trackers.ports import TrackerStorage
from hub.trackers.records import IssueQuery
from hub.trackers.search import matches, rank
from server.db.pg_bus import asyncpg_dsn

from .test_trackers import _setup, issue, tracker

TEXTS = [
    ("login fails", "after the upgrade the Login button does nothing"),
    ("crash_on_start", "stack trace in app_main.py line 12"),
    ("mail", "write to ada@example.com or see https://example.org/path/to/page?q=1"),
    ("config.yaml breaks", "the file config.yaml has tabs; v1.2.3 and 1e5 and 0x1F"),
    ("Café crashes", "naïve résumé über straße"),
    ("combining", "abc\u0301def and login"),  # a combining accent inside a word
    ("Kelvin", "\u212aelvin sign and \u0130stanbul"),
    ("emoji 🚀 launch", "rocket🚀science and hyphen-ated words"),
    ("long", "x" * 3000 + " tail"),
    ("huge body", ("lorem ipsum " * 9000) + " needle"),  # beyond the indexed 100,000 chars
    ("digits", "error 404 and 500 and E1234"),
    ("nothing", ""),
]
QUERIES = [
    "login",
    "crash",
    "start",
    "main",
    "py",
    "example",
    "com",
    "path",
    "page",
    "yaml",
    "config",
    "v1",
    "2",
    "1e5",
    "0x1f",
    "abc",
    "def",
    "elvin",
    "kelvin",
    "stanbul",
    "istanbul",
    "launch",
    "rocket",
    "science",
    "hyphen",
    "ated",
    "tail",
    "needle",
    "404",
    "e1234",
    "x" * 3000,
    "café",
    "naïve",
    "straße",
    "missing words",
    "login crash yaml",
]


@pytest.mark.parametrize("text", QUERIES, ids=lambda q: q[:20])
async def test_full_text_search_never_drops_a_match(
    storage: Storage, trackers: TrackerStorage, text: str
) -> None:
    account, trk = await _setup(storage, trackers)
    corpus = [issue(trk, n, title=t, body=b) for n, (t, b) in enumerate(TEXTS, start=1)]
    for row in corpus:
        await trackers.issues.upsert(row)
    query = IssueQuery(text=text, limit=50)
    expected = rank([i for i in corpus if matches(i, query)], text)

    found = await trackers.issues.search(account, query)

    assert [i.number for i in expected] == [i.number for i in found]


async def test_full_text_follows_updates_and_removals(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    await trackers.issues.upsert(issue(trk, 1, title="alpha", body="beta"))
    await trackers.issues.upsert(issue(trk, 2, title="alpha", body="gamma"))

    await trackers.issues.upsert(issue(trk, 1, title="delta", body="epsilon"))

    async def numbers(text: str) -> list[str]:
        return [i.number for i in await trackers.issues.search(account, IssueQuery(text=text))]

    assert (["2"], [], ["1"], ["1"]) == (
        await numbers("alpha"),
        await numbers("beta"),
        await numbers("delta"),
        await numbers("epsilon"),
    )
    lab = tracker(account, "lab")
    await trackers.trackers.add(lab)
    await trackers.issues.upsert(issue(lab, 3, title="alpha again"))
    await trackers.trackers.remove(account, trk.id)
    assert ["3"] == await numbers("alpha")


@pytest.mark.postgres
async def test_postgres_searches_words_through_the_gin_index(postgres_url: str) -> None:
    from types import SimpleNamespace
    from typing import Any, cast

    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql

    from server.db import tables as t
    from server.db.stores._issue_filters import full_text_narrowing

    db: Any = SimpleNamespace(dialect="postgresql")
    condition = full_text_narrowing(["login", "crash"], cast(Any, db))
    assert condition is not None
    stmt = select(t.issues.c.id).where(condition)
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    conn = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        await conn.execute("SET enable_seqscan = off")
        plan = await conn.fetch(f"EXPLAIN {sql}")
    finally:
        await conn.close()

    assert "ix_issues_search_tsv" in "\n".join(row[0] for row in plan)


async def test_sqlite_narrows_through_fts5(sqlite_url: str) -> None:
    """With the FTS5 index emptied behind the store's back, a word search finds nothing: the
    index, not a scan, chose the candidates."""
    import sqlite3

    from server.db import open_storage
    from server.db.stores.trackers import SqlTrackerStorage

    storage = await open_storage(sqlite_url, migrate=False)
    try:
        trackers = SqlTrackerStorage.beside(storage)
        account, trk = await _setup(storage, trackers)
        await trackers.issues.upsert(issue(trk, 1, title="login fails"))
        query = IssueQuery(text="login")
        assert ["1"] == [i.number for i in await trackers.issues.search(account, query)]
        with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
            db.execute("INSERT INTO issues_fts (issues_fts) VALUES ('delete-all')")

        assert [] == list(await trackers.issues.search(account, query))
    finally:
        await storage.close()
