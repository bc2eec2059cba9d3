"""The model gateway as the REST API answers it: providers and the secrets custody holds,
flow executions and their runtime tokens, usage, sessions, budgets and prices.

Money is a decimal string of US dollars (``"0.001250"``: at least six decimals, up to nine,
never a float); :func:`dollars` reads one."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec


def dollars(text: str | None) -> Decimal | None:
    """An amount of money as the API writes it, as a ``Decimal`` (None stays None)."""
    return None if text is None else Decimal(text)


# --- providers and secrets ---------------------------------------------------------------
class ProviderView(msgspec.Struct, frozen=True, kw_only=True):
    """A provider as shown: the reference of its key, never the key."""

    id: str
    name: str
    kind: str  # openai | anthropic | openai-compatible
    base_url: str
    secret_ref: str
    models: list[str]
    aliases: dict[str, str]
    created_at: datetime
    updated_at: datetime


class SecretView(msgspec.Struct, frozen=True, kw_only=True):
    """A secret as listed: ``ref`` names it in a provider's ``secret_ref``; ``current`` says
    a ``local`` secret is sealed under the active key (``null`` for other backends)."""

    name: str
    backend: str
    ref: str
    key_id: str | None
    current: bool | None
    updated_at: datetime | None


class SecretRotated(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    key_id: str
    rotated: bool  # False: it was sealed under the active key already


# --- flow executions -----------------------------------------------------------------------
class ExecutionView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    flow: str
    principal: str
    labels: dict[str, str]
    created_at: datetime


class TokenView(msgspec.Struct, frozen=True, kw_only=True):
    """A runtime token as shown: never its text."""

    id: str
    status: str  # active | expired | revoked
    models: list[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class ExecutionStarted(msgspec.Struct, frozen=True, kw_only=True):
    execution: ExecutionView
    token: str  # shown once
    token_id: str
    expires_at: datetime
    openai_base_url: str
    anthropic_base_url: str


class ExecutionDetail(msgspec.Struct, frozen=True, kw_only=True):
    execution: ExecutionView
    tokens: list[TokenView]


# --- usage ---------------------------------------------------------------------------------
class UsageTotals(msgspec.Struct, frozen=True, kw_only=True):
    """Spend of one group (a day, a model, a flow, an API key), or the total (``key`` None).
    A flow group's ``key`` is None for usage outside any flow."""

    key: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: str  # US dollars


class UsageSummary(msgspec.Struct, frozen=True, kw_only=True):
    group_by: str
    since: datetime | None
    until: datetime | None
    flow: str | None
    groups: list[UsageTotals]
    total: UsageTotals


class UsageEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    created_at: datetime
    api_key_id: str
    principal: str
    flow: str | None
    execution_id: str | None
    endpoint: str
    model: str
    upstream_model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: str
    latency_ms: float
    status: int
    outcome: str
    stream: bool
    error: str | None


class UsagePage(msgspec.Struct, frozen=True, kw_only=True):
    events: list[UsageEvent]
    next_before: str | None  # pass as ``before`` for the next (older) page; None: no more


class SessionView(msgspec.Struct, frozen=True, kw_only=True):
    execution_id: str
    flow: str | None
    principal: str
    requests: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: str
    errors: int
    first_seen: datetime
    last_seen: datetime


class SessionDetail(msgspec.Struct, frozen=True, kw_only=True):
    session: SessionView
    events: list[UsageEvent]


# --- budgets and prices ----------------------------------------------------------------------
class BudgetView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    scope: str  # account | flow | api_key
    scope_id: str
    period: str  # day | month | total
    soft_limit: str | None
    hard_limit: str | None
    on_soft: str  # warn | ask
    approval_workflow: str | None
    created_at: datetime
    period_start: datetime
    resets_at: datetime | None
    spent: str
    reserved: str
    state: str  # ok | warning | exceeded | awaiting_approval
    approval_id: str | None


class PriceView(msgspec.Struct, frozen=True, kw_only=True):
    """US dollars per million tokens."""

    model: str
    input: str
    output: str
    cached: str | None
    source: str  # "account" (an override) | "builtin" | "unpriced" (the fallback)


class PriceList(msgspec.Struct, frozen=True, kw_only=True):
    overrides: list[PriceView]
    builtin: list[PriceView]
    unpriced: PriceView
