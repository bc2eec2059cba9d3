"""The capture store port (``CaptureStore``) and its in-memory implementation.

The SQL implementation is ``server.db.stores.captures.SqlCaptureStore``; one contract suite
(tests/contract/test_gateway_capture.py) runs over memory, SQLite and PostgreSQL.

Full text: an interaction matches when its text holds every word of the query (words as
``capture_text.words`` splits them; SQLite FTS5 and PostgreSQL's ``simple`` text search split
the same way for plain words); scores are each engine's own (bm25, ts_rank, occurrences), higher
is better. Similarity: the cosine of the query's vector with each interaction's vector of the
same embedder identity (``model``), exact (every candidate is scored: captured interactions are
per account and bounded by retention).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from hub.model_gateway.capture_records import (
    CaptureRule,
    CaptureScope,
    Interaction,
    InteractionHit,
    InteractionQuery,
    RuntimeSession,
)
from hub.model_gateway.capture_text import snippet, words
from hub.model_gateway.records import UsageRecord
from hub.search.embedders import Vector
from hub.search.vectors import top_k
from hub.store_rules import aware_utc, check_limit, stored_copy

MAX_LIMIT = 1000


class CaptureStore(Protocol):
    @property
    def engine(self) -> str:
        """What answers full-text queries: ``memory``, ``fts5`` (SQLite), ``tsvector``."""
        ...

    async def set_rule(self, rule: CaptureRule) -> None:
        """Create or replace the rule of (account, scope, subject). NotFound without the
        account."""
        ...

    async def rules(self, account_id: str) -> Sequence[CaptureRule]:
        """The account's rules, by scope then subject."""
        ...

    async def delete_rule(self, account_id: str, scope: CaptureScope, subject: str) -> bool:
        """Whether there was such a rule."""
        ...

    async def add_many(
        self, items: Sequence[tuple[Interaction, Vector | None]], *, model: str
    ) -> None:
        """Store interactions (with their vector under embedder identity ``model``, or none)
        in one transaction. An id already stored is skipped (a retried batch stores nothing
        twice). NotFound when an account does not exist."""
        ...

    async def get(self, account_id: str, interaction_id: str) -> Interaction | None: ...

    async def search(
        self,
        account_id: str,
        query: InteractionQuery,
        *,
        vector: Vector | None = None,
        model: str | None = None,
    ) -> Sequence[InteractionHit]:
        """Best first, at most ``query.limit``. With ``vector`` (and ``model``): similarity;
        else with ``query.text``: full text; else the newest first."""
        ...

    async def purge(self, now: datetime) -> int:
        """Delete the interactions whose ``expires_at`` is past; how many."""
        ...

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
        """Runtime sessions from the usage ledger (not from captured content): the requests
        grouped by flow execution, else by session header; the most recent first."""
        ...

    async def session_records(
        self, account_id: str, session: str, *, limit: int = 100
    ) -> Sequence[UsageRecord]:
        """The session's usage records (its execution's, or its header's), newest first."""
        ...


def matches(interaction: Interaction, query: InteractionQuery) -> bool:
    """The filters of ``query`` (not its text)."""
    i, q = interaction, query
    return not (
        (q.model is not None and i.model != q.model)
        or (q.flow is not None and i.flow != q.flow)
        or (q.principal is not None and i.principal != q.principal)
        or (q.session is not None and q.session not in (i.execution_id, i.session_id))
        or (q.since is not None and i.created_at < aware_utc(q.since, "since"))
        or (q.until is not None and i.created_at >= aware_utc(q.until, "until"))
    )


def hit(interaction: Interaction, score: float, query_words: list[str]) -> InteractionHit:
    return InteractionHit(
        interaction=interaction, score=score, snippet=snippet(interaction.text, query_words)
    )


