"""The SQL store of held calls' sealed arguments (``hub.ports.HeldCallStore``)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from hub.records import HeldCall
from server.db import tables as t
from server.db.stores._base import SqlStore, executes, to_values


class SqlHeldCallStore(SqlStore):
    """Each write is one statement (``run_single``)."""

    async def add(self, held: HeldCall) -> None:
        await self._db.run_single(
            executes(insert(t.held_calls).values(to_values(held))),
            conflict=f"approval request {held.request_id!r} already holds a call",
            missing=f"approval request {held.request_id!r} does not exist",
        )

    async def get(self, account_id: str, request_id: str) -> HeldCall | None:
        c = t.held_calls.c
        stmt = select(t.held_calls).where(c.account_id == account_id, c.request_id == request_id)
        return await self._first(stmt, HeldCall)

    async def remove(self, account_id: str, request_id: str) -> None:
        c = t.held_calls.c
        await self._db.run_single(
            executes(
                delete(t.held_calls).where(c.account_id == account_id, c.request_id == request_id)
            )
        )
