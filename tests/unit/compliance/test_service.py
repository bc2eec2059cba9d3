"""ComplianceService over a scripted gateway: the rules are never cached, and a cache that
refuses to keep an answer does not lose it."""

from __future__ import annotations

import json
from typing import Any

from hub.clock import FrozenClock
from hub.compliance.catalogue import packaged_catalogue
from hub.compliance.memory import InMemoryComplianceResults
from hub.compliance.records import ComplianceResult
from hub.compliance.service import ComplianceService
from hub.errors import NotFoundError
from hub.model_gateway.records import Attribution
from tests.unit.compliance.support import T0, issue

ANSWER = {
    "compliance_factor": 0.9,
    "reason": "Ready.",
    "suggestion": "None.",
    "annotated_description": [],
}


class Gateway:
    def __init__(self) -> None:
        self.asked: list[tuple[Attribution, dict[str, Any]]] = []

    async def chat(self, who: Attribution, body: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((who, body))
        return {"choices": [{"message": {"content": json.dumps(ANSWER)}}]}


class Refusing(InMemoryComplianceResults):
    async def put(self, result: ComplianceResult) -> None:
        raise NotFoundError("issue 'iss_1' does not exist")


async def test_the_rules_are_not_cached() -> None:
    results = InMemoryComplianceResults()
    scorer = ComplianceService(packaged_catalogue(), results, FrozenClock(T0))

    answer = await scorer.assess("acc", issue("Export invoices as CSV"), "INVEST")

    assert ("rules", False) == (answer["engine"], answer["cached"])
    assert {} == results._rows


async def test_an_answer_the_cache_refuses_is_still_answered() -> None:
    gateway = Gateway()
    scorer = ComplianceService(
        packaged_catalogue(), Refusing(), FrozenClock(T0), gateway=gateway, model="m"
    )

    answer = await scorer.assess("acc", issue("Export invoices as CSV"), "DoR")

    assert ("model:m", 0.9, False) == (
        answer["engine"],
        answer["compliance_factor"],
        answer["cached"],
    )
    [(who, body)] = gateway.asked
    assert ("acc", "compliance", "compliance") == (who.account_id, who.api_key_id, who.principal)
    assert ("m", 0) == (body["model"], body["temperature"])
