"""The model gateway's usage ledger, budgets and price overrides in SQL.

Money is integer nano-dollars in every column (``hub.model_gateway.records.to_nanos``), so sums
are exact on both databases. A reservation locks the counter row of each budget and period it
counts against (``SELECT … FOR UPDATE`` on PostgreSQL, in budget order so two reservations
never deadlock; SQLite has one writer at a time anyway), sums the unexpired reservations,
and inserts its own only when every hard limit holds: concurrent requests of any number of
processes cannot overshoot. Reservations that were never settled stop counting at their
``expires_at`` and are purged a day later.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Select, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from hub.errors import NotFoundError, ValidationError
from hub.model_gateway.memory import check_group
from hub.model_gateway.records import Budget, ModelPrice, UsageRecord, from_nanos, to_nanos
from hub.ports import (
    BudgetClaim,
    BudgetCounter,
    ReserveOutcome,
    UsageGroup,
    UsageQuery,
    UsageSession,
)
from hub.store_rules import aware_utc, check_limit
from server.db import tables as t
from server.db.stores._base import Database, SqlStore, to_record

PURGE_AFTER = timedelta(days=1)  # an unsettled reservation this long expired is dropped
PURGE_EVERY_SECONDS = 60.0


# --- usage ----------------------------------------------------------------------------------
def _usage_values(record: UsageRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in record.__struct_fields__}
    values["cost_nanos"] = to_nanos(values.pop("cost"))
    values["created_at"] = aware_utc(record.created_at, "created_at")
    return values


def _usage_record(row: Any) -> UsageRecord:
    values = {str(k): v for k, v in row._mapping.items()}
    values["cost"] = from_nanos(int(values.pop("cost_nanos")))
    return UsageRecord(**values)


class SqlUsageStore(SqlStore):
    async def add_many(self, records: Sequence[UsageRecord]) -> None:
        if not records:
            return
        rows = [_usage_values(r) for r in records]

        def work(conn: Connection) -> None:
            conn.execute(insert(t.usage_records), rows)

        await self._db.run_write(
            work,
            conflict="a usage record with that id exists",
            missing="the usage record's account does not exist",
        )

    async def list(self, account_id: str, query: UsageQuery) -> Sequence[UsageRecord]:
        check_limit(query.limit)
        c = t.usage_records.c
        stmt = select(t.usage_records).where(c.account_id == account_id)
        for column, value in (
            (c.flow, query.flow),
            (c.execution_id, query.execution_id),
            (c.api_key_id, query.api_key_id),
            (c.principal, query.principal),
            (c.model, query.model),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if query.since is not None:
            stmt = stmt.where(c.created_at >= aware_utc(query.since, "since"))
        if query.until is not None:
            stmt = stmt.where(c.created_at < aware_utc(query.until, "until"))
        if query.before is not None:
            at, rid = aware_utc(query.before[0], "before"), query.before[1]
            stmt = stmt.where((c.created_at < at) | ((c.created_at == at) & (c.id < rid)))
        stmt = stmt.order_by(c.created_at.desc(), c.id.desc()).limit(query.limit)

        def every(conn: Connection) -> list[UsageRecord]:
            return [_usage_record(row) for row in conn.execute(stmt).all()]

        return await self._db.run_read(every)

    def _day(self) -> Any:
        created = t.usage_records.c.created_at
        if self._db.dialect == "postgresql":
            return func.to_char(func.timezone("UTC", created), "YYYY-MM-DD")
        return func.substr(created, 1, 10)  # SQLite keeps "YYYY-MM-DD HH:MM:SS…" in UTC

    async def summary(
        self,
        account_id: str,
        *,
        group_by: str,
        since: datetime | None = None,
        until: datetime | None = None,
        flow: str | None = None,
    ) -> Sequence[UsageGroup]:
        check_group(group_by)
        c = t.usage_records.c
        key = {
            "day": self._day(),
            "model": c.model,
            "flow": c.flow,
            "api_key": c.api_key_id,
        }[group_by].label("key")
        stmt = _totals(select(key)).where(c.account_id == account_id).group_by(key)
        if flow is not None:
            stmt = stmt.where(c.flow == flow)
        if since is not None:
            stmt = stmt.where(c.created_at >= aware_utc(since, "since"))
        if until is not None:
            stmt = stmt.where(c.created_at < aware_utc(until, "until"))

        def groups(conn: Connection) -> list[UsageGroup]:
            return [
                UsageGroup(
                    key=None if row.key is None else str(row.key),
                    requests=int(row.requests),
                    input_tokens=int(row.input_tokens),
                    output_tokens=int(row.output_tokens),
                    cached_tokens=int(row.cached_tokens),
                    cost=from_nanos(int(row.cost_nanos)),
                )
                for row in conn.execute(stmt).all()
            ]

        found = await self._db.run_read(groups)
        return sorted(found, key=lambda g: (g.key is None, g.key or ""))

    async def sessions(
        self,
        account_id: str,
        *,
        flow: str | None = None,
        principal: str | None = None,
        since: datetime | None = None,
        execution_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[UsageSession]:
        check_limit(limit)
        c = t.usage_records.c
        last_seen = func.max(c.created_at).label("last_seen")
        stmt = (
            _totals(
                select(
                    c.execution_id,
                    func.max(c.flow).label("flow"),
                    func.max(c.principal).label("principal"),
                    func.min(c.created_at).label("first_seen"),
                    last_seen,
                    func.sum(case((c.outcome != "ok", 1), else_=0)).label("errors"),
                )
            )
            .where(c.account_id == account_id, c.execution_id.is_not(None))
            .group_by(c.execution_id)
            .order_by(last_seen.desc(), c.execution_id.desc())
            .limit(limit)
        )
        for column, value in ((c.flow, flow), (c.principal, principal)):
            if value is not None:
                stmt = stmt.where(column == value)
        if execution_id is not None:
            stmt = stmt.where(c.execution_id == execution_id)
        if since is not None:
            stmt = stmt.where(c.created_at >= aware_utc(since, "since"))

        def rows(conn: Connection) -> list[UsageSession]:
            return [
                UsageSession(
                    execution_id=row.execution_id,
                    flow=row.flow,
                    principal=row.principal,
                    requests=int(row.requests),
                    input_tokens=int(row.input_tokens),
                    output_tokens=int(row.output_tokens),
                    cached_tokens=int(row.cached_tokens),
                    cost=from_nanos(int(row.cost_nanos)),
                    errors=int(row.errors),
                    first_seen=_utc(row.first_seen),
                    last_seen=_utc(row.last_seen),
                )
                for row in conn.execute(stmt).all()
            ]

        return await self._db.run_read(rows)


def _utc(value: Any) -> datetime:
    """Aggregates lose the column type on SQLite (a string comes back)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return t.UtcDateTime().process_result_value(value, None)  # type: ignore[arg-type,return-value]


