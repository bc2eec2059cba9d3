"""The vector index of synced issues (hub/search/ports.py ``IssueVectorStore``) on every
backend: in memory, SQLite (float32 blobs, exact search), PostgreSQL with pgvector (HNSW) and
PostgreSQL without it (exact search). They answer the same."""

from __future__ import annotations

import math
from array import array
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from sqlalchemy import make_url

from hub.errors import NotFoundError, ValidationError
from hub.memory import InMemoryStorage
from hub.ports import Storage
from hub.search import HashingEmbedder, top_k
from hub.search.records import IssueVector
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.ports import TrackerStorage
from hub.trackers.records import Issue, IssueKind, IssueQuery, Tracker, TrackerKind
from server.db import SqlStorage, open_storage
from server.db.pg_bus import asyncpg_dsn
from server.db.stores.issue_vectors import PGVECTOR, index_name
from server.db.stores.trackers import SqlTrackerStorage

from .records import new_account

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
M4 = "test:tiny@4"
M3 = "test:other@3"

BACKENDS = [
    pytest.param("memory"),
    pytest.param("sqlite"),
    pytest.param("pgvector", marks=pytest.mark.postgres),
    pytest.param("postgres-exact", marks=pytest.mark.postgres),
]


def at(seconds: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def _without_pgvector(url: str) -> None:
    """The database as migration 0017 leaves it on a server without pgvector."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("ALTER TABLE issue_vectors DROP COLUMN embedding")
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(kind, the database URL or None for memory)."""
    kind: str = request.param
    if kind == "memory":
        return kind, None
    url: str = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pgvector_url")
    return kind, url


@pytest.fixture
async def backend(
    backend_url: tuple[str, str | None],
) -> AsyncIterator[tuple[str, Storage, str | None]]:
    """(kind, the hub's storage, the database URL or None)."""
    kind, url = backend_url
    if url is None:
        store: Storage = InMemoryStorage()
    else:
        if kind == "postgres-exact":
            await _without_pgvector(url)
        store = await open_storage(url, migrate=False)
    try:
        yield kind, store, url
    finally:
        await store.close()


@pytest.fixture
def storage(backend: tuple[str, Storage, str | None]) -> Storage:
    return backend[1]


@pytest.fixture
def trackers(storage: Storage) -> TrackerStorage:
    if isinstance(storage, SqlStorage):
        return SqlTrackerStorage.beside(storage)
    assert isinstance(storage, InMemoryStorage)
    return InMemoryTrackerStorage(storage.require_account)


def tracker(account: str, name: str = "gh") -> Tracker:
    return Tracker(
        id=f"trk_{account[-8:]}_{name}",
        account_id=account,
        name=name,
        kind=TrackerKind.GITHUB,
        base_url="https://api.github.com",
        token_ref="env:GH_TOKEN",
        projects=("octo/app",),
        created_at=T0,
        updated_at=T0,
    )


def issue(trk: Tracker, number: int, **extra: Any) -> Issue:
    project = extra.pop("project", "octo/app")
    fields: dict[str, Any] = {
        "id": f"iss_{trk.id}_{number:03d}",
        "account_id": trk.account_id,
        "tracker_id": trk.id,
        "project": project,
        "number": str(number),
        "key": f"{project}#{number}",
        "external_id": f"ext-{number}",
        "title": f"Issue {number}",
        "state": "open",
        "created_at": T0,
        "updated_at": at(number),
        "synced_at": at(1000 + number),
        "content_hash": f"h{number}",
    }
    return Issue(**(fields | extra))


def vec(i: Issue, values: tuple[float, ...], model: str = M4, **extra: Any) -> IssueVector:
    fields: dict[str, Any] = {
        "account_id": i.account_id,
        "issue_id": i.id,
        "model": model,
        "content_hash": i.content_hash,
        "vector": values,
        "embedded_at": T0,
    }
    return IssueVector(**(fields | extra))


def unit(*values: float) -> tuple[float, ...]:
    norm = math.hypot(*values)
    return tuple(v / norm for v in values)


def f32(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(array("f", values))


async def _setup(
    storage: Storage, trackers: TrackerStorage, name: str = "acme"
) -> tuple[str, Tracker]:
    account = await new_account(storage, name)
    trk = tracker(account)
    await trackers.trackers.add(trk)
    return account, trk


async def _issues(trackers: TrackerStorage, trk: Tracker, *issues: Issue) -> list[Issue]:
    return [await trackers.issues.upsert(i) for i in issues]


def ids(found: Any) -> list[str]:
    return [i.id.rsplit("_", 1)[1] for i, _ in found]


# --- put and get ---------------------------------------------------------------------------
async def test_a_vector_is_kept_as_float32_and_replaced_by_the_next_put(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    [one] = await _issues(trackers, trk, issue(trk, 1))
    first = vec(one, (0.1, 0.2, 0.3, 0.4))

    await trackers.vectors.put(first)

    stored = await trackers.vectors.get(account, one.id, M4)
    assert msgspec.structs.replace(first, vector=f32(first.vector)) == stored
    assert 1 == await trackers.vectors.count(account, M4)

    second = vec(one, (1.0, 0.0, 0.0, 0.0), content_hash="h1b", embedded_at=at(5))
    await trackers.vectors.put(second)

    assert second == await trackers.vectors.get(account, one.id, M4)
    assert 1 == await trackers.vectors.count(account, M4)
    assert await trackers.vectors.get(account, one.id, M3) is None
    assert await trackers.vectors.get(account, "iss_none", M4) is None


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (M4, (1.0, 0.0, 0.0)),  # three dimensions for a model of four
        (M4, (1.0, 0.0, 0.0, 0.0, 0.0)),
        (M4, (math.nan, 0.0, 0.0, 0.0)),
        (M4, (math.inf, 0.0, 0.0, 0.0)),
        (M4, (1e39, 0.0, 0.0, 0.0)),  # beyond float32
        ("test:no-dimensions", (1.0,)),
    ],
)
async def test_a_vector_that_does_not_fit_its_model_is_refused(
    storage: Storage, trackers: TrackerStorage, model: str, values: tuple[float, ...]
) -> None:
    account, trk = await _setup(storage, trackers)
    [one] = await _issues(trackers, trk, issue(trk, 1))

    with pytest.raises(ValidationError):
        await trackers.vectors.put(vec(one, values, model=model))
    with pytest.raises(ValidationError):
        await trackers.vectors.nearest(account, model, values, IssueQuery())
    assert 0 == await trackers.vectors.count(account, M4)


async def test_a_vector_of_an_issue_the_account_does_not_have_is_refused(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    _, other_trk = await _setup(storage, trackers, "globex")
    [theirs] = await _issues(trackers, other_trk, issue(other_trk, 1))

    with pytest.raises(NotFoundError):
        await trackers.vectors.put(vec(theirs, unit(1, 0, 0, 0), account_id=account))
    with pytest.raises(NotFoundError):
        await trackers.vectors.put(vec(issue(trk, 9), unit(1, 0, 0, 0)))
    assert 0 == await trackers.vectors.count(account, M4)


# --- stale ---------------------------------------------------------------------------------
async def test_stale_lists_issues_without_a_current_vector_across_accounts(
    storage: Storage, trackers: TrackerStorage
) -> None:
    _, trk = await _setup(storage, trackers)
    _, other_trk = await _setup(storage, trackers, "globex")
    fresh, changed, missing, deleted = await _issues(
        trackers,
        trk,
        issue(trk, 1),
        issue(trk, 2),
        issue(trk, 3),
        issue(trk, 4, deleted=True),
    )
    [theirs] = await _issues(trackers, other_trk, issue(other_trk, 5, synced_at=at(1)))
    await trackers.vectors.put(vec(fresh, unit(1, 0, 0, 0)))
    await trackers.vectors.put(vec(changed, unit(0, 1, 0, 0), content_hash="old"))
    await trackers.vectors.put(vec(missing, unit(1, 1, 0, 0), model=M3[:-1] + "4"))

    stale = await trackers.vectors.stale(M4)

    # least recently synced first: the other account's issue was synced at 1 s
    assert [theirs.id, changed.id, missing.id] == [i.id for i in stale]
    assert [theirs.id] == [i.id for i in await trackers.vectors.stale(M4, limit=1)]
    assert [] == list(await trackers.vectors.stale(M4, limit=0))
    with pytest.raises(ValidationError):
        await trackers.vectors.stale(M4, limit=-1)
    assert deleted.id not in {i.id for i in stale}
    assert stale[1] == changed  # the whole issue, as stored


# --- nearest -------------------------------------------------------------------------------
async def _seeded(storage: Storage, trackers: TrackerStorage) -> tuple[str, Tracker, list[Issue]]:
    """Five issues around the query (1, 0, 0, 0) with different fields."""
    account, trk = await _setup(storage, trackers)
    found = await _issues(
        trackers,
        trk,
        issue(trk, 1, labels=("bug",), assignees=("ada",), priority="High"),
        issue(trk, 2, state="Closed", labels=("bug", "ui")),
        issue(trk, 3, project="octo/web", kind=IssueKind.PULL_REQUEST),
        issue(trk, 4, assignees=("bob",), priority="low"),
        issue(trk, 5, deleted=True),
    )
    vectors = [unit(1, 0, 0, 0), unit(1, 0.2, 0, 0), unit(1, 0.5, 0, 0), unit(0, 1, 0, 0)]
    vectors.append(unit(1, 0.1, 0, 0))
    for one, values in zip(found, vectors, strict=True):
        await trackers.vectors.put(vec(one, values))
    return account, trk, found


async def test_nearest_is_best_first_with_cosines(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, _, found = await _seeded(storage, trackers)

    best = await trackers.vectors.nearest(account, M4, (2.0, 0.0, 0.0, 0.0), IssueQuery(limit=3))

    assert ["001", "002", "003"] == ids(best)
    assert best[0][0] == found[0]
    assert [1.0, unit(1, 0.2, 0, 0)[0], unit(1, 0.5, 0, 0)[0]] == pytest.approx(
        [s for _, s in best], abs=1e-6
    )
    everything = await trackers.vectors.nearest(account, M4, (1, 0, 0, 0), IssueQuery(limit=10))
    assert ["001", "002", "003", "004"] == ids(everything)  # the deleted issue left out
    assert pytest.approx(0.0, abs=1e-6) == everything[-1][1]
    with_deleted = IssueQuery(limit=10, include_deleted=True)
    assert ["001", "005", "002", "003", "004"] == ids(
        await trackers.vectors.nearest(account, M4, (1, 0, 0, 0), with_deleted)
    )


async def test_nearest_with_min_score_exclude_and_no_limit(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, _, _ = await _seeded(storage, trackers)
    query = (1.0, 0.0, 0.0, 0.0)

    assert ["001", "002"] == ids(
        await trackers.vectors.nearest(account, M4, query, IssueQuery(), min_score=0.95)
    )
    assert ["002", "003"] == ids(
        await trackers.vectors.nearest(
            account, M4, query, IssueQuery(limit=2), exclude=[f"iss_{_trk_id(account)}_001"]
        )
    )
    assert [] == list(await trackers.vectors.nearest(account, M4, query, IssueQuery(limit=0)))
    with pytest.raises(ValidationError):
        await trackers.vectors.nearest(account, M4, query, IssueQuery(limit=-1))


def _trk_id(account: str) -> str:
    return tracker(account).id


async def test_ties_are_broken_by_issue_id(storage: Storage, trackers: TrackerStorage) -> None:
    account, trk = await _setup(storage, trackers)
    same = await _issues(trackers, trk, *(issue(trk, n) for n in (7, 3, 5, 4)))
    for one in same:
        await trackers.vectors.put(vec(one, unit(1, 1, 0, 0)))

    best = await trackers.vectors.nearest(account, M4, unit(1, 1, 0, 0), IssueQuery(limit=3))

    assert ["003", "004", "005"] == ids(best)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (IssueQuery(project="octo/web"), ["003"]),
        (IssueQuery(kind=IssueKind.ISSUE), ["001", "002", "004"]),
        (IssueQuery(state="closed"), ["002"]),
        (IssueQuery(state="OPEN"), ["001", "003", "004"]),
        (IssueQuery(labels=("bug",)), ["001", "002"]),
        (IssueQuery(labels=("bug", "ui")), ["002"]),
        (IssueQuery(labels=("bu",)), []),
        (IssueQuery(assignee="bob"), ["004"]),
        (IssueQuery(priority="high"), ["001"]),
        (IssueQuery(updated_after=at(2), updated_before=at(3)), ["002", "003"]),
        (IssueQuery(text="ignored by nearest"), ["001", "002", "003", "004"]),
    ],
)
async def test_every_filter_of_the_query_applies(
    storage: Storage, trackers: TrackerStorage, query: IssueQuery, expected: list[str]
) -> None:
    account, _, _ = await _seeded(storage, trackers)

    found = await trackers.vectors.nearest(account, M4, (1, 0, 0, 0), query)

    assert expected == ids(found)
    tracker_query = msgspec.structs.replace(query, tracker_id="trk_other")
    assert [] == list(await trackers.vectors.nearest(account, M4, (1, 0, 0, 0), tracker_query))


async def test_a_vector_of_zeros_is_near_nothing(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    empty, worded = await _issues(trackers, trk, issue(trk, 1, title=""), issue(trk, 2))
    await trackers.vectors.put(vec(empty, (0.0, 0.0, 0.0, 0.0)))
    await trackers.vectors.put(vec(worded, unit(-1, 0, 0, 0)))

    found = await trackers.vectors.nearest(account, M4, (1, 0, 0, 0), IssueQuery())

    assert ["002"] == ids(found)  # opposite (-1) is still a score; zeros are none
    assert [] == list(await trackers.vectors.nearest(account, M4, (0, 0, 0, 0), IssueQuery()))
    assert 2 == await trackers.vectors.count(account, M4)


async def test_accounts_and_models_never_mix(storage: Storage, trackers: TrackerStorage) -> None:
    account, trk = await _setup(storage, trackers)
    other, other_trk = await _setup(storage, trackers, "globex")
    [mine] = await _issues(trackers, trk, issue(trk, 1))
    [theirs] = await _issues(trackers, other_trk, issue(other_trk, 1))
    await trackers.vectors.put(vec(mine, unit(1, 0, 0, 0)))
    await trackers.vectors.put(vec(mine, unit(0, 1, 0), model=M3))
    await trackers.vectors.put(vec(theirs, unit(1, 0, 0, 0)))

    mine_m4 = await trackers.vectors.nearest(account, M4, (1, 0, 0, 0), IssueQuery())
    mine_m3 = await trackers.vectors.nearest(account, M3, (0, 1, 0), IssueQuery())

    assert [mine.id] == [i.id for i, _ in mine_m4]
    assert [(mine.id, pytest.approx(1.0))] == [(i.id, s) for i, s in mine_m3]
    assert (1, 1, 1) == (
        await trackers.vectors.count(account, M4),
        await trackers.vectors.count(account, M3),
        await trackers.vectors.count(other, M4),
    )
    assert 0 == await trackers.vectors.count(other, M3)


async def test_removing_a_tracker_removes_its_vectors(
    storage: Storage, trackers: TrackerStorage
) -> None:
    account, trk = await _setup(storage, trackers)
    second = tracker(account, "lab")
    await trackers.trackers.add(second)
    [gone] = await _issues(trackers, trk, issue(trk, 1))
    [kept] = await _issues(trackers, second, issue(second, 2))
    await trackers.vectors.put(vec(gone, unit(1, 0, 0, 0)))
    await trackers.vectors.put(vec(kept, unit(1, 0, 0, 0)))

    await trackers.trackers.remove(account, trk.id)

    assert 1 == await trackers.vectors.count(account, M4)
    assert await trackers.vectors.get(account, gone.id, M4) is None
    assert [kept.id] == [
        i.id for i, _ in await trackers.vectors.nearest(account, M4, (1, 0, 0, 0), IssueQuery())
    ]


async def test_a_filtered_search_returns_k_rows_when_the_nearest_are_filtered_out(
    backend: tuple[str, Storage, str | None], trackers: TrackerStorage
) -> None:
    # 300 issues of project "near" close to the query, 3 of project "far" farther away: an
    # index scan that stops after ef_search candidates would find none of "far" before the
    # filter drops the rest. Sequential scans and sorts are off on PostgreSQL: the index answers.
    kind, storage, url = backend
    account, trk = await _setup(storage, trackers)
    near = [issue(trk, n, project="near") for n in range(300)]
    far = [issue(trk, 500 + n, project="far") for n in range(3)]
    for n, one in enumerate(await _issues(trackers, trk, *near)):
        await trackers.vectors.put(vec(one, unit(1, n / 1000, 0, 0)))
    for n, one in enumerate(await _issues(trackers, trk, *far)):
        await trackers.vectors.put(vec(one, unit(0.5, 0.5, n / 10, 0)))
    if kind == "pgvector":
        assert url is not None
        assert isinstance(storage, SqlStorage)
        await _prefer_the_index(url)
        await storage.engine.dispose()  # new connections take the database's settings

    found = await trackers.vectors.nearest(
        account, M4, (1, 0, 0, 0), IssueQuery(project="far", limit=3)
    )

    assert ["500", "501", "502"] == ids(found)
    assert ["000", "001"] == ids(
        await trackers.vectors.nearest(account, M4, (1, 0, 0, 0), IssueQuery(limit=2))
    )
    if kind == "pgvector":
        assert url is not None
        assert PGVECTOR == trackers.vectors.engine
        assert len(await _without_iterative_scan(url, account)) < 3  # the case is a hard one


async def _prefer_the_index(url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        database = make_url(url).database
        for setting in ("enable_seqscan", "enable_sort"):  # what the index is the way round
            await conn.execute(f'ALTER DATABASE "{database}" SET {setting} = off')
    finally:
        await conn.close()


async def _without_iterative_scan(url: str, account: str) -> list[Any]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("SET hnsw.iterative_scan = off")
        await conn.execute("SET hnsw.ef_search = 40")
        query = (
            "SELECT v.issue_id FROM issue_vectors v JOIN issues i"
            " ON i.account_id = v.account_id AND i.id = v.issue_id"
            " WHERE v.model = 'test:tiny@4' AND v.account_id = $1 AND i.project = 'far'"
            " ORDER BY v.embedding::vector(4) <=> '[1,0,0,0]'::vector(4) LIMIT 3"
        )
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {query}", account))
        assert index_name(M4) in plan
        return list(await conn.fetch(query, account))
    finally:
        await conn.close()


async def test_every_backend_answers_as_an_exact_search_does(
    storage: Storage, trackers: TrackerStorage
) -> None:
    embedder = HashingEmbedder(dimensions=64)
    model = str(embedder.identity)
    account, trk = await _setup(storage, trackers)
    words = ["login", "crash", "timeout", "upload", "search", "page", "slow", "error", "button"]
    texts = [f"{words[n % 9]} {words[n * 7 % 9]} {words[n * 5 % 9]} {n % 4}" for n in range(60)]
    issues = await _issues(trackers, trk, *(issue(trk, n, title=t) for n, t in enumerate(texts)))
    vectors = await embedder.embed(texts)
    for one, values in zip(issues, vectors, strict=True):
        await trackers.vectors.put(vec(one, values, model=model))
    query = (await embedder.embed(["login crash slow"]))[0]
    stored = [(i.id, array("f", v)) for i, v in zip(issues, vectors, strict=True)]

    found = await trackers.vectors.nearest(account, model, query, IssueQuery(limit=10))

    expected = top_k(query, stored, 10)
    assert [s.id for s in expected] == [i.id for i, _ in found]
    assert [s.score for s in expected] == pytest.approx([s for _, s in found], abs=1e-6)
