"""The compliance cache's port; ``InMemoryComplianceResults`` (hub/compliance/memory.py) and
``SqlComplianceResults`` (server/db/stores/compliance.py) implement it."""

from __future__ import annotations

from typing import Protocol

from hub.compliance.records import ComplianceResult, Mode


class ComplianceResults(Protocol):
    async def get(
        self, account_id: str, issue_id: str, metric: str, mode: Mode, engine: str
    ) -> ComplianceResult | None:
        """The kept answer for this key, whatever content and catalogue it was computed
        from (the caller compares them)."""
        ...

    async def put(self, result: ComplianceResult) -> None:
        """Keep ``result``, replacing the answer kept under the same key. An issue that does
        not exist (any more) raises ``NotFoundError``."""
        ...
