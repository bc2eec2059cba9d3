"""What a model costs: a built-in price table, per-account overrides, exact cost, and the
upper bound a budget reserves before a request is forwarded.

    price(account, model) ─▶ the account's overrides (most specific pattern wins)
                          └▶ else the built-in table (most specific pattern wins)
                          └▶ else None: the model is unpriced
    cost(price, usage)    ─▶ exact Decimal dollars
    estimate(price, ...)  ─▶ an upper bound: every input byte counted as half a token at the
                             full input price, plus the most output the request may produce
                             (its max tokens, or the default, times its choices)

An unpriced model is not free: ``cost`` and ``estimate`` charge it the configured fallback
price (``PRELOOP_BUDGETS_UNPRICED_INPUT``/``_OUTPUT``, by default the dearest built-in rate),
so a hard budget cannot be bypassed by asking for a model nobody priced
(docs/decisions/0026-unpriced-models.md).

Prices are US dollars per million tokens. Patterns are globs (``fnmatch``, case-sensitive);
"most specific" is the pattern with the most literal characters, an exact id beating any glob.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from hub.cache import Recent
from hub.errors import ValidationError
from hub.model_gateway.records import ModelPrice

MILLION = Decimal(1_000_000)
MAX_PRICE = Decimal(1_000_000)  # dollars per million tokens: far above any real price
D = Decimal


def _p(model: str, input: str, output: str, cached: str | None = None) -> ModelPrice:
    return ModelPrice(
        model=model, input=D(input), output=D(output), cached=None if cached is None else D(cached)
    )


# Public list prices (USD per million tokens; cached = cache reads), November 2026.
BUILTIN_PRICES: tuple[ModelPrice, ...] = (
    # OpenAI
    _p("gpt-5*", "1.25", "10.00", "0.125"),
    _p("gpt-5-mini*", "0.25", "2.00", "0.025"),
    _p("gpt-5-nano*", "0.05", "0.40", "0.005"),
    _p("gpt-4.1*", "2.00", "8.00", "0.50"),
    _p("gpt-4.1-mini*", "0.40", "1.60", "0.10"),
    _p("gpt-4.1-nano*", "0.10", "0.40", "0.025"),
    _p("gpt-4o*", "2.50", "10.00", "1.25"),
    _p("gpt-4o-mini*", "0.15", "0.60", "0.075"),
    _p("o1*", "15.00", "60.00", "7.50"),
    _p("o3*", "2.00", "8.00", "0.50"),
    _p("o3-mini*", "1.10", "4.40", "0.55"),
    _p("o4-mini*", "1.10", "4.40", "0.275"),
    _p("text-embedding-3-small", "0.02", "0"),
    _p("text-embedding-3-large", "0.13", "0"),
    _p("text-embedding-ada-002", "0.10", "0"),
    # Anthropic
    _p("claude-opus-4*", "15.00", "75.00", "1.50"),
    _p("claude-opus-4-5*", "5.00", "25.00", "0.50"),
    _p("claude-sonnet-4*", "3.00", "15.00", "0.30"),
    _p("claude-haiku-4*", "1.00", "5.00", "0.10"),
    _p("claude-3-7-sonnet*", "3.00", "15.00", "0.30"),
    _p("claude-3-5-sonnet*", "3.00", "15.00", "0.30"),
    _p("claude-3-5-haiku*", "0.80", "4.00", "0.08"),
    _p("claude-3-opus*", "15.00", "75.00", "1.50"),
    _p("claude-3-haiku*", "0.25", "1.25", "0.03"),
)


class ModelPriceSource(Protocol):
    """The per-account overrides (``Storage.model_prices``)."""

    async def list(self, account_id: str) -> Sequence[ModelPrice]: ...


def specificity(pattern: str) -> tuple[int, int]:
    """Sort key: an exact id beats every glob; then the most literal characters."""
    wild = any(ch in pattern for ch in "*?[")
    literal = len(pattern) - sum(pattern.count(ch) for ch in "*?[]")
    return (0 if wild else 1, literal)


def best_match(prices: Iterable[ModelPrice], model: str) -> ModelPrice | None:
    """The most specific price whose pattern matches ``model`` (ties: the first given)."""
    best: ModelPrice | None = None
    for price in prices:
        if fnmatch.fnmatchcase(model, price.model) and (
            best is None or specificity(price.model) > specificity(best.model)
        ):
            best = price
    return best


def check_price(price: ModelPrice) -> None:
    """A price a person may set: a pattern, non-negative amounts."""
    if not price.model.strip():
        raise ValidationError("a price needs a model id or glob pattern")
    amounts = {"input": price.input, "output": price.output, "cached": price.cached}
    for name, amount in amounts.items():
        if amount is not None and (not amount.is_finite() or amount < 0):
            raise ValidationError(f"price {name} for {price.model!r} must be 0 or more")
        if amount is not None and amount > MAX_PRICE:
            raise ValidationError(
                f"price {name} for {price.model!r} is above ${MAX_PRICE} per million tokens"
            )


def _tokens(usage: Any, name: str) -> int:
    """A token count of ``usage``; missing or ``None`` counts as 0, never negative."""
    return max(int(getattr(usage, name, 0) or 0), 0)


class PriceBook:
    """Implements ``hub.model_gateway.ports.Prices``. Overrides are read per account and kept for
    ``cache_seconds`` (``forget`` drops them at once after this process changed them)."""

    def __init__(
        self,
        overrides: ModelPriceSource,
        *,
        unpriced: ModelPrice,
        default_max_output_tokens: int = 4096,
        builtin: Sequence[ModelPrice] = BUILTIN_PRICES,
        cache_seconds: float = 2.0,
    ) -> None:
        self._overrides = overrides
        self._builtin = tuple(builtin)
        self.unpriced = unpriced
        self._max_output = default_max_output_tokens
        self._cache: Recent[str, tuple[ModelPrice, ...]] = Recent(cache_seconds)

    @property
    def builtin(self) -> tuple[ModelPrice, ...]:
        return self._builtin

    async def overrides(self, account_id: str) -> tuple[ModelPrice, ...]:
        return await self._cache.load(account_id, lambda: self._listed(account_id))

    async def _listed(self, account_id: str) -> tuple[ModelPrice, ...]:
        return tuple(await self._overrides.list(account_id))

    def forget(self, account_id: str) -> None:
        self._cache.drop(account_id)

    async def price(self, account_id: str, model: str) -> ModelPrice | None:
        """The account's override when one matches, else the built-in price, else ``None``."""
        override = best_match(await self.overrides(account_id), model)
        return override if override is not None else best_match(self._builtin, model)

    def cost(self, price: ModelPrice | None, usage: Any) -> Decimal:
        """Exact dollars for ``usage`` (any object with ``input_tokens``, ``output_tokens``,
        ``cached_tokens``). Cached tokens are part of the input tokens."""
        price = price or self.unpriced
        input_tokens = _tokens(usage, "input_tokens")
        cached = min(_tokens(usage, "cached_tokens"), input_tokens)
        output_tokens = _tokens(usage, "output_tokens")
        cached_rate = price.input if price.cached is None else price.cached
        total = (
            (input_tokens - cached) * price.input
            + cached * cached_rate
            + output_tokens * price.output
        )
        return total / MILLION

    def estimate(
        self,
        price: ModelPrice | None,
        *,
        input_bytes: int,
        max_output_tokens: int | None,
        choices: int = 1,
    ) -> Decimal:
        """An upper bound: ``input_bytes / 2`` input tokens (no cache discount) plus
        ``max_output_tokens`` (or the configured default) output tokens for each of
        ``choices``. A maximum below 1 is no maximum (the default applies) and fewer than one
        choice is one: a bound is never lowered by a value a provider would not honour (the
        gateway refuses such values before it asks)."""
        price = price or self.unpriced
        input_tokens = math.ceil(max(input_bytes, 0) / 2)
        per_choice = max_output_tokens if max_output_tokens and max_output_tokens > 0 else None
        output_tokens = (per_choice or self._max_output) * max(choices, 1)
        return (input_tokens * price.input + output_tokens * price.output) / MILLION
