"""The compliance cache in memory (tests, and a hub without a SQL database)."""

from __future__ import annotations

from hub.compliance.records import ComplianceResult, Mode

_Key = tuple[str, str, str, str, str]


class InMemoryComplianceResults:
    def __init__(self) -> None:
        self._rows: dict[_Key, ComplianceResult] = {}

    async def get(
        self, account_id: str, issue_id: str, metric: str, mode: Mode, engine: str
    ) -> ComplianceResult | None:
        return self._rows.get((account_id, issue_id, metric, mode, engine))

    async def put(self, result: ComplianceResult) -> None:
        key = (result.account_id, result.issue_id, result.metric, result.mode, result.engine)
        self._rows[key] = result
