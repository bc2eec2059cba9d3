"""Builders for the gateway's records in the contract tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hub.ids import new_id
from hub.model_gateway.records import Budget, BudgetPeriod, BudgetScope, UsageRecord

from .records import at


def usage(account_id: str, *, seconds: float = 0, **extra: Any) -> UsageRecord:
    fields: dict[str, Any] = {
        "id": new_id("use"),
        "account_id": account_id,
        "api_key_id": "key_a",
        "principal": "agent@example.com",
        "flow": None,
        "execution_id": None,
        "endpoint": "openai.chat",
        "model": "gpt-4o-mini",
        "upstream_model": "gpt-4o-mini",
        "provider": "openai",
        "input_tokens": 100,
        "output_tokens": 10,
        "cached_tokens": 0,
        "cost": Decimal("0.000021"),
        "latency_ms": 12.5,
        "status": 200,
        "outcome": "ok",
        "stream": False,
        "created_at": at(seconds),
    }
    return UsageRecord(**(fields | extra))


def budget(account_id: str, name: str = "team-day", **extra: Any) -> Budget:
    fields: dict[str, Any] = {
        "id": new_id("bud"),
        "account_id": account_id,
        "name": name,
        "scope": BudgetScope.ACCOUNT,
        "period": BudgetPeriod.DAY,
        "hard_limit": Decimal("10"),
        "created_at": at(),
    }
    return Budget(**(fields | extra))
