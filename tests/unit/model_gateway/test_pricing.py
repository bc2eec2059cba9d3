"""The price book: built-in table, overrides, exact cost, upper-bound estimates."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hub.errors import ValidationError
from hub.memory import InMemoryStorage
from hub.model_gateway.pricing import BUILTIN_PRICES, PriceBook, best_match, check_price
from hub.model_gateway.records import ModelPrice, Usage
from hub.records import Account
from tests.contract.records import T0

UNPRICED = ModelPrice(model="*", input=Decimal("15"), output=Decimal("75"))


async def book(**kwargs: object) -> tuple[PriceBook, InMemoryStorage, str]:
    storage = InMemoryStorage()
    await storage.accounts.add(Account(id="acct_1", name="one", created_at=T0))
    prices = PriceBook(storage.model_prices, unpriced=UNPRICED, cache_seconds=0, **kwargs)  # type: ignore[arg-type]
    return prices, storage, "acct_1"


@pytest.mark.parametrize(
    ("model", "pattern"),
    [
        ("gpt-4o", "gpt-4o*"),
        ("gpt-4o-2024-08-06", "gpt-4o*"),
        ("gpt-4o-mini", "gpt-4o-mini*"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano*"),
        ("o3-mini", "o3-mini*"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4*"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5*"),
        ("claude-opus-4-1-20250805", "claude-opus-4*"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku*"),
    ],
)
def test_the_most_specific_builtin_price_wins(model: str, pattern: str) -> None:
    found = best_match(BUILTIN_PRICES, model)
    assert found is not None
    assert pattern == found.model


async def test_an_account_override_beats_the_builtin_and_exact_beats_glob() -> None:
    prices, storage, account = await book()
    await storage.model_prices.set(
        account, ModelPrice(model="gpt-4o*", input=Decimal("1"), output=Decimal("2"))
    )
    await storage.model_prices.set(
        account, ModelPrice(model="gpt-4o-mini", input=Decimal("3"), output=Decimal("4"))
    )

    assert Decimal("1") == (await prices.price(account, "gpt-4o-mini-2024")).input  # type: ignore[union-attr]
    assert Decimal("3") == (await prices.price(account, "gpt-4o-mini")).input  # type: ignore[union-attr]
    assert Decimal("0.80") == (await prices.price(account, "claude-3-5-haiku")).input  # type: ignore[union-attr]
    assert await prices.price(account, "my-local-llama") is None


async def test_cost_is_exact_and_prices_cached_tokens_apart() -> None:
    prices, _, account = await book()
    price = await prices.price(account, "gpt-4o")  # 2.50 in, 1.25 cached, 10.00 out

    cost = prices.cost(price, Usage(input_tokens=1000, cached_tokens=400, output_tokens=250))

    assert Decimal("0.0015") + Decimal("0.0005") + Decimal("0.0025") == cost
    no_cache_rate = ModelPrice(model="m", input=Decimal("2"), output=Decimal("0"))
    assert Decimal("0.002") == prices.cost(
        no_cache_rate, Usage(input_tokens=1000, cached_tokens=999)
    )


async def test_an_unpriced_model_costs_the_fallback_price() -> None:
    prices, _, _ = await book()

    assert Decimal("0.09") == prices.cost(None, Usage(input_tokens=1000, output_tokens=1000))
    assert Decimal("0.315") == prices.estimate(None, input_bytes=2000, max_output_tokens=4000)


async def test_estimate_is_an_upper_bound_with_a_default_output() -> None:
    prices, _, account = await book(default_max_output_tokens=100)
    price = await prices.price(account, "gpt-4o-mini")  # 0.15 in, 0.60 out
    assert price is not None

    estimate = prices.estimate(price, input_bytes=4001, max_output_tokens=None)

    assert (2001 * Decimal("0.15") + 100 * Decimal("0.60")) / 1_000_000 == estimate
    actual = prices.cost(price, Usage(input_tokens=900, output_tokens=100))
    assert actual <= estimate


async def test_estimate_counts_every_choice_and_never_drops_below_the_default() -> None:
    prices, _, _ = await book(default_max_output_tokens=100)
    price = ModelPrice(model="m", input=Decimal(0), output=Decimal(1_000_000))  # $1 a token

    def output(max_output_tokens: int | None, choices: int = 1) -> Decimal:
        return prices.estimate(
            price, input_bytes=0, max_output_tokens=max_output_tokens, choices=choices
        )

    assert Decimal(16 * 5) == output(16, choices=5)  # n choices, each up to max tokens
    assert Decimal(100 * 5) == output(None, choices=5)  # the default, for each choice
    # a limit a provider would not honour is no limit, never "no output"
    assert [Decimal(100)] * 3 == [output(-1), output(0), output(-(10**9))]
    assert Decimal(16) == output(16, choices=0)  # fewer than one choice is one


def test_a_price_with_a_negative_amount_is_refused() -> None:
    with pytest.raises(ValidationError, match="output"):
        check_price(ModelPrice(model="x", input=Decimal(1), output=Decimal(-1)))
    with pytest.raises(ValidationError, match="above"):
        check_price(ModelPrice(model="x", input=Decimal("1e7"), output=Decimal(1)))
    with pytest.raises(ValidationError, match="model"):
        check_price(ModelPrice(model=" ", input=Decimal(1), output=Decimal(1)))


async def test_embeddings_models_are_priced_for_input_only() -> None:
    from hub.model_gateway.pricing import BUILTIN_PRICES, best_match

    for model, per_million in (
        ("text-embedding-3-small", "0.02"),
        ("text-embedding-3-large", "0.13"),
        ("text-embedding-ada-002", "0.10"),
    ):
        price = best_match(BUILTIN_PRICES, model)
        assert price is not None
        assert (price.model, price.input, price.output) == (model, Decimal(per_million), 0)
