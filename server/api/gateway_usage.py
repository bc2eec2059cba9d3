"""The model gateway's accounting over REST: usage summaries and events, the runtime session
explorer, a flow execution's gateway events, budgets with their current state, and prices.

Money is a decimal string of US dollars in JSON (``"0.001250"``: at least six decimals, up
to nine, never a float). Reading needs viewer, approver or admin; changing budgets and prices
needs admin."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from hub.errors import ConflictError, NotFoundError, ValidationError
from hub.model_gateway.budgets import MAX_LIMIT, BudgetState
from hub.model_gateway.budgets import NAME_PATTERN as BUDGET_NAME
from hub.model_gateway.pricing import MAX_PRICE, check_price
from hub.model_gateway.records import (
    BudgetPeriod,
    BudgetScope,
    ModelPrice,
    SoftAction,
    UsageRecord,
)
from hub.patterns import NOT_SPACE
from hub.ports import UsageGroup, UsageQuery, UsageSession
from hub.wire import (
    BudgetView,
    PriceList,
    PriceView,
    SessionDetail,
    SessionView,
    UsageEvent,
    UsagePage,
    UsageSummary,
    UsageTotals,
)
from server.api.deps import caller_of, hub_of
from server.api.fields import dollars, shaped
from server.auth import ADMIN, READ, roles

NINE = Decimal("0.000000001")


def money(amount: Decimal) -> str:
    """``"0.001250"``: six decimals, more (up to nine) only when the amount has them."""
    text = f"{amount.quantize(NINE):f}"
    whole, _, decimals = text.partition(".")
    decimals = decimals.rstrip("0").ljust(6, "0")
    return f"{whole}.{decimals}"


def maybe_money(amount: Decimal | None) -> str | None:
    return None if amount is None else money(amount)


Limit = Annotated[Decimal, dollars(MAX_LIMIT, nullable=True)]
Price = Annotated[Decimal, dollars(MAX_PRICE)]
MaybePrice = Annotated[Decimal, dollars(MAX_PRICE, nullable=True)]
Text = Annotated[str, msgspec.Meta(max_length=200)]  # what a NAME column holds


class BudgetBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new budget. Limits are US dollars (a JSON string or number, e.g. ``"10"``). The
    scope id is the flow's name (``flow``) or the API key's id (``api_key``); ``account``
    takes none."""

    name: Annotated[str, shaped(BUDGET_NAME, min_length=1, max_length=100)]
    scope: BudgetScope = BudgetScope.ACCOUNT
    scope_id: Text = ""
    period: BudgetPeriod = BudgetPeriod.DAY
    soft_limit: Limit | None = None
    hard_limit: Limit | None = None
    on_soft: SoftAction = SoftAction.WARN
    approval_workflow: Text | None = None


class PriceBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """US dollars per million tokens for a model id or glob (``"gpt-4o*"``)."""

    model: Annotated[str, shaped(NOT_SPACE, min_length=1, max_length=200)]
    input: Price
    output: Price
    cached: MaybePrice | None = None


def _totals(group: UsageGroup) -> UsageTotals:
    return UsageTotals(
        key=group.key,
        requests=group.requests,
        input_tokens=group.input_tokens,
        output_tokens=group.output_tokens,
        cached_tokens=group.cached_tokens,
        cost=money(group.cost),
    )


def _event(record: UsageRecord) -> UsageEvent:
    fields = {name: getattr(record, name) for name in UsageEvent.__struct_fields__}
    fields["cost"] = money(record.cost)
    return UsageEvent(**fields)


def _session(session: UsageSession) -> SessionView:
    fields = {name: getattr(session, name) for name in SessionView.__struct_fields__}
    fields["cost"] = money(session.cost)
    return SessionView(**fields)


def budget_view(state: BudgetState) -> BudgetView:
    b = state.budget
    return BudgetView(
        id=b.id,
        name=b.name,
        scope=b.scope.value,
        scope_id=b.scope_id,
        period=b.period.value,
        soft_limit=maybe_money(b.soft_limit),
        hard_limit=maybe_money(b.hard_limit),
        on_soft=b.on_soft.value,
        approval_workflow=b.approval_workflow,
        created_at=b.created_at,
        period_start=state.period_start,
        resets_at=state.resets_at,
        spent=money(state.spent),
        reserved=money(state.reserved),
        state=state.state,
        approval_id=state.approval_id,
    )


