"""Budgets: reserve before a model request is forwarded, settle to the actual cost after.

    admit(who, model, estimate)
      ├─ the account's budgets (cached briefly; this process's changes are seen at once)
      │    that apply: the account's, the flow's (who.flow), the API key's (who.api_key_id)
      │    none apply ─▶ Admission() at once: no database round trip on the hot path
      ├─ one atomic reservation of ``estimate`` against all of them (BudgetStore.reserve):
      │    a hard limit it would pass ─▶ BudgetExceededError naming budget, limit, spend, reset
      └─ per budget whose settled spend plus this estimate passes its soft limit:
           warn ─▶ a warning for the response header; once per period an audited
                   "budget.soft_crossed" (published on the bus as BudgetCrossed)
           ask  ─▶ release the reservation, open (or join) the period's approval through
                   the budget's workflow, wait; approved ─▶ granted for the rest of the
                   period, reserve again; denied or expired ─▶ BudgetExceededError
    settle(admission, actual) ─▶ the reservation becomes spend (failed and cut requests too)

Periods are UTC days, UTC calendar months, or "total" (never resets). A reservation that is
never settled (a crashed process) stops counting after ``reservation_seconds``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import msgspec

from hub.approvals import ApprovalService, ended_by_deadline
from hub.auditing import Auditor
from hub.cache import Recent
from hub.clock import Clock
from hub.errors import NotFoundError, ValidationError
from hub.ids import new_id
from hub.keys import Caller
from hub.model_gateway.ports import Admission, BudgetExceededError
from hub.model_gateway.records import (
    Attribution,
    Budget,
    BudgetPeriod,
    BudgetScope,
    SoftAction,
    from_nanos,
    to_nanos,
)
from hub.policy import Action, Decision
from hub.policy_versions import PolicyService
from hub.ports import BudgetClaim, BudgetCounter, Storage
from hub.records import ApprovalStatus, Role

MAX_LIMIT = Decimal(1_000_000_000)  # dollars; nano-dollars of it fit a 64-bit column
# The most one reservation holds: above every hard limit (so such a request is still refused by
# any hard budget), and small enough that its nano-dollars fit the store's 64-bit column however
# large the request's max tokens times its choices times the model's price is.
MAX_RESERVATION = MAX_LIMIT + Decimal("0.01")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the one period of a "total" budget
APPROVAL_TOOL = "gateway.budget"
APPROVAL_SERVER = "gateway"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_NAME = re.compile(NAME_PATTERN)


def period_start(period: BudgetPeriod, now: datetime) -> datetime:
    now = now.astimezone(UTC)
    if period is BudgetPeriod.DAY:
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is BudgetPeriod.MONTH:
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return EPOCH


def resets_at(period: BudgetPeriod, now: datetime) -> datetime | None:
    start = period_start(period, now)
    if period is BudgetPeriod.DAY:
        return start + timedelta(days=1)
    if period is BudgetPeriod.MONTH:
        return (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else (start.replace(month=start.month + 1))
        )
    return None


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when_reset(at: datetime | None) -> str:
    return "never resets" if at is None else f"resets {iso(at)}"


def money(amount: Decimal) -> str:
    """``$8.10``; amounts below a cent keep up to six decimals (``$0.000125``)."""
    cents = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if cents == amount or abs(amount) >= 1:
        return f"${cents}"
    return f"${amount.quantize(Decimal('0.000001'), rounding=ROUND_HALF_UP).normalize():f}"


class BudgetState(msgspec.Struct, frozen=True, kw_only=True):
    """A budget and where it stands in its current period."""

    budget: Budget
    period_start: datetime
    resets_at: datetime | None
    spent: Decimal
    reserved: Decimal
    state: str  # ok | warning | exceeded | awaiting_approval
    approval_id: str | None = None


def state_of(budget: Budget, counter: BudgetCounter) -> str:
    spent = from_nanos(counter.spent_nanos)
    if budget.hard_limit is not None and spent >= budget.hard_limit:
        return "exceeded"
    if counter.approval_status == "pending":
        return "awaiting_approval"
    if counter.approval_status == "denied":
        return "exceeded"
    if budget.soft_limit is not None and spent > budget.soft_limit:
        return "warning"
    return "ok"


def applies(budget: Budget, who: Attribution) -> bool:
    if budget.scope is BudgetScope.ACCOUNT:
        return True
    if budget.scope is BudgetScope.FLOW:
        return who.flow is not None and budget.scope_id == who.flow
    return budget.scope_id == who.api_key_id


class BudgetService:
    """Implements ``hub.model_gateway.ports.Budgets``; also the use cases behind the budgets API."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        auditor: Auditor,
        *,
        approvals: ApprovalService,
        policies: PolicyService,
        cache_seconds: float = 2.0,
        reservation_seconds: float = 900.0,
    ) -> None:
        self._storage = storage
        self._store = storage.budgets
        self._clock = clock
        self._auditor = auditor
        self._approvals = approvals
        self._policies = policies
        self._cache: Recent[str, tuple[Budget, ...]] = Recent(cache_seconds)
        self._reservation = timedelta(seconds=reservation_seconds)
        # per budget and period being asked about: its lock, and how many requests use it
        self._asking: dict[tuple[str, datetime], tuple[asyncio.Lock, int]] = {}

    # --- the request path -----------------------------------------------------------------
    async def admit(self, who: Attribution, *, model: str, estimate: Decimal) -> Admission:
        budgets = [b for b in await self.budgets(who.account_id) if applies(b, who)]
        if not budgets:
            return Admission()
        return await self._admit(who, budgets, model, estimate)

    async def settle(self, admission: Admission, actual: Decimal) -> None:
        if admission.reservation_id is None:
            return
        await self._store.settle(
            admission.reservation_id, actual_nanos=to_nanos(max(actual, Decimal(0)))
        )

    async def _admit(
        self, who: Attribution, budgets: Sequence[Budget], model: str, estimate: Decimal
    ) -> Admission:
        now = self._clock.now()
        amount = to_nanos(min(max(estimate, Decimal(0)), MAX_RESERVATION))
        claims = [
            BudgetClaim(
                budget_id=b.id,
                period_start=period_start(b.period, now),
                hard_limit_nanos=None if b.hard_limit is None else to_nanos(b.hard_limit),
            )
            for b in budgets
        ]
        reservation_id = new_id("res")
        outcome = await self._store.reserve(
            reservation_id, claims, amount_nanos=amount, at=now, expires_at=now + self._reservation
        )
        if outcome.refused is not None:
            budget, counter = next(
                (b, c)
                for b, c in zip(budgets, outcome.counters, strict=True)
                if b.id == outcome.refused
            )
            raise self._exceeded(budget, counter, from_nanos(amount), now)
        warnings: list[str] = []
        for budget, counter in zip(budgets, outcome.counters, strict=True):
            if budget.soft_limit is None:
                continue
            spent = from_nanos(counter.spent_nanos)
            if spent + from_nanos(amount) <= budget.soft_limit:
                continue
            if budget.on_soft is SoftAction.ASK and counter.approval_status != "approved":
                await self._store.settle(reservation_id, actual_nanos=0)  # free while people decide
                await self._ask(who, budget, counter, model, now)  # raises unless granted
                return await self._admit(who, budgets, model, estimate)
            warnings.append(
                f'budget "{budget.name}" at {money(spent)} of soft {money(budget.soft_limit)}'
            )
            await self._crossed(budget, counter, now)
        return Admission(
            reservation_id=reservation_id, reserved=from_nanos(amount), warnings=tuple(warnings)
        )

    def _exceeded(
        self, budget: Budget, counter: BudgetCounter, amount: Decimal, now: datetime
    ) -> BudgetExceededError:
        reset = resets_at(budget.period, now)
        assert budget.hard_limit is not None
        message = (
            f'Budget "{budget.name}" ({budget.scope.value} {budget.period.value} budget) would '
            f"pass its hard limit of {money(budget.hard_limit)}: spent "
            f"{money(from_nanos(counter.spent_nanos))}, reserved by requests in flight "
            f"{money(from_nanos(counter.reserved_nanos))}, this request may cost up to "
            f"{money(amount)}; {when_reset(reset)}."
        )
        return BudgetExceededError(message, budget=budget, resets_at=reset)

    async def _crossed(self, budget: Budget, counter: BudgetCounter, now: datetime) -> None:
        """Once per budget and period: audited, and so published as ``BudgetCrossed``."""
        if not await self._store.mark_soft_notified(budget.id, counter.period_start):
            return
        assert budget.soft_limit is not None
        await self._auditor.record(
            budget.account_id,
            "budget.soft_crossed",
            "system",
            {
                "budget_id": budget.id,
                "budget": budget.name,
                "scope": budget.scope.value,
                "scope_id": budget.scope_id,
                "period": budget.period.value,
                "spent": str(from_nanos(counter.spent_nanos)),
                "soft_limit": str(budget.soft_limit),
                "hard_limit": None if budget.hard_limit is None else str(budget.hard_limit),
                "on_soft": budget.on_soft.value,
                "resets_at": iso(resets_at(budget.period, now)),
            },
        )

    async def _ask(
        self, who: Attribution, budget: Budget, counter: BudgetCounter, model: str, now: datetime
    ) -> None:
        """Pause and ask: returns when the period is granted, else raises BudgetExceededError."""
        reset = resets_at(budget.period, now)
        period = counter.period_start
        key = (budget.id, period)
        lock, users = self._asking.get(key, (asyncio.Lock(), 0))
        self._asking[key] = (lock, users + 1)
        try:
            approval_id = await self._approval_to_wait_for(who, budget, counter, model, lock, reset)
        finally:
            lock, users = self._asking[key]
            if users == 1:
                del self._asking[key]  # nobody else is queued on it
            else:
                self._asking[key] = (lock, users - 1)
        if approval_id is None:
            return
        decided = await self._approvals.wait(budget.account_id, approval_id)
        if decided.status is ApprovalStatus.APPROVED:
            await self._store.finish_approval(budget.id, period, approval_id, "approved")
            return
        timed_out = ended_by_deadline(decided)  # (on_timeout: deny) asks again next time
        if decided.status is ApprovalStatus.DENIED and not timed_out:
            await self._store.finish_approval(budget.id, period, approval_id, "denied")
            raise self._refused(budget, "was denied", reset)
        await self._store.finish_approval(budget.id, period, approval_id, None)
        what = "timed out" if timed_out else decided.status.value
        raise self._refused(budget, f"was not decided ({what})", reset)

    async def _approval_to_wait_for(
        self,
        who: Attribution,
        budget: Budget,
        counter: BudgetCounter,
        model: str,
        lock: asyncio.Lock,
        reset: datetime | None,
    ) -> str | None:
        """The period's pending approval (opened now when there is none), or ``None`` when
        the period is granted already. Raises when it was denied."""
        period = counter.period_start
        key = (budget.id, period)
        async with lock:  # one approval per budget and period from this process
            [current] = await self._store.counters([key], at=self._clock.now())
            if current.approval_status == "approved":
                return None
            if current.approval_status == "denied":
                raise self._refused(budget, "was denied", reset)
            approval_id = current.approval_id if current.approval_status == "pending" else None
            if approval_id is None:
                approval_id = await self._open(who, budget, counter, model)
                claimed = await self._store.claim_approval(budget.id, period, approval_id)
                if claimed.approval_id != approval_id:  # another replica asked first
                    await self._approvals.cancel(
                        budget.account_id,
                        approval_id,
                        actor="system",
                        reason="another replica asked for this budget first",
                    )
                    approval_id = claimed.approval_id
                    assert approval_id is not None
            return approval_id

    def _refused(self, budget: Budget, what: str, reset: datetime | None) -> BudgetExceededError:
        assert budget.soft_limit is not None
        message = (
            f'Budget "{budget.name}" ({budget.scope.value} {budget.period.value} budget) is past '
            f"its soft limit of {money(budget.soft_limit)} and the approval to spend more "
            f"{what}; {when_reset(reset)}."
        )
        return BudgetExceededError(message, budget=budget, resets_at=reset)

    async def _open(
        self, who: Attribution, budget: Budget, counter: BudgetCounter, model: str
    ) -> str:
        workflow_name = budget.approval_workflow or ""
        active = await self._policies.active(budget.account_id)
        workflow = active[1].workflow(workflow_name) if active is not None else None
        if active is None or workflow is None:
            message = (
                f'Budget "{budget.name}" is past its soft limit and asks workflow '
                f'"{workflow_name}", which the active policy does not have: refused.'
            )
            raise BudgetExceededError(message, budget=budget, resets_at=None)
        assert budget.soft_limit is not None
        request = await self._approvals.open(
            caller=Caller(
                key_id=who.api_key_id,
                account_id=who.account_id,
                role=Role.AGENT,
                name=who.principal,
            ),
            server=APPROVAL_SERVER,
            tool=APPROVAL_TOOL,
            args={
                "budget": budget.name,
                "spent": str(from_nanos(counter.spent_nanos)),
                "soft_limit": str(budget.soft_limit),
                "model": model,
            },
            justification=None,
            decision=Decision(
                action=Action.REQUIRE_APPROVAL,
                rule=f"budget:{budget.name}",
                rule_description=f'budget "{budget.name}" is past its soft limit '
                f"of {money(budget.soft_limit)}",
                workflow=workflow.name,
            ),
            policy_version=active[0].version,
            workflow=workflow,
        )
        return request.id

    # --- managing budgets -----------------------------------------------------------------
    async def budgets(self, account_id: str) -> tuple[Budget, ...]:
        return await self._cache.load(account_id, lambda: self._listed(account_id))

    async def _listed(self, account_id: str) -> tuple[Budget, ...]:
        return tuple(await self._store.list(account_id))

    async def add(
        self,
        account_id: str,
        *,
        name: str,
        scope: BudgetScope,
        period: BudgetPeriod,
        scope_id: str = "",
        soft_limit: Decimal | None = None,
        hard_limit: Decimal | None = None,
        on_soft: SoftAction = SoftAction.WARN,
        approval_workflow: str | None = None,
        actor: str,
    ) -> Budget:
        budget = Budget(
            id=new_id("bud"),
            account_id=account_id,
            name=name,
            scope=scope,
            scope_id=scope_id,
            period=period,
            soft_limit=soft_limit,
            hard_limit=hard_limit,
            on_soft=on_soft,
            approval_workflow=approval_workflow or None,
            created_at=self._clock.now(),
        )
        await self._check(budget)
        await self._store.add(budget)
        self._cache.drop(account_id)
        await self._auditor.record(account_id, "budget.created", actor, _described(budget))
        return budget

    async def remove(self, account_id: str, budget_id_or_name: str, *, actor: str) -> Budget:
        budget = await self.find(account_id, budget_id_or_name)
        await self._store.delete(account_id, budget.id)
        self._cache.drop(account_id)
        await self._auditor.record(account_id, "budget.deleted", actor, _described(budget))
        return budget

    async def find(self, account_id: str, budget_id_or_name: str) -> Budget:
        budget = await self._store.get(account_id, budget_id_or_name)
        if budget is None:
            budget = await self._store.get_by_name(account_id, budget_id_or_name)
        if budget is None:
            raise NotFoundError(f"budget {budget_id_or_name!r} does not exist")
        return budget

    async def states(self, account_id: str) -> list[BudgetState]:
        now = self._clock.now()
        budgets = list(await self._store.list(account_id))
        keys = [(b.id, period_start(b.period, now)) for b in budgets]
        counters = await self._store.counters(keys, at=now) if keys else []
        return [
            BudgetState(
                budget=b,
                period_start=c.period_start,
                resets_at=resets_at(b.period, now),
                spent=from_nanos(c.spent_nanos),
                reserved=from_nanos(c.reserved_nanos),
                state=state_of(b, c),
                approval_id=c.approval_id if c.approval_status == "pending" else None,
            )
            for b, c in zip(budgets, counters, strict=True)
        ]

    async def _check(self, budget: Budget) -> None:
        if not _NAME.match(budget.name):
            raise ValidationError(
                f"budget name {budget.name!r}: use letters, digits, '.', '_' or '-' "
                "(at most 100, starting with a letter or digit)"
            )
        if budget.scope is BudgetScope.ACCOUNT and budget.scope_id:
            raise ValidationError("an account budget takes no scope id")
        if budget.scope is not BudgetScope.ACCOUNT and not budget.scope_id:
            what = "flow name" if budget.scope is BudgetScope.FLOW else "API key id"
            raise ValidationError(f"a {budget.scope.value} budget needs the {what} (scope_id)")
        if budget.soft_limit is None and budget.hard_limit is None:
            raise ValidationError("a budget needs a soft limit, a hard limit or both")
        for label, limit in (("soft", budget.soft_limit), ("hard", budget.hard_limit)):
            if limit is not None and (not limit.is_finite() or limit < 0):
                raise ValidationError(f"the {label} limit must be 0 or more")
            if limit is not None and limit > MAX_LIMIT:
                raise ValidationError(f"the {label} limit must be at most {money(MAX_LIMIT)}")
        if (
            budget.soft_limit is not None
            and budget.hard_limit is not None
            and budget.soft_limit > budget.hard_limit
        ):
            raise ValidationError("the soft limit must not be above the hard limit")
        if budget.on_soft is SoftAction.ASK:
            if budget.soft_limit is None:
                raise ValidationError("on_soft 'ask' needs a soft limit")
            if not budget.approval_workflow:
                raise ValidationError("on_soft 'ask' needs an approval workflow")
        if budget.approval_workflow:  # ask: who decides; warn (and ask): who is told
            if budget.soft_limit is None:
                raise ValidationError(
                    "an approval workflow is told when the soft limit is passed: "
                    "the budget needs a soft limit"
                )
            active = await self._policies.active(budget.account_id)
            if active is None or active[1].workflow(budget.approval_workflow) is None:
                names = (
                    sorted(w.name for w in active[1].document.approval_workflows) if active else []
                )
                raise ValidationError(
                    f"workflow {budget.approval_workflow!r} is not in the active policy "
                    f"(it has: {', '.join(names) or 'none'})"
                )


def _described(budget: Budget) -> dict[str, object]:
    return {
        "budget_id": budget.id,
        "name": budget.name,
        "scope": budget.scope.value,
        "scope_id": budget.scope_id,
        "period": budget.period.value,
        "soft_limit": None if budget.soft_limit is None else str(budget.soft_limit),
        "hard_limit": None if budget.hard_limit is None else str(budget.hard_limit),
        "on_soft": budget.on_soft.value,
        "approval_workflow": budget.approval_workflow,
    }
