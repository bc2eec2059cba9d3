"""The SQL duplicate-pair store (``hub.search.duplicate_store.DuplicatePairStore``) on the
hub's engine: one row per pair (``issue_a < issue_b``) in ``duplicate_pairs``.

A verdict and a resolution are written by separate upserts that each set only their own
columns, so one never overwrites the other; both are one statement (``run_single``). A pair
naming an issue the account does not have is refused by the (account_id, issue) foreign keys
(``NotFoundError``); removing an issue (its tracker) removes its pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection, Row

from hub.search.duplicate_records import (
    Classification,
    DuplicatePair,
    PairResolution,
    PairVerdict,
    Resolution,
    ordered,
)
from hub.store_rules import aware_utc
from server.db import tables as t
from server.db.stores._base import Database, SqlStore, executes

_KEY = ("account_id", "issue_a", "issue_b")


def _missing(account_id: str, a: str, b: str) -> str:
    return f"issue {a!r} or {b!r} does not exist in account {account_id!r}"


def _pair(row: Row[Any]) -> DuplicatePair:
    m = row._mapping
    verdict = None
    if m["verdict"] is not None:
        verdict = PairVerdict(
            model=m["verdict_model"],
            hash_a=m["verdict_hash_a"],
            hash_b=m["verdict_hash_b"],
            classification=Classification(m["verdict"]),
            reason=m["verdict_reason"] or "",
            suggestion=m["verdict_suggestion"] or "",
            asked_at=m["verdict_at"],
        )
    resolution = None
    if m["resolution"] is not None:
        resolution = PairResolution(
            resolution=Resolution(m["resolution"]),
            canonical_id=m["canonical_id"],
            resolved_by=m["resolved_by"],
            resolved_at=m["resolved_at"],
        )
    return DuplicatePair(
        account_id=m["account_id"],
        issue_a=m["issue_a"],
        issue_b=m["issue_b"],
        verdict=verdict,
        resolution=resolution,
    )


class SqlDuplicatePairs(SqlStore):
    """On the ``Database`` of the hub's ``SqlStorage`` (``SqlDuplicatePairs(storage.database)``)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)

    async def get(self, account_id: str, issue_a: str, issue_b: str) -> DuplicatePair | None:
        a, b = ordered(issue_a, issue_b)
        c = t.duplicate_pairs.c
        stmt = select(t.duplicate_pairs).where(
            c.account_id == account_id, c.issue_a == a, c.issue_b == b
        )

        def first(conn: Connection) -> DuplicatePair | None:
            row = conn.execute(stmt).first()
            return None if row is None else _pair(row)

        return await self._db.run_read(first)

    async def save_verdict(
        self, account_id: str, issue_a: str, issue_b: str, verdict: PairVerdict
    ) -> None:
        await self._upsert(
            account_id,
            issue_a,
            issue_b,
            {
                "verdict_model": verdict.model,
                "verdict_hash_a": verdict.hash_a,
                "verdict_hash_b": verdict.hash_b,
                "verdict": verdict.classification.value,
                "verdict_reason": verdict.reason,
                "verdict_suggestion": verdict.suggestion,
                "verdict_at": aware_utc(verdict.asked_at, "asked_at"),
            },
        )

    async def resolve(
        self, account_id: str, issue_a: str, issue_b: str, resolution: PairResolution
    ) -> None:
        await self._upsert(
            account_id,
            issue_a,
            issue_b,
            {
                "resolution": resolution.resolution.value,
                "canonical_id": resolution.canonical_id,
                "resolved_by": resolution.resolved_by,
                "resolved_at": aware_utc(resolution.resolved_at, "resolved_at"),
            },
        )

    async def _upsert(
        self, account_id: str, issue_a: str, issue_b: str, columns: dict[str, Any]
    ) -> None:
        a, b = ordered(issue_a, issue_b)
        values = {"account_id": account_id, "issue_a": a, "issue_b": b, **columns}
        stmt = self._db.upsert(t.duplicate_pairs, values, key=_KEY, keep=())
        await self._db.run_single(executes(stmt), missing=_missing(account_id, a, b))

    async def involving(self, account_id: str, issue_ids: Sequence[str]) -> Sequence[DuplicatePair]:
        wanted = sorted(set(issue_ids))
        if not wanted:
            return []
        c = t.duplicate_pairs.c
        found: dict[tuple[str, str], DuplicatePair] = {}
        for start in range(0, len(wanted), 500):  # bound parameters per statement
            chunk = wanted[start : start + 500]
            stmt = select(t.duplicate_pairs).where(
                c.account_id == account_id, or_(c.issue_a.in_(chunk), c.issue_b.in_(chunk))
            )

            def every(conn: Connection, stmt: Any = stmt) -> list[DuplicatePair]:
                return [_pair(row) for row in conn.execute(stmt).all()]

            for pair in await self._db.run_read(every):
                found[(pair.issue_a, pair.issue_b)] = pair
        return [found[k] for k in sorted(found)]


if TYPE_CHECKING:  # mypy proves the SQL store keeps the port's shape
    from hub.search.duplicate_store import DuplicatePairStore

    def _check(db: Database) -> DuplicatePairStore:
        return SqlDuplicatePairs(db)
