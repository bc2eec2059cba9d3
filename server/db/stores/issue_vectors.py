"""The SQL vector index of synced issues (``hub.search.ports.IssueVectorStore``), on the hub's
engine beside the tracker stores (docs/decisions/0099-sql-issue-vectors.md).

Every database keeps each vector as little-endian float32 bytes (``issue_vectors.data``).
What answers ``nearest`` (``engine``):

- ``pgvector-hnsw``: PostgreSQL whose ``issue_vectors`` has pgvector's untyped ``embedding``
  column (migration 0017 adds it when the server has the extension). The store writes the
  vector there too and, the first time this process writes a model, makes sure that model has
  its partial HNSW index (``(embedding::vector(DIMS)) vector_cosine_ops WHERE model = '…'``,
  created under an advisory lock, ``IF NOT EXISTS``: safe across replicas). Queries cast the
  same way and name the model as a literal (so the planner can prove the partial index
  applies, prepared or not), in a transaction with ``hnsw.iterative_scan = strict_order``: an
  index scan goes on past filtered-out rows until ``limit`` rows match, in exact distance
  order. Models of more than 2,000 dimensions (HNSW's limit for ``vector``) get no index:
  pgvector then scans them exactly, in C.
- ``exact``: SQLite, and PostgreSQL without pgvector (logged once). The account's vectors of
  the model that pass the SQL filters are read in batches and scored in Python
  (``hub.search.vectors.top_k``); only the ``(score, id)`` pairs are kept.

Either way the candidates' scores are recomputed in Python from ``data`` (the same float32
values and arithmetic as the in-memory store), ``hub.trackers.search.matches`` has the last
word on the filters (SQL narrows to a superset: case folding outside ASCII, JSON lists), and
when that leaves fewer than ``limit`` the query runs again for more rows: a filtered search
answers ``limit`` rows whenever that many match.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Select, TextClause, bindparam, false, func, select, text
from sqlalchemy.engine import Connection, Row

from hub.search.embedders import Vector
from hub.search.memory import EXACT, check_query_vector, check_vector, is_zero, model_dimensions
from hub.search.records import IssueVector
from hub.search.vectors import as_array, top_k
from hub.store_rules import aware_utc, check_limit
from hub.trackers.records import Issue, IssueQuery
from hub.trackers.search import matches
from server.db import tables as t
from server.db.stores._base import Database, to_record
from server.db.stores._issue_filters import by_code_point, narrowing
from server.db.stores._vector_scan import from_blob, nearest_blobs, to_blob

PGVECTOR = "pgvector-hnsw"
MINIMUM_PGVECTOR = (0, 8)  # iterative index scans: filtered searches still return k rows
HNSW_MAX_DIMENSIONS = 2000  # pgvector's limit for an HNSW index over ``vector``
INDEX_PREFIX = "ix_issue_vectors_hnsw_"
_BATCH = 1000  # vectors read per query on the exact path
# pgvector rows beyond ``limit``: ties at the cut are ordered by id in Python (as every store
# orders them) among the rows fetched
_TIE_MARGIN = 5
_MIN_EF_SEARCH = 40  # pgvector's default; more for a larger limit (at most 1000)

log = logging.getLogger("preloop.search")
_ISSUE_COLUMNS = list(t.issues.c)


def vector_text(vector: Sequence[float]) -> str:
    """pgvector's text form of ``vector`` as float32 (``repr`` of each float32 value reads
    back as the same float32)."""
    return "[" + ",".join(map(repr, as_array(vector))) + "]"


def index_name(model: str) -> str:
    """The HNSW index of ``model``: a name from a hash (identities hold any characters)."""
    return INDEX_PREFIX + hashlib.sha256(model.encode()).hexdigest()[:16]


def _at_least(version: str | None, minimum: tuple[int, ...]) -> bool:
    """Whether the extension ``version`` (``0.8.6``) is at least ``minimum``."""
    if version is None:
        return False
    parts = []
    for part in version.split(".")[: len(minimum)]:
        digits = "".join(itertools.takewhile(str.isdigit, part))
        parts.append(int(digits or 0))
    return tuple(parts) >= minimum


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class SqlIssueVectorStore:
    """``issue_vectors`` on ``db``; what ``nearest`` runs on is found on first use."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # PostgreSQL: unknown until the first call looks for the embedding column
        self._pgvector: bool | None = None if db.dialect == "postgresql" else False
        self._indexed: set[str] = set()

    @property
    def engine(self) -> str:
        """``pgvector-hnsw`` or ``exact``; on PostgreSQL known once the store has been used
        (``exact`` before)."""
        return PGVECTOR if self._pgvector else EXACT

    async def _uses_pgvector(self) -> bool:
        if self._pgvector is None:

            def probe(conn: Connection) -> tuple[bool, str | None]:
                column = conn.exec_driver_sql(
                    "SELECT count(*) FROM information_schema.columns WHERE table_name ="
                    " 'issue_vectors' AND column_name = 'embedding'"
                    " AND table_schema = current_schema()"
                ).scalar()
                version = conn.exec_driver_sql(
                    "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                ).scalar()
                return bool(column), None if version is None else str(version)

            column, version = await self._db.run_read(probe)
            self._pgvector = column and _at_least(version, MINIMUM_PGVECTOR)
            if not column:
                log.warning(
                    "issue vectors: this PostgreSQL database has no pgvector column "
                    "(the server lacked the 'vector' extension or the right to create it when "
                    "it was migrated): similarity search scores every vector in Python "
                    "(docs/search.md says how to turn pgvector on)"
                )
            elif not self._pgvector:
                log.warning(
                    "issue vectors: pgvector %s is older than 0.8 (no iterative index scans, "
                    "so filtered searches could miss results): similarity search scores every "
                    "vector in Python until pgvector is upgraded (ALTER EXTENSION vector UPDATE)",
                    version,
                )
        return self._pgvector

    async def _ensure_index(self, model: str) -> None:
        """The partial HNSW index of ``model``, made once (per process; the database makes it
        once across processes: an advisory lock, then ``IF NOT EXISTS``)."""
        dims = model_dimensions(model)
        if model in self._indexed or dims > HNSW_MAX_DIMENSIONS:
            return
        name = index_name(model)
        lock = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        ddl = (
            f"CREATE INDEX IF NOT EXISTS {name} ON issue_vectors USING hnsw"
            f" ((embedding::vector({dims})) vector_cosine_ops)"
            f" WHERE model = {_sql_literal(model)}"
        )

        def work(conn: Connection) -> None:
            conn.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": lock})
            conn.exec_driver_sql(ddl)

        await self._db.run_write(work)
        self._indexed.add(model)

    async def put(self, vector: IssueVector) -> None:
        check_vector(vector)
        values: dict[str, Any] = {
            "account_id": vector.account_id,
            "issue_id": vector.issue_id,
            "model": vector.model,
            "content_hash": vector.content_hash,
            "embedded_at": aware_utc(vector.embedded_at, "embedded_at"),
            "data": to_blob(vector.vector),
        }
        missing = f"issue {vector.issue_id!r} does not exist in account {vector.account_id!r}"
        if await self._uses_pgvector():
            await self._ensure_index(vector.model)
            values["embedding"] = None if is_zero(vector.vector) else vector_text(vector.vector)
            stmt: Any = _PG_UPSERT
        else:
            stmt = self._db.upsert_all(
                t.issue_vectors, key=("account_id", "issue_id", "model"), keep=()
            )

        def work(conn: Connection) -> None:
            conn.execute(stmt, values)

        await self._db.run_single(work, missing=missing, conflict=missing)

    async def get(self, account_id: str, issue_id: str, model: str) -> IssueVector | None:
        c = t.issue_vectors.c
        stmt = select(t.issue_vectors).where(
            c.account_id == account_id, c.issue_id == issue_id, c.model == model
        )

        def first(conn: Connection) -> IssueVector | None:
            row = conn.execute(stmt).first()
            if row is None:
                return None
            fields = {str(k): v for k, v in row._mapping.items()}
            fields["vector"] = tuple(from_blob(fields.pop("data")))
            return msgspec.convert(fields, type=IssueVector)

        return await self._db.run_read(first)

    async def stale(self, model: str, limit: int = 100) -> Sequence[Issue]:
        check_limit(limit)
        i, v = t.issues.c, t.issue_vectors.c
        joined = t.issues.outerjoin(
            t.issue_vectors,
            (v.account_id == i.account_id) & (v.issue_id == i.id) & (v.model == model),
        )
        stmt = (
            select(*_ISSUE_COLUMNS)
            .select_from(joined)
            .where(
                i.deleted == false(),
                v.issue_id.is_(None) | (v.content_hash != i.content_hash),
            )
            .order_by(i.synced_at, by_code_point(i.id, self._db))
            .limit(limit)
        )
        return await self._all_issues(stmt)

    async def count(self, account_id: str, model: str) -> int:
        c = t.issue_vectors.c
        stmt = select(func.count()).where(c.account_id == account_id, c.model == model)

        def work(conn: Connection) -> int:
            return int(conn.execute(stmt).scalar_one())

        return await self._db.run_read(work)

    async def nearest(
        self,
        account_id: str,
        model: str,
        vector: Vector,
        query: IssueQuery,
        *,
        min_score: float | None = None,
        exclude: Sequence[str] = (),
    ) -> Sequence[tuple[Issue, float]]:
        check_limit(query.limit)
        check_query_vector(model, vector)
        for bound in (query.updated_after, query.updated_before):
            if bound is not None:
                aware_utc(bound, "updated_after/updated_before")
        if query.limit == 0 or is_zero(vector):
            return []
        unfiltered = msgspec.structs.replace(query, text=None)
        pgvector = await self._uses_pgvector()
        wanted = query.limit
        while True:  # more rows while SQL's superset of the filters let too many through
            if pgvector:
                found, complete = await self._nearest_pgvector(
                    account_id, model, vector, unfiltered, exclude, wanted
                )
            else:
                found, complete = await self._nearest_exact(
                    account_id, model, vector, unfiltered, exclude, wanted, min_score
                )
            best = [(i, s) for i, s in found if matches(i, unfiltered)]
            if min_score is not None:
                best = [(i, s) for i, s in best if s >= min_score]
                complete = complete or (bool(found) and found[-1][1] < min_score)
            if len(best) >= query.limit or complete:
                return best[: query.limit]
            wanted *= 4

    async def _nearest_exact(
        self,
        account_id: str,
        model: str,
        vector: Vector,
        query: IssueQuery,
        exclude: Sequence[str],
        wanted: int,
        min_score: float | None,
    ) -> tuple[list[tuple[Issue, float]], bool]:
        """The ``wanted`` best of the candidates, every one scored; ``True`` when there were
        no more."""
        v, i = t.issue_vectors.c, t.issues.c
        base = _candidates(account_id, model, query, exclude, self._db)
        page = base.with_only_columns(v.issue_id, v.data).order_by(v.issue_id).limit(_BATCH)

        def rows(conn: Connection) -> Iterator[tuple[str, bytes]]:
            after: str | None = None
            while True:
                stmt = page if after is None else page.where(v.issue_id > after)
                batch = conn.execute(stmt).all()
                for issue_id, data in batch:
                    yield issue_id, bytes(data)
                if len(batch) < _BATCH:
                    return
                after = batch[-1][0]

        dims = model_dimensions(model)

        def work(conn: Connection) -> tuple[list[tuple[Issue, float]], bool]:
            # numpy narrows, top_k scores the short list exactly; zero vectors left out
            best = nearest_blobs(vector, rows(conn), dims, wanted, min_score=min_score)
            complete = len(best) < wanted
            if not best:
                return [], complete
            ids = [s.id for s in best]
            read = select(*_ISSUE_COLUMNS).where(i.account_id == account_id, i.id.in_(ids))
            issues = {r.id: to_record(r, Issue) for r in conn.execute(read)}
            return [(issues[s.id], s.score) for s in best if s.id in issues], complete

        return await self._db.run_read(work)

    async def _nearest_pgvector(
        self,
        account_id: str,
        model: str,
        vector: Vector,
        query: IssueQuery,
        exclude: Sequence[str],
        wanted: int,
    ) -> tuple[list[tuple[Issue, float]], bool]:
        dims = model_dimensions(model)
        v = t.issue_vectors.c
        distance = _distance(dims).bindparams(query_vector=vector_text(vector))
        stmt = (
            _candidates(account_id, model, query, exclude, self._db, literal_model=True)
            .with_only_columns(*_ISSUE_COLUMNS, v.data)
            .where(text("issue_vectors.embedding IS NOT NULL"))
            .order_by(distance)  # alone: a second key would keep the planner off the index
            .limit(wanted + _TIE_MARGIN)
        )
        ef_search = max(_MIN_EF_SEARCH, min(1000, wanted))

        def work(conn: Connection) -> tuple[list[tuple[Issue, float]], bool]:
            conn.exec_driver_sql("SET LOCAL hnsw.iterative_scan = strict_order")
            conn.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {ef_search:d}")
            rows: list[Row[Any]] = list(conn.execute(stmt))
            issues = {r.id: to_record(r, Issue) for r in rows}
            # scored again from the float32 data: the same numbers as every other engine
            scored = top_k(vector, [(r.id, from_blob(r.data)) for r in rows], len(rows))
            return [(issues[s.id], s.score) for s in scored], len(rows) < wanted + _TIE_MARGIN

        # a transaction (SET LOCAL) that writes nothing
        return await self._db.run_write(work)

    async def _all_issues(self, stmt: Select[Any]) -> list[Issue]:
        def every(conn: Connection) -> list[Issue]:
            return [to_record(row, Issue) for row in conn.execute(stmt)]

        return await self._db.run_read(every)


_PG_UPSERT = text(
    "INSERT INTO issue_vectors"
    " (account_id, issue_id, model, content_hash, embedded_at, data, embedding)"
    " VALUES (:account_id, :issue_id, :model, :content_hash, :embedded_at, :data,"
    " CAST(:embedding AS vector))"
    " ON CONFLICT (account_id, issue_id, model) DO UPDATE SET"
    " content_hash = excluded.content_hash, embedded_at = excluded.embedded_at,"
    " data = excluded.data, embedding = excluded.embedding"
)


def _distance(dims: int) -> TextClause:
    """pgvector's cosine distance with the cast the model's index is built on."""
    cast = f"vector({dims})"
    return text(f"issue_vectors.embedding::{cast} <=> CAST(:query_vector AS {cast})")


def _candidates(
    account_id: str,
    model: str,
    query: IssueQuery,
    exclude: Sequence[str],
    db: Database,
    *,
    literal_model: bool = False,
) -> Select[Any]:
    """The account's vectors of ``model`` joined to their issues, narrowed by the SQL the
    issue search uses (a superset of ``matches``), ``exclude`` left out."""
    v, i = t.issue_vectors.c, t.issues.c
    model_is: ColumnElement[bool] = v.model == (
        bindparam("model", model, literal_execute=True) if literal_model else model
    )
    joined = t.issue_vectors.join(t.issues, (i.account_id == v.account_id) & (i.id == v.issue_id))
    stmt = select(v.issue_id).select_from(joined).where(v.account_id == account_id, model_is)
    stmt = stmt.where(*narrowing(query, db))
    if exclude:
        stmt = stmt.where(v.issue_id.not_in(list(exclude)))
    return stmt
