"""Small doubles of the gateway edge's collaborators (custody's auth and router, the ledger's
prices, budgets and ledger), for testing ``server/model_gateway`` before and apart from the real
parts. They are doubles of the ports in ``hub/model_gateway/ports.py``, never of the edge itself."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hub.errors import AuthenticationError, ConfigError, NotFoundError
from hub.model_gateway.ports import Admission, BudgetExceededError
from hub.model_gateway.records import (
    Attribution,
    Budget,
    BudgetPeriod,
    BudgetScope,
    ModelPrice,
    ModelRoute,
    Provider,
    ProviderKind,
    Usage,
    UsageRecord,
)

MILLION = Decimal(1_000_000)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FixedAuth:
    """Accepts exactly the tokens it was given."""

    def __init__(self, tokens: dict[str, Attribution]) -> None:
        self.tokens = tokens

    async def authenticate(self, presented: str) -> Attribution:
        try:
            return self.tokens[presented]
        except KeyError:
            raise AuthenticationError("unknown or expired Preloop credential") from None


def provider(name: str, kind: ProviderKind, base_url: str, **kw: Any) -> Provider:
    return Provider(
        id=f"prov_{name}",
        account_id="acc",
        name=name,
        kind=kind,
        base_url=base_url,
        secret_ref=f"env:{name.upper()}_KEY",
        created_at=T0,
        updated_at=T0,
        **kw,
    )


class StaticRouter:
    """Routes by the providers' model globs and aliases, to the provider of the right family."""

    def __init__(self, providers: Sequence[Provider], keys: dict[str, str]) -> None:
        self.providers = list(providers)
        self.keys = keys

    async def route(self, account_id: str, model: str, *, family: str) -> ModelRoute:
        for p in self.providers:
            if (p.kind == ProviderKind.ANTHROPIC) != (family == "anthropic"):
                continue
            if model in p.aliases:
                return ModelRoute(
                    provider=p, requested_model=model, upstream_model=p.aliases[model]
                )
            if any(fnmatch.fnmatchcase(model, glob) for glob in p.models):
                return ModelRoute(provider=p, requested_model=model, upstream_model=model)
        raise NotFoundError(f"model '{model}' is not routed to any provider")

    async def models(self, account_id: str) -> Sequence[tuple[str, Provider]]:
        found = [(m, p) for p in self.providers for m in (*p.models, *p.aliases)]
        return sorted(found, key=lambda pair: pair[0])

    async def provider_key(self, provider: Provider) -> str:
        if provider.name == "broken":
            raise RuntimeError("a bug in custody")  # not a PreloopError: the edge's last line
        try:
            return self.keys[provider.name]
        except KeyError:
            raise ConfigError(f"secret {provider.secret_ref} is not available") from None


class PriceTable:
    """Prices per million tokens; the estimate assumes 4 bytes a token and 4096 output tokens
    when the request sets no maximum."""

    def __init__(self, prices: Sequence[ModelPrice]) -> None:
        self.prices = {p.model: p for p in prices}

    async def price(self, account_id: str, model: str) -> ModelPrice | None:
        return self.prices.get(model)

    def cost(self, price: ModelPrice | None, usage: Any) -> Decimal:
        if price is None:
            return Decimal(0)
        assert isinstance(usage, Usage)
        cached_price = price.cached if price.cached is not None else price.input
        fresh = usage.input_tokens - usage.cached_tokens
        total = fresh * price.input + usage.cached_tokens * cached_price
        return (total + usage.output_tokens * price.output) / MILLION

    def estimate(
        self,
        price: ModelPrice | None,
        *,
        input_bytes: int,
        max_output_tokens: int | None,
        choices: int = 1,
    ) -> Decimal:
        if price is None:
            return Decimal(0)
        per_choice = max_output_tokens if max_output_tokens and max_output_tokens > 0 else 4096
        output = per_choice * max(choices, 1)
        return (input_bytes // 4 * price.input + output * price.output) / MILLION


class RecordingBudgets:
    """Admits everything below ``hard_limit`` (reserved + spent), with ``warnings``; keeps
    every admission and settlement."""

    def __init__(
        self, *, hard_limit: Decimal | None = None, warnings: tuple[str, ...] = ()
    ) -> None:
        self.hard_limit = hard_limit
        self.warnings = warnings
        self.admitted: list[tuple[Attribution, str, Decimal]] = []
        self.settled: list[tuple[Admission, Decimal]] = []
        self.open: dict[str, Decimal] = {}
        self.spent = Decimal(0)

    async def admit(self, who: Attribution, *, model: str, estimate: Decimal) -> Admission:
        reserved = sum(self.open.values(), Decimal(0))
        if self.hard_limit is not None and self.spent + reserved + estimate > self.hard_limit:
            budget = Budget(
                id="bud_1",
                account_id=who.account_id,
                name="team-monthly",
                scope=BudgetScope.ACCOUNT,
                period=BudgetPeriod.MONTH,
                hard_limit=self.hard_limit,
                created_at=T0,
            )
            raise BudgetExceededError(
                f"budget 'team-monthly' (account, month) is spent: ${self.spent} of "
                f"${self.hard_limit}; it resets 2026-02-01T00:00:00Z",
                budget=budget,
                resets_at=datetime(2026, 2, 1, tzinfo=UTC),
            )
        admission = Admission(
            reservation_id=f"res_{len(self.admitted)}", reserved=estimate, warnings=self.warnings
        )
        self.admitted.append((who, model, estimate))
        assert admission.reservation_id is not None
        self.open[admission.reservation_id] = estimate
        return admission

    async def settle(self, admission: Admission, actual: Decimal) -> None:
        assert admission.reservation_id is not None
        self.open.pop(admission.reservation_id)
        self.spent += actual
        self.settled.append((admission, actual))


class RecordingLedger:
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def record(self, record: UsageRecord) -> None:
        self.records.append(record)

    async def flush(self) -> None:
        pass
