"""Approval requests and votes in SQL. ``transition`` is the state machine's compare-and-set."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select, update

from hub.errors import NotFoundError
from hub.records import ApprovalRequest, ApprovalStatus, ApprovalVote
from hub.store_rules import check_limit
from server.db import tables as t
from server.db.stores._base import SqlStore, to_record, to_values


class SqlApprovalStore(SqlStore):
    async def add(self, request: ApprovalRequest) -> None:
        async with self._db.write(
            conflict=f"approval request {request.id!r} exists",
            missing=f"account {request.account_id!r} does not exist",
        ) as conn:
            await conn.execute(insert(t.approval_requests).values(to_values(request)))

    async def get(self, account_id: str, request_id: str) -> ApprovalRequest | None:
        c = t.approval_requests.c
        stmt = select(t.approval_requests).where(c.account_id == account_id, c.id == request_id)
        return await self._first(stmt, ApprovalRequest)

    async def list(
        self, account_id: str, *, status: ApprovalStatus | None = None, limit: int = 100
    ) -> Sequence[ApprovalRequest]:
        check_limit(limit)
        c = t.approval_requests.c
        stmt = select(t.approval_requests).where(c.account_id == account_id)
        if status is not None:
            stmt = stmt.where(c.status == status)
        stmt = stmt.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        return await self._all(stmt, ApprovalRequest)

    async def transition(
        self,
        account_id: str,
        request_id: str,
        *,
        expected: ApprovalStatus,
        new: ApprovalStatus,
        decided_at: datetime,
        decided_by: str | None,
        comment: str | None,
    ) -> ApprovalRequest | None:
        c = t.approval_requests.c
        # Compare-and-set: the WHERE clause carries the expected status, so of two concurrent
        # transitions the database lets exactly one match (PostgreSQL re-checks the row after
        # the first commits; SQLite runs writers one at a time). No row back == rowcount 0.
        stmt = (
            update(t.approval_requests)
            .where(c.id == request_id, c.account_id == account_id, c.status == expected)
            .values(status=new, decided_at=decided_at, decided_by=decided_by, comment=comment)
            .returning(*c)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).first()
            if row is not None:
                return to_record(row, ApprovalRequest)
            exists = select(c.id).where(c.id == request_id, c.account_id == account_id)
            if await conn.scalar(exists) is None:
                raise NotFoundError(f"approval request {request_id!r} does not exist")
            return None

    async def add_vote(self, vote: ApprovalVote) -> None:
        async with self._db.write(
            conflict=f"{vote.approver!r} already voted on {vote.request_id!r}",
            missing=f"approval request {vote.request_id!r} does not exist",
        ) as conn:
            await conn.execute(insert(t.approval_votes).values(to_values(vote)))

    async def votes(self, account_id: str, request_id: str) -> Sequence[ApprovalVote]:
        c = t.approval_votes.c
        stmt = (
            select(t.approval_votes)
            .where(c.account_id == account_id, c.request_id == request_id)
            .order_by(c.created_at, c.approver)
        )
        return await self._all(stmt, ApprovalVote)
