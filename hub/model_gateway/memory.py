"""In-memory stores of the gateway's ledger, budgets and prices: the fakes unit tests plug
in, held to the same contract suite as SQL (tests/contract/test_gateway_*.py).

Every method runs without an ``await`` between its reads and writes, so on one event loop
each is atomic, which is what ``BudgetStore.reserve`` promises across processes on SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec

from hub.errors import ConflictError, NotFoundError, ValidationError
from hub.model_gateway.records import Budget, ModelPrice, UsageRecord, from_nanos, to_nanos
from hub.ports import (
    USAGE_GROUPS,
    BudgetClaim,
    BudgetCounter,
    ReserveOutcome,
    UsageGroup,
    UsageQuery,
    UsageSession,
)
from hub.store_rules import aware_utc, check_limit, stored_copy

_copy = stored_copy


def usage_key(record: UsageRecord, group_by: str) -> str | None:
    if group_by == "day":
        return record.created_at.strftime("%Y-%m-%d")
    if group_by == "model":
        return record.model
    if group_by == "flow":
        return record.flow
    return record.api_key_id


def check_group(group_by: str) -> None:
    if group_by not in USAGE_GROUPS:
        raise ValidationError(
            f"group_by must be one of {', '.join(USAGE_GROUPS)}, got {group_by!r}"
        )


def key_order(group: UsageGroup) -> tuple[bool, str]:
    return (group.key is None, group.key or "")


class InMemoryUsageStore:
    def __init__(self, require_account: Callable[[str], None]) -> None:
        self._require_account = require_account
        self._records: dict[str, UsageRecord] = {}

    async def add_many(self, records: Sequence[UsageRecord]) -> None:
        copies = [_copy(r) for r in records]
        ids = [r.id for r in records]
        if len(set(ids)) != len(ids) or any(i in self._records for i in ids):
            raise ConflictError("a usage record with that id exists")
        for record in records:
            self._require_account(record.account_id)
        for copy in copies:
            assert isinstance(copy, UsageRecord)
            self._records[copy.id] = copy

    def _of(self, account_id: str) -> list[UsageRecord]:
        return [r for r in self._records.values() if r.account_id == account_id]

    def records_of(self, account_id: str) -> list[UsageRecord]:
        """Every record of the account (the in-memory capture store's runtime sessions)."""
        return self._of(account_id)

    async def list(self, account_id: str, query: UsageQuery) -> Sequence[UsageRecord]:
        check_limit(query.limit)
        found = []
        for r in self._of(account_id):
            if (
                (query.flow is not None and r.flow != query.flow)
                or (query.execution_id is not None and r.execution_id != query.execution_id)
                or (query.api_key_id is not None and r.api_key_id != query.api_key_id)
                or (query.principal is not None and r.principal != query.principal)
                or (query.model is not None and r.model != query.model)
                or (query.since is not None and r.created_at < aware_utc(query.since))
                or (query.until is not None and r.created_at >= aware_utc(query.until))
                or (
                    query.before is not None
                    and (r.created_at, r.id) >= (aware_utc(query.before[0]), query.before[1])
                )
            ):
                continue
            found.append(r)
        found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return found[: query.limit]

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
        totals: dict[str | None, list[int]] = {}
        for r in self._of(account_id):
            if (
                (flow is not None and r.flow != flow)
                or (since is not None and r.created_at < aware_utc(since))
                or (until is not None and r.created_at >= aware_utc(until))
            ):
                continue
            t = totals.setdefault(usage_key(r, group_by), [0, 0, 0, 0, 0])
            t[0] += 1
            t[1] += r.input_tokens
            t[2] += r.output_tokens
            t[3] += r.cached_tokens
            t[4] += to_nanos(r.cost)
        groups = [
            UsageGroup(
                key=key,
                requests=t[0],
                input_tokens=t[1],
                output_tokens=t[2],
                cached_tokens=t[3],
                cost=from_nanos(t[4]),
            )
            for key, t in totals.items()
        ]
        return sorted(groups, key=key_order)

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
        rows: dict[str, list[UsageRecord]] = {}
        for r in self._of(account_id):
            if (
                r.execution_id is None
                or (flow is not None and r.flow != flow)
                or (principal is not None and r.principal != principal)
                or (execution_id is not None and r.execution_id != execution_id)
                or (since is not None and r.created_at < aware_utc(since))
            ):
                continue
            rows.setdefault(r.execution_id, []).append(r)
        sessions = [
            UsageSession(
                execution_id=ex,
                flow=max((r.flow for r in rs if r.flow is not None), default=None),
                principal=max(r.principal for r in rs),
                requests=len(rs),
                input_tokens=sum(r.input_tokens for r in rs),
                output_tokens=sum(r.output_tokens for r in rs),
                cached_tokens=sum(r.cached_tokens for r in rs),
                cost=from_nanos(sum(to_nanos(r.cost) for r in rs)),
                errors=sum(1 for r in rs if r.outcome != "ok"),
                first_seen=min(r.created_at for r in rs),
                last_seen=max(r.created_at for r in rs),
            )
            for ex, rs in rows.items()
        ]
        sessions.sort(key=lambda s: (s.last_seen, s.execution_id), reverse=True)
        return sessions[:limit]


class _Reservation(msgspec.Struct, frozen=True, kw_only=True):
    budget_id: str
    period_start: datetime
    amount_nanos: int
    expires_at: datetime


class InMemoryBudgetStore:
    def __init__(self, require_account: Callable[[str], None]) -> None:
        self._require_account = require_account
        self._budgets: dict[str, Budget] = {}
        self._counters: dict[tuple[str, datetime], BudgetCounter] = {}
        self._reservations: dict[str, list[_Reservation]] = {}

    async def add(self, budget: Budget) -> None:
        self._require_account(budget.account_id)
        copy = _copy(budget)
        if budget.id in self._budgets or await self.get_by_name(budget.account_id, budget.name):
            raise ConflictError(f"budget {budget.id!r} or name {budget.name!r} exists")
        assert isinstance(copy, Budget)
        self._budgets[budget.id] = copy

    async def get(self, account_id: str, budget_id: str) -> Budget | None:
        found = self._budgets.get(budget_id)
        return found if found is not None and found.account_id == account_id else None

    async def get_by_name(self, account_id: str, name: str) -> Budget | None:
        return next(
            (b for b in self._budgets.values() if b.account_id == account_id and b.name == name),
            None,
        )

    async def list(self, account_id: str) -> Sequence[Budget]:
        return sorted(
            (b for b in self._budgets.values() if b.account_id == account_id),
            key=lambda b: (b.name, b.id),
        )

    async def delete(self, account_id: str, budget_id: str) -> None:
        if await self.get(account_id, budget_id) is None:
            raise NotFoundError(f"budget {budget_id!r} does not exist")
        del self._budgets[budget_id]
        for key in [k for k in self._counters if k[0] == budget_id]:
            del self._counters[key]
        for rid, held in list(self._reservations.items()):
            self._reservations[rid] = [r for r in held if r.budget_id != budget_id]

    def _counter(self, budget_id: str, period_start: datetime, at: datetime) -> BudgetCounter:
        stored = self._counters.get((budget_id, period_start)) or BudgetCounter(
            budget_id=budget_id, period_start=period_start
        )
        reserved = sum(
            r.amount_nanos
            for held in self._reservations.values()
            for r in held
            if r.budget_id == budget_id and r.period_start == period_start and r.expires_at > at
        )
        return msgspec.structs.replace(stored, reserved_nanos=reserved)

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
        if reservation_id in self._reservations:
            raise ConflictError(f"reservation {reservation_id!r} exists")
        for claim in claims:
            if claim.budget_id not in self._budgets:
                raise NotFoundError(f"budget {claim.budget_id!r} does not exist")
        now = [self._counter(c.budget_id, aware_utc(c.period_start), at) for c in claims]
        for claim, counter in zip(claims, now, strict=True):
            total = counter.spent_nanos + counter.reserved_nanos + amount_nanos
            if claim.hard_limit_nanos is not None and total > claim.hard_limit_nanos:
                return ReserveOutcome(counters=tuple(now), refused=claim.budget_id)
        self._reservations[reservation_id] = [
            _Reservation(
                budget_id=c.budget_id,
                period_start=aware_utc(c.period_start),
                amount_nanos=amount_nanos,
                expires_at=expires_at,
            )
            for c in claims
        ]
        after = tuple(
            msgspec.structs.replace(c, reserved_nanos=c.reserved_nanos + amount_nanos) for c in now
        )
        return ReserveOutcome(counters=after)

    async def settle(self, reservation_id: str, *, actual_nanos: int) -> None:
        held = self._reservations.pop(reservation_id, [])
        for r in held:
            key = (r.budget_id, r.period_start)
            stored = self._counters.get(key) or BudgetCounter(
                budget_id=r.budget_id, period_start=r.period_start
            )
            self._counters[key] = msgspec.structs.replace(
                stored, spent_nanos=stored.spent_nanos + max(actual_nanos, 0)
            )

    async def counters(
        self, keys: Sequence[tuple[str, datetime]], *, at: datetime
    ) -> Sequence[BudgetCounter]:
        at = aware_utc(at, "at")
        return [self._counter(b, aware_utc(p), at) for b, p in keys]

    def _stored(self, budget_id: str, period_start: datetime) -> BudgetCounter:
        if budget_id not in self._budgets:
            raise NotFoundError(f"budget {budget_id!r} does not exist")
        period_start = aware_utc(period_start, "period_start")
        return self._counters.get((budget_id, period_start)) or BudgetCounter(
            budget_id=budget_id, period_start=period_start
        )

    async def mark_soft_notified(self, budget_id: str, period_start: datetime) -> bool:
        counter = self._stored(budget_id, period_start)
        if counter.soft_notified:
            return False
        self._counters[(budget_id, counter.period_start)] = msgspec.structs.replace(
            counter, soft_notified=True
        )
        return True

    async def claim_approval(
        self, budget_id: str, period_start: datetime, approval_id: str
    ) -> BudgetCounter:
        counter = self._stored(budget_id, period_start)
        if counter.approval_id is None or counter.approval_status is None:
            counter = msgspec.structs.replace(
                counter, approval_id=approval_id, approval_status="pending"
            )
            self._counters[(budget_id, counter.period_start)] = counter
        return counter

    async def finish_approval(
        self, budget_id: str, period_start: datetime, approval_id: str, status: str | None
    ) -> None:
        counter = self._stored(budget_id, period_start)
        if counter.approval_id == approval_id:
            self._counters[(budget_id, counter.period_start)] = msgspec.structs.replace(
                counter, approval_status=status
            )


class InMemoryModelPriceStore:
    def __init__(self, require_account: Callable[[str], None]) -> None:
        self._require_account = require_account
        self._prices: dict[tuple[str, str], ModelPrice] = {}

    async def set(self, account_id: str, price: ModelPrice) -> None:
        self._require_account(account_id)
        copy = _copy(price)
        assert isinstance(copy, ModelPrice)
        self._prices[(account_id, price.model)] = copy

    async def list(self, account_id: str) -> Sequence[ModelPrice]:
        return sorted(
            (p for (a, _), p in self._prices.items() if a == account_id), key=lambda p: p.model
        )

    async def delete(self, account_id: str, model: str) -> None:
        if self._prices.pop((account_id, model), None) is None:
            raise NotFoundError(f"no price for {model!r} in this account")


__all__ = [
    "InMemoryBudgetStore",
    "InMemoryModelPriceStore",
    "InMemoryUsageStore",
]
