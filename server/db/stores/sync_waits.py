"""The SQL store of sync waits and the processes' leases (``hub.ports.SyncWaitStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.engine import Connection

from hub.records import SyncWait
from hub.store_rules import aware_utc, check_limit
from server.db import tables as t
from server.db.stores._base import SqlStore, executes, to_values


class SqlSyncWaitStore(SqlStore):
    """Each write is one statement (``run_single``: on PostgreSQL no BEGIN and COMMIT round
    trips); ``add`` and ``remove`` are on the path of every held call."""

    async def add(self, wait: SyncWait) -> None:
        await self._db.run_single(
            executes(insert(t.sync_waits).values(to_values(wait))),
            conflict=f"approval request {wait.request_id!r} already has a wait",
            missing=f"approval request {wait.request_id!r} does not exist",
        )

    async def remove(self, account_id: str, request_id: str) -> bool:
        c = t.sync_waits.c
        stmt = delete(t.sync_waits).where(c.account_id == account_id, c.request_id == request_id)

        def remove(conn: Connection) -> bool:
            return bool(conn.execute(stmt).rowcount == 1)

        return await self._db.run_single(remove)

    async def renew(self, instance_id: str, at: datetime) -> None:
        values = {"instance_id": instance_id, "renewed_at": aware_utc(at, "renewed_at")}
        stmt = self._db.upsert(t.instance_leases, values, key=("instance_id",), keep=())
        await self._db.run_single(executes(stmt))

    async def orphaned(self, stale_before: datetime, *, limit: int = 100) -> Sequence[SyncWait]:
        check_limit(limit)
        w, lease = t.sync_waits.c, t.instance_leases.c
        stmt = (
            select(t.sync_waits)
            .outerjoin(t.instance_leases, lease.instance_id == w.instance_id)
            .where(or_(lease.renewed_at.is_(None), lease.renewed_at < stale_before))
            .order_by(w.created_at, w.request_id)
            .limit(limit)
        )
        return await self._all(stmt, SyncWait)
