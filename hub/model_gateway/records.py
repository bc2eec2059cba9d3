"""The gateway's records. Money is ``Decimal`` US dollars everywhere in the core; stores may
keep it as integer nano-dollars so SQL sums are exact (``to_nanos``/``from_nanos``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import msgspec

NANOS = Decimal(1_000_000_000)


def to_nanos(amount: Decimal) -> int:
    """Dollars → integer nano-dollars, rounded up (a reservation never undercounts)."""
    return int((amount * NANOS).to_integral_value(rounding="ROUND_CEILING"))


def from_nanos(nanos: int) -> Decimal:
    return Decimal(nanos) / NANOS


# --- providers and routing ----------------------------------------------------------------
class ProviderKind(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    OPENAI_COMPATIBLE = "openai-compatible"  # vLLM, Ollama, LiteLLM, Azure-style bases...


class Provider(msgspec.Struct, frozen=True, kw_only=True):
    """A model provider an account routes to. ``secret_ref`` names the provider key in
    custody (``local:NAME``, ``vault:PATH#FIELD`` or ``env:VAR``); the key itself is never
    stored here, never returned by the API and never logged."""

    id: str
    account_id: str
    name: str
    kind: ProviderKind
    base_url: str  # e.g. https://api.openai.com/v1, https://api.anthropic.com
    secret_ref: str
    models: tuple[str, ...] = ()  # model ids served by this provider (exact or glob "gpt-*")
    aliases: dict[str, str] = {}  # alias → upstream model id, e.g. {"fast": "gpt-4o-mini"}
    created_at: datetime
    updated_at: datetime


class ModelRoute(msgspec.Struct, frozen=True, kw_only=True):
    """Where a requested model goes: the provider and the model id sent upstream."""

    provider: Provider
    requested_model: str
    upstream_model: str


# --- secret custody -----------------------------------------------------------------------
class StoredSecret(msgspec.Struct, frozen=True, kw_only=True):
    """A ``local_encrypted`` secret: AES-GCM ciphertext (base64, nonce included) under the
    key ``key_id``; the plaintext never touches the database."""

    account_id: str
    name: str
    ciphertext: str
    key_id: str
    created_at: datetime
    updated_at: datetime


# --- runtime identity ---------------------------------------------------------------------
class FlowExecution(msgspec.Struct, frozen=True, kw_only=True):
    """One run of a flow (a managed agent runtime): the unit usage is attributed to."""

    id: str
    account_id: str
    flow: str
    principal: str  # who runs: e.g. "flow:nightly-triage" or a user's email
    created_at: datetime
    labels: dict[str, str] = {}


class RuntimeToken(msgspec.Struct, frozen=True, kw_only=True):
    """A short-lived gateway credential of one flow execution. Only ``token_hash`` (SHA-256 of
    the token text ``plrt_<id>_<secret>``) is stored."""

    id: str
    account_id: str
    execution_id: str
    flow: str
    principal: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    models: tuple[str, ...] = ()  # allowed models (globs); empty: every routed model
    revoked_at: datetime | None = None


class Attribution(msgspec.Struct, frozen=True, kw_only=True):
    """Who a gateway request is for: from an API key or a runtime token."""

    account_id: str
    api_key_id: str  # the API key id, or the runtime token id ("rt_…")
    principal: str
    flow: str | None = None
    execution_id: str | None = None
    models: tuple[str, ...] = ()  # allowed models (globs); empty: all


# --- usage and cost -----------------------------------------------------------------------
class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens of one request. ``cached_tokens`` are part of ``input_tokens`` (OpenAI's
    convention; Anthropic's cache reads are added to its input count when normalised)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


class ModelPrice(msgspec.Struct, frozen=True, kw_only=True):
    """US dollars per million tokens."""

    model: str  # exact id or glob ("claude-sonnet-4*")
    input: Decimal
    output: Decimal
    cached: Decimal | None = None  # None: cached input costs what input costs


class UsageRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One gateway request in the ledger."""

    id: str
    account_id: str
    api_key_id: str
    principal: str
    flow: str | None
    execution_id: str | None
    endpoint: str  # "openai.chat" | "openai.responses" | "anthropic.messages" | "openai.models"
    model: str  # as requested
    upstream_model: str
    provider: str  # provider name
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: Decimal
    latency_ms: float
    status: int  # HTTP status given to the client
    outcome: str  # "ok" | "error" | "refused" | "disconnected"
    stream: bool
    created_at: datetime
    error: str | None = None  # short, secret-free reason when not ok
    session_id: str | None = None  # the client's X-Preloop-Session-Id (runtime sessions)


# --- budgets ------------------------------------------------------------------------------
class BudgetScope(StrEnum):
    ACCOUNT = "account"
    FLOW = "flow"
    API_KEY = "api_key"


class BudgetPeriod(StrEnum):
    DAY = "day"  # resets at 00:00 UTC
    MONTH = "month"  # resets on the 1st, 00:00 UTC
    TOTAL = "total"  # never resets


class SoftAction(StrEnum):
    WARN = "warn"  # past the soft limit: warning header + event to the approvers' channels
    ASK = "ask"  # past the soft limit: pause and ask through ``approval_workflow``


class Budget(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    name: str
    scope: BudgetScope
    scope_id: str = ""  # flow name or API key id; "" for the account scope
    period: BudgetPeriod
    soft_limit: Decimal | None = None
    hard_limit: Decimal | None = None
    on_soft: SoftAction = SoftAction.WARN
    approval_workflow: str | None = None  # required when on_soft is "ask"
    created_at: datetime