def _price(price: ModelPrice, source: str) -> PriceView:
    return PriceView(
        model=price.model,
        input=money(price.input),
        output=money(price.output),
        cached=maybe_money(price.cached),
        source=source,
    )


def _cursor(before: str | None) -> tuple[datetime, str] | None:
    if not before:
        return None
    at, sep, record_id = before.partition(",")
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        when = None
    if not sep or not record_id or when is None or when.tzinfo is None:
        raise ValidationError("before: pass the next_before value of the previous page")
    return (when, record_id)


# --- controllers ----------------------------------------------------------------------------
class GatewayUsageController(Controller):
    path = "/gateway"
    tags = ["gateway"]

    @get("/usage/summary", opt=roles(READ))
    async def summary(
        self,
        request: Request[Any, Any, Any],
        group_by: Annotated[str, QueryParameter(pattern="^(day|model|flow|api_key)$")] = "day",
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        flow: FromQuery[str | None] = None,
    ) -> UsageSummary:
        """Requests, tokens and cost per day (UTC), model, flow or API key."""
        groups = await hub_of(request).storage.usage.summary(
            caller_of(request).account_id, group_by=group_by, since=since, until=until, flow=flow
        )
        total = UsageGroup(
            key=None,
            requests=sum(g.requests for g in groups),
            input_tokens=sum(g.input_tokens for g in groups),
            output_tokens=sum(g.output_tokens for g in groups),
            cached_tokens=sum(g.cached_tokens for g in groups),
            cost=sum((g.cost for g in groups), Decimal(0)),
        )
        return UsageSummary(
            group_by=group_by,
            since=since,
            until=until,
            flow=flow,
            groups=[_totals(g) for g in groups],
            total=_totals(total),
        )

    @get("/usage", opt=roles(READ))
    async def events(
        self,
        request: Request[Any, Any, Any],
        flow: FromQuery[str | None] = None,
        execution_id: FromQuery[str | None] = None,
        api_key_id: FromQuery[str | None] = None,
        principal: FromQuery[str | None] = None,
        model: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        before: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> UsagePage:
        """Gateway requests, newest first. Page with ``before`` = the previous page's
        ``next_before``."""
        query = UsageQuery(
            flow=flow,
            execution_id=execution_id,
            api_key_id=api_key_id,
            principal=principal,
            model=model,
            since=since,
            until=until,
            before=_cursor(before),
            limit=limit,
        )
        records = await hub_of(request).storage.usage.list(caller_of(request).account_id, query)
        last = records[-1] if len(records) == limit else None
        return UsagePage(
            events=[_event(r) for r in records],
            next_before=None if last is None else f"{last.created_at.isoformat()},{last.id}",
        )

    @get("/sessions", opt=roles(READ))
    async def sessions(
        self,
        request: Request[Any, Any, Any],
        flow: FromQuery[str | None] = None,
        principal: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[SessionView]:
        """The runtime session explorer: one row per flow execution, most recently seen
        first, with its requests, tokens, cost and errors."""
        found = await hub_of(request).storage.usage.sessions(
            caller_of(request).account_id, flow=flow, principal=principal, since=since, limit=limit
        )
        return [_session(s) for s in found]

    @get("/sessions/{execution_id:str}", opt=roles(READ))
    async def session(
        self,
        request: Request[Any, Any, Any],
        execution_id: FromPath[str],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> SessionDetail:
        """One flow execution's totals and its latest gateway events (newest first)."""
        hub, account_id = hub_of(request), caller_of(request).account_id
        found = await hub.storage.usage.sessions(account_id, execution_id=execution_id, limit=1)
        if not found:
            raise NotFoundError(f"no gateway usage for flow execution {execution_id!r}")
        records = await hub.storage.usage.list(
            account_id, UsageQuery(execution_id=execution_id, limit=limit)
        )
        return SessionDetail(session=_session(found[0]), events=[_event(r) for r in records])

    @get("/prices", opt=roles(READ))
    async def prices(self, request: Request[Any, Any, Any]) -> PriceList:
        """The account's overrides, the built-in table, and the fallback for unpriced models."""
        book = hub_of(request).prices
        overrides = await hub_of(request).storage.model_prices.list(caller_of(request).account_id)
        return PriceList(
            overrides=[_price(p, "account") for p in overrides],
            builtin=[_price(p, "builtin") for p in sorted(book.builtin, key=lambda p: p.model)],
            unpriced=_price(book.unpriced, "unpriced"),
        )

    @put("/prices", opt=roles(ADMIN))
    async def set_price(
        self, request: Request[Any, Any, Any], data: JSONBody[PriceBody]
    ) -> PriceView:
        """Set the account's price for a model id or glob (replacing an earlier one)."""
        hub, caller = hub_of(request), caller_of(request)
        price = ModelPrice(
            model=data.model.strip(), input=data.input, output=data.output, cached=data.cached
        )
        check_price(price)
        await hub.storage.model_prices.set(caller.account_id, price)
        hub.prices.forget(caller.account_id)
        await hub.auditor.record(
            caller.account_id,
            "gateway.price_set",
            caller.key_id,
            {
                "model": price.model,
                "input": str(price.input),
                "output": str(price.output),
                "cached": None if price.cached is None else str(price.cached),
            },
        )
        return _price(price, "account")

    @delete("/prices", opt=roles(ADMIN, raises=(NotFoundError,)), status_code=204)
    async def unset_price(self, request: Request[Any, Any, Any], model: FromQuery[str]) -> None:
        """Remove the account's price for exactly ``model`` (the built-in one applies again)."""
        hub, caller = hub_of(request), caller_of(request)
        await hub.storage.model_prices.delete(caller.account_id, model)
        hub.prices.forget(caller.account_id)
        await hub.auditor.record(
            caller.account_id, "gateway.price_unset", caller.key_id, {"model": model}
        )


class FlowGatewayEventsController(Controller):
    path = "/flows/executions"
    tags = ["gateway"]

    @get("/{execution_id:str}/gateway-events", opt=roles(READ))
    async def gateway_events(
        self,
        request: Request[Any, Any, Any],
        execution_id: FromPath[str],
        before: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> UsagePage:
        """The flow execution's model requests through the gateway, newest first."""
        query = UsageQuery(execution_id=execution_id, before=_cursor(before), limit=limit)
        records = await hub_of(request).storage.usage.list(caller_of(request).account_id, query)
        last = records[-1] if len(records) == limit else None
        return UsagePage(
            events=[_event(r) for r in records],
            next_before=None if last is None else f"{last.created_at.isoformat()},{last.id}",
        )


class BudgetController(Controller):
    path = "/budgets"
    tags = ["gateway"]

    @get("/", opt=roles(READ))
    async def list_budgets(self, request: Request[Any, Any, Any]) -> list[BudgetView]:
        """Every budget with its current period: spent, reserved, resets_at and state."""
        states = await hub_of(request).budgets.states(caller_of(request).account_id)
        return [budget_view(s) for s in states]

    @post("/", opt=roles(ADMIN, raises=(ConflictError,)))
    async def add_budget(
        self, request: Request[Any, Any, Any], data: JSONBody[BudgetBody]
    ) -> BudgetView:
        """Add a budget. ``on_soft: ask`` needs ``approval_workflow`` (a workflow of the
        active policy) and a soft limit. On a ``warn`` budget the workflow is optional: its
        channels and approvers are told when the soft limit is passed."""
        hub, caller = hub_of(request), caller_of(request)
        budget = await hub.budgets.add(
            caller.account_id,
            name=data.name,
            scope=data.scope,
            scope_id=data.scope_id,
            period=data.period,
            soft_limit=data.soft_limit,
            hard_limit=data.hard_limit,
            on_soft=data.on_soft,
            approval_workflow=data.approval_workflow,
            actor=caller.key_id,
        )
        states = await hub.budgets.states(caller.account_id)
        return budget_view(next(s for s in states if s.budget.id == budget.id))

    @get("/{budget:str}", opt=roles(READ))
    async def get_budget(
        self, request: Request[Any, Any, Any], budget: FromPath[str]
    ) -> BudgetView:
        """One budget (by id or name) with its current state."""
        hub, account_id = hub_of(request), caller_of(request).account_id
        found = await hub.budgets.find(account_id, budget)
        states = await hub.budgets.states(account_id)
        return budget_view(next(s for s in states if s.budget.id == found.id))

    @delete("/{budget:str}", opt=roles(ADMIN), status_code=204)
    async def remove_budget(self, request: Request[Any, Any, Any], budget: FromPath[str]) -> None:
        """Remove a budget (by id or name) and its counters."""
        caller = caller_of(request)
        await hub_of(request).budgets.remove(caller.account_id, budget, actor=caller.key_id)