def _totals(stmt: Select[Any]) -> Select[Any]:
    c = t.usage_records.c
    return stmt.add_columns(
        func.count().label("requests"),
        func.coalesce(func.sum(c.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(c.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(c.cached_tokens), 0).label("cached_tokens"),
        func.coalesce(func.sum(c.cost_nanos), 0).label("cost_nanos"),
    )


# --- budgets --------------------------------------------------------------------------------
def _budget_values(budget: Budget) -> dict[str, Any]:
    return {
        "id": budget.id,
        "account_id": budget.account_id,
        "name": budget.name,
        "scope": budget.scope.value,
        "scope_id": budget.scope_id,
        "period": budget.period.value,
        "soft_limit_nanos": None if budget.soft_limit is None else to_nanos(budget.soft_limit),
        "hard_limit_nanos": None if budget.hard_limit is None else to_nanos(budget.hard_limit),
        "on_soft": budget.on_soft.value,
        "approval_workflow": budget.approval_workflow,
        "created_at": aware_utc(budget.created_at, "created_at"),
    }


def _budget(row: Any) -> Budget:
    v = {str(k): x for k, x in row._mapping.items()}
    soft, hard = v.pop("soft_limit_nanos"), v.pop("hard_limit_nanos")
    v["soft_limit"] = None if soft is None else from_nanos(int(soft))
    v["hard_limit"] = None if hard is None else from_nanos(int(hard))
    return msgspec.convert(v, Budget)


def _counter_values(budget_id: str, period_start: datetime) -> dict[str, Any]:
    return {
        "budget_id": budget_id,
        "period_start": period_start,
        "spent_nanos": 0,
        "soft_notified": False,
    }


class SqlBudgetStore(SqlStore):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._next_purge = 0.0

    def _purge_due(self) -> bool:
        """Long-expired reservations are purged by one reservation a minute, not by each."""
        now = time.monotonic()
        if now < self._next_purge:
            return False
        self._next_purge = now + PURGE_EVERY_SECONDS
        return True

    async def add(self, budget: Budget) -> None:
        values = _budget_values(budget)
        conflict = f"budget {budget.id!r} or name {budget.name!r} exists"
        missing = f"account {budget.account_id!r} does not exist"
        async with self._db.write(conflict=conflict, missing=missing) as conn:
            await conn.execute(insert(t.budgets).values(values))

    async def get(self, account_id: str, budget_id: str) -> Budget | None:
        c = t.budgets.c
        return await self._one(
            select(t.budgets).where(c.account_id == account_id, c.id == budget_id)
        )

    async def get_by_name(self, account_id: str, name: str) -> Budget | None:
        c = t.budgets.c
        return await self._one(select(t.budgets).where(c.account_id == account_id, c.name == name))

    async def _one(self, stmt: Select[Any]) -> Budget | None:
        def first(conn: Connection) -> Budget | None:
            row = conn.execute(stmt).first()
            return None if row is None else _budget(row)

        return await self._db.run_read(first)

    async def list(self, account_id: str) -> Sequence[Budget]:
        c = t.budgets.c
        stmt = select(t.budgets).where(c.account_id == account_id).order_by(c.name, c.id)

        def every(conn: Connection) -> list[Budget]:
            return [_budget(row) for row in conn.execute(stmt).all()]

        return await self._db.run_read(every)

    async def delete(self, account_id: str, budget_id: str) -> None:
        def work(conn: Connection) -> None:
            b = t.budgets.c
            conn.execute(
                delete(t.budget_reservations)
                .where(t.budget_reservations.c.budget_id == budget_id)
                .where(select(b.id).where(b.id == budget_id, b.account_id == account_id).exists())
            )
            conn.execute(
                delete(t.budget_counters)
                .where(t.budget_counters.c.budget_id == budget_id)
                .where(select(b.id).where(b.id == budget_id, b.account_id == account_id).exists())
            )
            gone = conn.execute(
                delete(t.budgets).where(b.account_id == account_id, b.id == budget_id)
            )
            if gone.rowcount != 1:
                raise NotFoundError(f"budget {budget_id!r} does not exist")

        await self._db.run_write(work)

    def _ensure_counters(self, conn: Connection, keys: Sequence[tuple[str, datetime]]) -> None:
        for budget_id, period_start in keys:
            conn.execute(
                self._db.insert_missing(
                    t.budget_counters,
                    _counter_values(budget_id, period_start),
                    key=["budget_id", "period_start"],
                )
            )

    def _read_counters(
        self,
        conn: Connection,
        keys: Sequence[tuple[str, datetime]],
        at: datetime,
        *,
        lock: bool = False,
    ) -> dict[tuple[str, datetime], BudgetCounter]:
        """The stored counters of ``keys`` (locked in budget order with ``lock``, on
        PostgreSQL), with the reservations unexpired at ``at`` summed in."""
        c, r = t.budget_counters.c, t.budget_reservations.c
        wanted = or_(*(and_(c.budget_id == b, c.period_start == p) for b, p in keys))
        stmt = select(t.budget_counters).where(wanted)
        if lock:
            stmt = stmt.order_by(c.budget_id, c.period_start).with_for_update()
        found = {
            (row.budget_id, row.period_start): to_record(row, BudgetCounter)
            for row in conn.execute(stmt).all()
        }
        if not found:
            return found
        held = (
            select(r.budget_id, r.period_start, func.sum(r.amount_nanos).label("held"))
            .where(or_(*(and_(r.budget_id == b, r.period_start == p) for b, p in keys)))
            .where(r.expires_at > at)
            .group_by(r.budget_id, r.period_start)
        )
        for row in conn.execute(held).all():
            key = (row.budget_id, row.period_start)
            if key in found:
                found[key] = msgspec.structs.replace(found[key], reserved_nanos=int(row.held))
        return found

    async def reserve(
        self,
        reservation_id: str,
        claims: Sequence[BudgetClaim],
        *,
        amount_nanos: int,
        at: datetime,
        expires_at: datetime,
    ) -> ReserveOutcome:
        at, expires_at = aware_utc(at, "at"), aware_utc(expires_at, "expires_at")
        if amount_nanos < 0:
            raise ValidationError("a reservation cannot be negative")
        claims = [
            BudgetClaim(
                budget_id=c.budget_id,
                period_start=aware_utc(c.period_start, "period_start"),
                hard_limit_nanos=c.hard_limit_nanos,
            )
            for c in claims
        ]
        keys = sorted({(c.budget_id, c.period_start) for c in claims})

        purge = self._purge_due()

        def work(conn: Connection) -> ReserveOutcome:
            counters = self._read_counters(conn, keys, at, lock=True)
            if len(counters) < len(keys):  # the period's first reservation
                self._ensure_counters(conn, [k for k in keys if k not in counters])
                counters = self._read_counters(conn, keys, at, lock=True)
            now = [counters[(c.budget_id, c.period_start)] for c in claims]
            for claim, counter in zip(claims, now, strict=True):
                total = counter.spent_nanos + counter.reserved_nanos + amount_nanos
                if claim.hard_limit_nanos is not None and total > claim.hard_limit_nanos:
                    return ReserveOutcome(counters=tuple(now), refused=claim.budget_id)
            conn.execute(
                insert(t.budget_reservations),
                [
                    {
                        "id": reservation_id,
                        "budget_id": b,
                        "period_start": p,
                        "amount_nanos": amount_nanos,
                        "expires_at": expires_at,
                    }
                    for b, p in keys
                ],
            )
            return ReserveOutcome(
                counters=tuple(
                    msgspec.structs.replace(n, reserved_nanos=n.reserved_nanos + amount_nanos)
                    for n in now
                )
            )

        outcome = await self._db.run_write(
            work,
            conflict=f"reservation {reservation_id!r} exists",
            missing="a budget of the reservation does not exist",
        )
        if purge:  # its own transaction: it must not wait on rows a settle holds
            await self._purge(at)
        return outcome

    async def _purge(self, at: datetime) -> None:
        r = t.budget_reservations.c
        stale = delete(t.budget_reservations).where(r.expires_at < at - PURGE_AFTER)

        def work(conn: Connection) -> None:
            conn.execute(stale)

        await self._db.run_write(work)

    async def settle(self, reservation_id: str, *, actual_nanos: int) -> None:
        r, c = t.budget_reservations.c, t.budget_counters.c

        def work(conn: Connection) -> None:
            held = conn.execute(
                select(r.budget_id, r.period_start)
                .where(r.id == reservation_id)
                .order_by(r.budget_id, r.period_start)
                .with_for_update()
            ).all()
            if not held:
                return
            for row in held:  # in budget order, as reservations lock them: no deadlock
                conn.execute(
                    update(t.budget_counters)
                    .where(c.budget_id == row.budget_id, c.period_start == row.period_start)
                    .values(spent_nanos=c.spent_nanos + max(actual_nanos, 0))
                )
            conn.execute(delete(t.budget_reservations).where(r.id == reservation_id))

        await self._db.run_write(work)

    async def counters(
        self, keys: Sequence[tuple[str, datetime]], *, at: datetime
    ) -> Sequence[BudgetCounter]:
        at = aware_utc(at, "at")
        wanted = [(b, aware_utc(p, "period_start")) for b, p in keys]
        if not wanted:
            return []

        def work(conn: Connection) -> list[BudgetCounter]:
            found = self._read_counters(conn, wanted, at)
            return [
                found.get(k) or BudgetCounter(budget_id=k[0], period_start=k[1]) for k in wanted
            ]

        return await self._db.run_read(work)

    async def mark_soft_notified(self, budget_id: str, period_start: datetime) -> bool:
        period_start = aware_utc(period_start, "period_start")
        c = t.budget_counters.c

        def work(conn: Connection) -> bool:
            self._ensure_counters(conn, [(budget_id, period_start)])
            done = conn.execute(
                update(t.budget_counters)
                .where(
                    c.budget_id == budget_id,
                    c.period_start == period_start,
                    c.soft_notified.is_(False),
                )
                .values(soft_notified=True)
            )
            return bool(done.rowcount == 1)

        return await self._db.run_write(work, missing=f"budget {budget_id!r} does not exist")

    async def claim_approval(
        self, budget_id: str, period_start: datetime, approval_id: str
    ) -> BudgetCounter:
        period_start = aware_utc(period_start, "period_start")
        c = t.budget_counters.c

        def work(conn: Connection) -> BudgetCounter:
            self._ensure_counters(conn, [(budget_id, period_start)])
            conn.execute(
                update(t.budget_counters)
                .where(
                    c.budget_id == budget_id,
                    c.period_start == period_start,
                    c.approval_id.is_(None) | c.approval_status.is_(None),
                )
                .values(approval_id=approval_id, approval_status="pending")
            )
            row = conn.execute(
                select(t.budget_counters).where(
                    c.budget_id == budget_id, c.period_start == period_start
                )
            ).one()
            return to_record(row, BudgetCounter)

        return await self._db.run_write(work, missing=f"budget {budget_id!r} does not exist")

    async def finish_approval(
        self, budget_id: str, period_start: datetime, approval_id: str, status: str | None
    ) -> None:
        period_start = aware_utc(period_start, "period_start")
        c = t.budget_counters.c

        def work(conn: Connection) -> None:
            conn.execute(
                update(t.budget_counters)
                .where(
                    c.budget_id == budget_id,
                    c.period_start == period_start,
                    c.approval_id == approval_id,
                )
                .values(approval_status=status)
            )

        await self._db.run_write(work)


# --- prices ---------------------------------------------------------------------------------
class SqlModelPriceStore(SqlStore):
    async def set(self, account_id: str, price: ModelPrice) -> None:
        values = {
            "account_id": account_id,
            "model": price.model,
            "input_nanos": to_nanos(price.input),
            "output_nanos": to_nanos(price.output),
            "cached_nanos": None if price.cached is None else to_nanos(price.cached),
        }
        stmt = self._db.upsert(t.model_prices, values, key=["account_id", "model"], keep=())

        def work(conn: Connection) -> None:
            conn.execute(stmt)

        await self._db.run_write(work, missing=f"account {account_id!r} does not exist")

    async def list(self, account_id: str) -> Sequence[ModelPrice]:
        c = t.model_prices.c
        stmt = select(t.model_prices).where(c.account_id == account_id).order_by(c.model)

        def every(conn: Connection) -> list[ModelPrice]:
            return [
                ModelPrice(
                    model=row.model,
                    input=from_nanos(int(row.input_nanos)),
                    output=from_nanos(int(row.output_nanos)),
                    cached=None if row.cached_nanos is None else from_nanos(int(row.cached_nanos)),
                )
                for row in conn.execute(stmt).all()
            ]

        return await self._db.run_read(every)

    async def delete(self, account_id: str, model: str) -> None:
        c = t.model_prices.c

        def work(conn: Connection) -> None:
            gone = conn.execute(
                delete(t.model_prices).where(c.account_id == account_id, c.model == model)
            )
            if gone.rowcount != 1:
                raise NotFoundError(f"no price for {model!r} in this account")

        await self._db.run_write(work)
