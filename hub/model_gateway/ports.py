"""The seams between the gateway's parts. Each Protocol names who implements it; the HTTP edge
(``server/model_gateway``) and AI approval code against these, never against an implementation.

Storage ports of the gateway's records live with the other stores in ``hub/ports.py``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from hub.errors import PreloopError
from hub.model_gateway.records import (
    Attribution,
    Budget,
    ModelPrice,
    ModelRoute,
    Provider,
    UsageRecord,
)


class BudgetExceededError(PreloopError):
    """A hard limit (or a refused pause-and-ask) stops a request before the provider is
    called. The message names the budget, its limit and spend, and when it resets."""

    title = "Budget exceeded"

    def __init__(self, message: str, *, budget: Budget, resets_at: datetime | None = None) -> None:
        super().__init__(message)
        self.budget = budget
        self.resets_at = resets_at


class GatewayAuth(Protocol):
    """Custody/tokens part. A bearer (``Authorization: Bearer``) or ``x-api-key`` credential:
    an API key (``pl_…``) or a runtime token (``plrt_…``) → who the request is for, or
    ``AuthenticationError`` saying what is wrong (expired, revoked, unknown)."""

    async def authenticate(self, presented: str) -> Attribution: ...


class ModelRouter(Protocol):
    """Providers part. ``family`` is the wire format asked for: "openai" or "anthropic"."""

    async def route(self, account_id: str, model: str, *, family: str) -> ModelRoute:
        """``NotFoundError`` naming the model and what is routable when nothing matches."""
        ...

    async def models(self, account_id: str) -> Sequence[tuple[str, Provider]]:
        """Every routable model id (aliases included) with its provider, sorted by id."""
        ...

    async def provider_key(self, provider: Provider) -> str:
        """The provider's secret from custody (cached briefly); ``ConfigError`` naming the
        reference, never the value, when custody cannot give it."""
        ...


class Admission(msgspec.Struct, frozen=True, kw_only=True):
    """What the budgets allowed: a reservation to settle, and soft-limit warnings for the
    ``Preloop-Budget-Warning`` response header (empty when none)."""

    reservation_id: str | None = None
    reserved: Decimal = Decimal(0)
    warnings: tuple[str, ...] = ()


class Budgets(Protocol):
    """Ledger/budgets part."""

    async def admit(self, who: Attribution, *, model: str, estimate: Decimal) -> Admission:
        """Reserve ``estimate`` against every budget that applies (account, flow, API key),
        atomically. Raises ``BudgetExceededError`` when a hard limit would be passed; awaits the
        approval workflow of an ``ask`` budget past its soft limit (raises ``BudgetExceededError``
        when that is denied or times out)."""
        ...

    async def settle(self, admission: Admission, actual: Decimal) -> None:
        """Replace the reservation by the actual cost (also for failed or cut requests)."""
        ...


class Prices(Protocol):
    """Ledger/budgets part: built-in price table, overridable per account."""

    async def price(self, account_id: str, model: str) -> ModelPrice | None: ...
    def cost(self, price: ModelPrice | None, usage: Any) -> Decimal: ...
    def estimate(
        self,
        price: ModelPrice | None,
        *,
        input_bytes: int,
        max_output_tokens: int | None,
        choices: int = 1,
    ) -> Decimal:
        """The most a request can cost (an upper bound used for the reservation):
        ``max_output_tokens`` per choice (``None``: the configured default), ``choices``
        times."""
        ...


class Ledger(Protocol):
    """Ledger/budgets part. ``record`` never blocks the request path; records are durable
    once ``flush`` returns, and ``close`` flushes."""

    def record(self, record: UsageRecord) -> None: ...
    async def flush(self) -> None: ...


class ModelGateway(Protocol):
    """HTTP edge part: the gateway in-process, accounted to ``who`` and budgeted like any
    request. Refusals raise (``BudgetExceededError``, ``NotFoundError``, ``ValidationError``...),
    and so does a provider's error answer."""

    async def chat(self, who: Attribution, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` is an OpenAI chat-completions request (AI approval, duplicate and
        compliance judgements); the answer is the provider's response as JSON (OpenAI shape; an
        Anthropic provider's answer is translated)."""
        ...

    async def embed(self, who: Attribution, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` is an OpenAI embeddings request (the search indexer, principal
        ``indexer``); the answer is the provider's embeddings response as JSON. Ledger
        endpoint ``openai.embeddings``; only OpenAI-compatible providers serve it."""
        ...
