"""The compliance cache in SQL (``hub.compliance.ports.ComplianceResults``), on the hub's
engine: one row per (account, issue, metric, mode, engine), replaced by one upsert; removed
with its issue (the foreign key cascades)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.compliance.records import ComplianceResult, Mode
from server.db import tables as t
from server.db.stores._base import Database, SqlStore, executes, to_values

_KEY = ("account_id", "issue_id", "metric", "mode", "engine")


class SqlComplianceResults(SqlStore):
    async def get(
        self, account_id: str, issue_id: str, metric: str, mode: Mode, engine: str
    ) -> ComplianceResult | None:
        c = t.compliance_results.c
        stmt = select(t.compliance_results).where(
            c.account_id == account_id,
            c.issue_id == issue_id,
            c.metric == metric,
            c.mode == mode,
            c.engine == engine,
        )
        return await self._first(stmt, ComplianceResult)

    async def put(self, result: ComplianceResult) -> None:
        stmt = self._db.upsert(t.compliance_results, to_values(result), key=_KEY, keep=())
        await self._db.run_single(
            executes(stmt),
            missing=f"issue {result.issue_id!r} does not exist in account {result.account_id!r}",
        )


if TYPE_CHECKING:  # mypy proves the SQL store keeps the port's shape
    from hub.compliance.ports import ComplianceResults

    _results: ComplianceResults = SqlComplianceResults(Database(cast(AsyncEngine, None)))