def group_sessions(
    records: Iterable[UsageRecord],
    *,
    flow: str | None,
    principal: str | None,
    since: datetime | None,
    session: str | None,
    limit: int,
) -> list[RuntimeSession]:
    """Usage records → runtime sessions (the in-memory answer; SQL aggregates the same)."""
    groups: dict[str, list[UsageRecord]] = {}
    for r in records:
        key = r.execution_id or r.session_id
        if key is None or (session is not None and key != session):
            continue
        groups.setdefault(key, []).append(r)
    found = []
    for key, rs in groups.items():
        rs.sort(key=lambda r: r.created_at)
        first = rs[0]
        one = RuntimeSession(
            id=key,
            flow=max((r.flow for r in rs if r.flow), default=None),
            principal=max(r.principal for r in rs),
            execution_id=first.execution_id,
            models=tuple(sorted({r.model for r in rs})),
            calls=len(rs),
            input_tokens=sum(r.input_tokens for r in rs),
            output_tokens=sum(r.output_tokens for r in rs),
            cost=sum((r.cost for r in rs), start=first.cost * 0),
            started_at=first.created_at,
            last_at=rs[-1].created_at,
        )
        if (
            (flow is not None and one.flow != flow)
            or (principal is not None and one.principal != principal)
            or (since is not None and one.last_at < aware_utc(since, "since"))
        ):
            continue
        found.append(one)
    found.sort(key=lambda s: (s.last_at, s.id), reverse=True)
    return found[:limit]


class InMemoryCaptureStore:
    """``CaptureStore`` in memory. ``usage`` gives an account's usage records (sessions);
    ``require_account`` refuses unknown accounts, as the database's foreign keys do."""

    def __init__(
        self,
        *,
        usage: Callable[[str], Iterable[UsageRecord]] = lambda _account: (),
        require_account: Callable[[str], None] = lambda _account: None,
    ) -> None:
        self._usage = usage
        self._require_account = require_account
        self._rules: dict[tuple[str, CaptureScope, str], CaptureRule] = {}
        self.engine = "memory"
        self._items: dict[str, tuple[Interaction, Vector | None, str]] = {}

    async def set_rule(self, rule: CaptureRule) -> None:
        self._require_account(rule.account_id)
        self._rules[(rule.account_id, rule.scope, rule.subject)] = stored_copy(rule)

    async def rules(self, account_id: str) -> Sequence[CaptureRule]:
        found = [r for (a, _, _), r in self._rules.items() if a == account_id]
        return sorted(found, key=lambda r: (r.scope.value, r.subject))

    async def delete_rule(self, account_id: str, scope: CaptureScope, subject: str) -> bool:
        return self._rules.pop((account_id, scope, subject), None) is not None

    async def add_many(
        self, items: Sequence[tuple[Interaction, Vector | None]], *, model: str
    ) -> None:
        for interaction, _ in items:
            self._require_account(interaction.account_id)
        for interaction, vector in items:
            if interaction.id not in self._items:
                self._items[interaction.id] = (stored_copy(interaction), vector, model)

    async def get(self, account_id: str, interaction_id: str) -> Interaction | None:
        found = self._items.get(interaction_id)
        return found[0] if found and found[0].account_id == account_id else None

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
        rows = [
            (i, v, m)
            for i, v, m in self._items.values()
            if i.account_id == account_id and matches(i, query)
        ]
        if vector is not None:
            by_id = {i.id: i for i, _, _ in rows}
            candidates = [(i.id, v) for i, v, m in rows if v is not None and m == model]
            return [
                hit(by_id[s.id], s.score, query_words)
                for s in top_k(vector, candidates, query.limit)
            ]
        if query_words:
            scored = []
            for i, _, _ in rows:
                text = words(i.text)
                if all(w in text for w in query_words):
                    score = float(sum(text.count(w) for w in query_words))
                    scored.append((score, i))
            scored.sort(key=lambda p: (-p[0], -p[1].created_at.timestamp(), p[1].id))
            return [hit(i, s, query_words) for s, i in scored[: query.limit]]
        newest = sorted((i for i, _, _ in rows), key=lambda i: (i.created_at, i.id), reverse=True)
        return [hit(i, 0.0, []) for i in newest[: query.limit]]

    async def purge(self, now: datetime) -> int:
        gone = [k for k, (i, _, _) in self._items.items() if i.expires_at <= now]
        for key in gone:
            del self._items[key]
        return len(gone)

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
        return group_sessions(
            self._usage(account_id),
            flow=flow,
            principal=principal,
            since=since,
            session=session,
            limit=limit,
        )

    async def session_records(
        self, account_id: str, session: str, *, limit: int = 100
    ) -> Sequence[UsageRecord]:
        check_limit(limit)
        found = [r for r in self._usage(account_id) if session == (r.execution_id or r.session_id)]
        found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return found[:limit]


RECENT = timedelta(minutes=15)  # a session with a call this recent is active (decision 0110)
