"""Gateway content capture in SQL (``hub.model_gateway.capture_store.CaptureStore``).

Shares the ``Database`` of ``SqlStorage`` (``SqlCaptureStore.beside(storage)``).

- Full text: SQLite's FTS5 table ``gateway_interactions_fts`` (external content, kept by the
  triggers of migration 0020), ranked by ``bm25``; PostgreSQL's ``to_tsvector('simple', …)``
  with its GIN index and ``plainto_tsquery``, ranked by ``ts_rank``. Every query word must
  occur (AND) on both.
- Similarity: vectors are float32 blobs with the embedder identity that made them; a query
  reads the account's candidates of that identity (within the filters) and scores them exactly
  (``hub.search.vectors.top_k``).
- Snippets are cut in Python from the stored text (``capture_text.snippet``), the same on
  every backend.
- Runtime sessions are aggregated from ``usage_records`` by ``coalesce(execution_id,
  session_id)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Select, delete, func, insert, literal_column, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.model_gateway.capture_records import (
    CaptureMode,
    CaptureRule,
    CaptureScope,
    Interaction,
    InteractionHit,
    InteractionQuery,
    RuntimeSession,
)
from hub.model_gateway.capture_store import hit
from hub.model_gateway.capture_text import words
from hub.model_gateway.records import UsageRecord, from_nanos, to_nanos
from hub.search.embedders import Vector
from hub.search.vectors import top_k
from hub.store_rules import aware_utc, check_limit
from server.db import tables as t
from server.db.stores._base import Database, SqlStore, to_record, to_values
from server.db.stores._vector_scan import from_blob, to_blob
from server.db.stores.gateway import _usage_record, _utc

if TYPE_CHECKING:
    from server.db import SqlStorage

_NOT_CONTENT = ("search_text", "vector", "vector_model", "cost_nanos", "score")


def _values(interaction: Interaction, vector: Vector | None, model: str) -> dict[str, Any]:
    values = to_values(interaction)
    values["cost_nanos"] = to_nanos(values.pop("cost"))
    values["mode"] = interaction.mode.value
    values["search_text"] = interaction.text
    values["vector"] = None if vector is None else to_blob(vector)
    values["vector_model"] = None if vector is None else model
    return values


def _interaction(row: Any) -> Interaction:
    values = {str(k): v for k, v in row._mapping.items() if str(k) not in _NOT_CONTENT}
    values["cost"] = from_nanos(int(row.cost_nanos))
    for name in ("created_at", "expires_at"):
        values[name] = _utc(values[name])
    values["mode"] = CaptureMode(values["mode"])
    return Interaction(**values)


class SqlCaptureStore(SqlStore):
    @classmethod
    def beside(cls, storage: SqlStorage) -> SqlCaptureStore:
        """On the same engine (and SQLite writer) as the hub's ``storage``."""
        return cls(storage.database)

    @property
    def engine(self) -> str:
        return "fts5" if self._db.dialect == "sqlite" else "tsvector"

    # --- rules ---------------------------------------------------------------------------
    async def set_rule(self, rule: CaptureRule) -> None:
        values = to_values(rule)
        values["scope"], values["mode"] = rule.scope.value, rule.mode.value
        stmt = self._db.upsert(
            t.gateway_capture_rules,
            values,
            key=("account_id", "scope", "subject"),
            keep=("created_at",),
        )

        def work(conn: Connection) -> None:
            conn.execute(stmt)

        await self._db.run_single(work, missing="the capture rule's account does not exist")

    async def rules(self, account_id: str) -> Sequence[CaptureRule]:
        c = t.gateway_capture_rules.c
        stmt = (
            select(t.gateway_capture_rules)
            .where(c.account_id == account_id)
            .order_by(c.scope, c.subject)
        )

        def every(conn: Connection) -> list[CaptureRule]:
            return [to_record(row, CaptureRule) for row in conn.execute(stmt)]

        return await self._db.run_read(every)

    async def delete_rule(self, account_id: str, scope: CaptureScope, subject: str) -> bool:
        c = t.gateway_capture_rules.c
        stmt = delete(t.gateway_capture_rules).where(
            c.account_id == account_id, c.scope == scope.value, c.subject == subject
        )

        def work(conn: Connection) -> bool:
            return bool(conn.execute(stmt).rowcount)

        return await self._db.run_single(work)

    # --- interactions --------------------------------------------------------------------
    async def add_many(
        self, items: Sequence[tuple[Interaction, Vector | None]], *, model: str
    ) -> None:
        if not items:
            return
        rows = [_values(i, v, model) for i, v in items]
        ids = [row["id"] for row in rows]

        def work(conn: Connection) -> None:
            c = t.gateway_interactions.c
            stored = set(conn.execute(select(c.id).where(c.id.in_(ids))).scalars())
            fresh = [row for row in rows if row["id"] not in stored]
            if fresh:
                conn.execute(insert(t.gateway_interactions), fresh)

        await self._db.run_write(work, missing="the interaction's account does not exist")

    async def get(self, account_id: str, interaction_id: str) -> Interaction | None:
        c = t.gateway_interactions.c
        stmt = select(t.gateway_interactions).where(
            c.account_id == account_id, c.id == interaction_id
        )

        def one(conn: Connection) -> Interaction | None:
            row = conn.execute(stmt).first()
            return None if row is None else _interaction(row)

        return await self._db.run_read(one)

    def _filtered(self, account_id: str, query: InteractionQuery, *columns: Any) -> Select[Any]:
        c = t.gateway_interactions.c
        stmt = select(t.gateway_interactions, *columns).where(c.account_id == account_id)
        for column, value in ((c.model, query.model), (c.flow, query.flow)):
            if value is not None:
                stmt = stmt.where(column == value)
        if query.principal is not None:
            stmt = stmt.where(c.principal == query.principal)
        if query.session is not None:
            stmt = stmt.where((c.execution_id == query.session) | (c.session_id == query.session))
        if query.since is not None:
            stmt = stmt.where(c.created_at >= aware_utc(query.since, "since"))
        if query.until is not None:
            stmt = stmt.where(c.created_at < aware_utc(query.until, "until"))
        return stmt

    async def search(
        self,
        account_id: str,
        query: InteractionQuery,
        *,
        vector: Vector | None = None,
        model: str | None = None,
    ) -> Sequence[InteractionHit]:
        check_limit(query.limit)
        query_words = words(query.text)
        c = t.gateway_interactions.c
        if vector is not None:
            stmt = self._filtered(account_id, query).where(c.vector_model == model)

            def similar(conn: Connection) -> list[InteractionHit]:
                rows = {row.id: row for row in conn.execute(stmt) if row.vector is not None}
                candidates = [(i, from_blob(bytes(row.vector))) for i, row in rows.items()]
                best = top_k(vector, candidates, query.limit)
                return [hit(_interaction(rows[s.id]), s.score, query_words) for s in best]

            return await self._db.run_read(similar)
        if not query_words:
            stmt = self._filtered(account_id, query, literal_column("0.0").label("score"))
            stmt = stmt.order_by(c.created_at.desc(), c.id.desc()).limit(query.limit)
        elif self._db.dialect == "sqlite":
            match = " ".join('"' + w.replace('"', '""') + '"' for w in query_words)
            fts = text(
                "SELECT rowid AS rowid, -bm25(gateway_interactions_fts) AS rank "
                "FROM gateway_interactions_fts WHERE gateway_interactions_fts MATCH :match"
            ).columns(literal_column("rowid"), literal_column("rank"))
            ranked = fts.subquery("ranked")
            stmt = (
                self._filtered(account_id, query, ranked.c.rank.label("score"))
                .select_from(
                    t.gateway_interactions.join(
                        ranked, ranked.c.rowid == literal_column("gateway_interactions.rowid")
                    )
                )
                .order_by(ranked.c.rank.desc(), c.created_at.desc(), c.id)
                .limit(query.limit)
                .params(match=match)
            )
        else:
            vector_of = func.to_tsvector(literal_column("'simple'"), c.search_text)
            tsquery = func.plainto_tsquery(literal_column("'simple'"), " ".join(query_words))
            score = func.ts_rank(vector_of, tsquery)
            stmt = (
                self._filtered(account_id, query, score.label("score"))
                .where(vector_of.op("@@")(tsquery))
                .order_by(score.desc(), c.created_at.desc(), c.id)
                .limit(query.limit)
            )

        def rows(conn: Connection) -> list[InteractionHit]:
            return [
                hit(_interaction(row), float(row.score), query_words) for row in conn.execute(stmt)
            ]

        return await self._db.run_read(rows)

    async def purge(self, now: datetime) -> int:
        stmt = delete(t.gateway_interactions).where(
            t.gateway_interactions.c.expires_at <= aware_utc(now, "now")
        )

        def work(conn: Connection) -> int:
            return int(conn.execute(stmt).rowcount)

        return await self._db.run_single(work)

    # --- runtime sessions ----------------------------------------------------------------
    async def sessions(
        self,
        account_id: str,
        *,
        flow: str | None = None,
        principal: str | None = None,
        since: datetime | None = None,
        session: str | None = None,
        limit: int = 100,
    ) -> Sequence[RuntimeSession]:
        check_limit(limit)
        c = t.usage_records.c
        key = func.coalesce(c.execution_id, c.session_id)
        last_at = func.max(c.created_at).label("last_at")
        flow_of = func.max(c.flow)
        principal_of = func.max(c.principal)
        stmt = (
            select(
                key.label("id"),
                flow_of.label("flow"),
                principal_of.label("principal"),
                func.max(c.execution_id).label("execution_id"),
                func.count().label("calls"),
                func.coalesce(func.sum(c.input_tokens), 0).label("input_tokens"),
                func.coalesce(func.sum(c.output_tokens), 0).label("output_tokens"),
                func.coalesce(func.sum(c.cost_nanos), 0).label("cost_nanos"),
                func.min(c.created_at).label("started_at"),
                last_at,
            )
            .where(c.account_id == account_id, key.is_not(None))
            .group_by(key)
            .order_by(last_at.desc(), key.desc())
            .limit(limit)
        )
        if session is not None:
            stmt = stmt.where(key == session)
        if flow is not None:
            stmt = stmt.having(flow_of == flow)
        if principal is not None:
            stmt = stmt.having(principal_of == principal)
        if since is not None:
            stmt = stmt.having(func.max(c.created_at) >= aware_utc(since, "since"))

        def rows(conn: Connection) -> list[RuntimeSession]:
            found = conn.execute(stmt).all()
            keys = [row.id for row in found]
            models: dict[str, set[str]] = {k: set() for k in keys}
            if keys:
                pairs = select(key.label("id"), c.model).where(
                    c.account_id == account_id, key.in_(keys)
                )
                for pair in conn.execute(pairs.distinct()):
                    models[pair.id].add(pair.model)
            return [
                RuntimeSession(
                    id=row.id,
                    flow=row.flow,
                    principal=row.principal,
                    execution_id=row.execution_id,
                    models=tuple(sorted(models[row.id])),
                    calls=int(row.calls),
                    input_tokens=int(row.input_tokens),
                    output_tokens=int(row.output_tokens),
                    cost=from_nanos(int(row.cost_nanos)),
                    started_at=_utc(row.started_at),
                    last_at=_utc(row.last_at),
                )
                for row in found
            ]

        return await self._db.run_read(rows)

    async def session_records(
        self, account_id: str, session: str, *, limit: int = 100
    ) -> Sequence[UsageRecord]:
        check_limit(limit)
        c = t.usage_records.c
        stmt = (
            select(t.usage_records)
            .where(
                c.account_id == account_id,
                func.coalesce(c.execution_id, c.session_id) == session,
            )
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit)
        )

        def every(conn: Connection) -> list[UsageRecord]:
            return [_usage_record(row) for row in conn.execute(stmt)]

        return await self._db.run_read(every)


if TYPE_CHECKING:  # mypy proves the SQL store keeps the port's shape
    from hub.model_gateway.capture_store import CaptureStore

    _store: CaptureStore = SqlCaptureStore(Database(cast(AsyncEngine, None)))
