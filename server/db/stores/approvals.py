"""Approval requests and votes in SQL. ``transition`` is the state machine's compare-and-set;
``claim`` and ``store_result`` are compare-and-sets too, so an approval runs its call once.
``cast_vote`` is a decision's one write transaction: it locks the request row, records the
vote, counts the approvals and moves the request when the vote decides it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Update, func, insert, select, update
from sqlalchemy.engine import Connection

from hub.errors import ConflictError, NotFoundError
from hub.ports import VoteOutcome
from hub.records import ApprovalRequest, ApprovalStatus, ApprovalVote, VoteChoice
from hub.store_rules import aware_utc, check_limit, vote_outcome
from server.db import tables as t
from server.db.stores._base import SqlStore, to_record, to_values


class SqlApprovalStore(SqlStore):
    async def add(self, request: ApprovalRequest) -> None:
        def add(conn: Connection) -> None:
            conn.execute(insert(t.approval_requests).values(to_values(request)))

        await self._db.run_write(
            add,
            conflict=f"approval request {request.id!r} exists",
            missing=f"account {request.account_id!r} does not exist",
        )

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
        decided_by_name: str | None = None,
        decided_via: str | None = None,
    ) -> ApprovalRequest | None:
        c = t.approval_requests.c
        # Compare-and-set: the WHERE clause carries the expected status, so of two concurrent
        # transitions the database lets exactly one match (PostgreSQL re-checks the row after
        # the first commits; SQLite runs writers one at a time). No row back == rowcount 0.
        stmt = (
            update(t.approval_requests)
            .where(c.id == request_id, c.account_id == account_id, c.status == expected)
            .values(
                status=new,
                decided_at=decided_at,
                decided_by=decided_by,
                decided_by_name=decided_by_name,
                decided_via=decided_via,
                comment=comment,
            )
            .returning(*c)
        )
        return await self._compare_and_set(account_id, request_id, stmt)

    async def claim(self, account_id: str, request_id: str, at: datetime) -> ApprovalRequest | None:
        c = t.approval_requests.c
        # Same compare-and-set as ``transition``: of concurrent claims one row update matches.
        stmt = (
            update(t.approval_requests)
            .where(
                c.id == request_id,
                c.account_id == account_id,
                c.status == ApprovalStatus.APPROVED,
                c.claimed_at.is_(None),
            )
            .values(claimed_at=aware_utc(at, "claimed_at"))
            .returning(*c)
        )
        return await self._compare_and_set(account_id, request_id, stmt)

    async def store_result(
        self, account_id: str, request_id: str, result: dict[str, Any]
    ) -> ApprovalRequest:
        c = t.approval_requests.c
        stmt = (
            update(t.approval_requests)
            .where(
                c.id == request_id,
                c.account_id == account_id,
                c.claimed_at.is_not(None),
                c.result.is_(None),  # SQL NULL: the column stores None as NULL (none_as_null)
            )
            .values(result=result)
            .returning(*c)
        )
        stored = await self._compare_and_set(account_id, request_id, stmt)
        if stored is None:
            raise ConflictError(
                f"approval request {request_id!r} is not claimed or already has a result"
            )
        return stored

    async def due(self, before: datetime, *, limit: int = 100) -> Sequence[ApprovalRequest]:
        check_limit(limit)
        c = t.approval_requests.c
        stmt = (
            select(t.approval_requests)
            .where(
                c.status == ApprovalStatus.PENDING,
                c.expires_at.is_not(None),
                c.expires_at < aware_utc(before, "before"),
            )
            .order_by(c.expires_at, c.id)
            .limit(limit)
        )  # served by the (status, expires_at) index
        return await self._all(stmt, ApprovalRequest)

    async def escalation_due(
        self, before: datetime, *, limit: int = 100
    ) -> Sequence[ApprovalRequest]:
        check_limit(limit)
        c = t.approval_requests.c
        stmt = (
            select(t.approval_requests)
            .where(
                c.status == ApprovalStatus.PENDING,
                c.escalated_at.is_(None),
                c.escalate_at.is_not(None),
                c.escalate_at < aware_utc(before, "before"),
            )
            .order_by(c.escalate_at, c.id)
            .limit(limit)
        )  # served by the (status, escalate_at) index
        return await self._all(stmt, ApprovalRequest)

    async def escalate(
        self, account_id: str, request_id: str, *, at: datetime, approvers: Sequence[str]
    ) -> ApprovalRequest | None:
        c = t.approval_requests.c
        # Same compare-and-set as ``transition``: of replicas escalating at once, one matches.
        stmt = (
            update(t.approval_requests)
            .where(
                c.id == request_id,
                c.account_id == account_id,
                c.status == ApprovalStatus.PENDING,
                c.escalated_at.is_(None),
            )
            .values(escalated_at=aware_utc(at, "escalated_at"), approvers=list(approvers))
            .returning(*c)
        )
        return await self._compare_and_set(account_id, request_id, stmt)

    async def _compare_and_set(
        self, account_id: str, request_id: str, stmt: Update
    ) -> ApprovalRequest | None:
        """Runs a guarded ``UPDATE … RETURNING``: the updated request, or ``None`` when the guard
        did not match. NotFound when the request does not exist in the account."""

        def compare_and_set(conn: Connection) -> ApprovalRequest | None:
            row = conn.execute(stmt).first()
            if row is not None:
                return to_record(row, ApprovalRequest)
            _require(conn, account_id, request_id)
            return None

        return await self._db.run_single(compare_and_set)

    async def add_vote(self, vote: ApprovalVote) -> None:
        async with self._db.write(
            conflict=f"{vote.approver!r} already voted on {vote.request_id!r}",
            missing=f"approval request {vote.request_id!r} does not exist",
        ) as conn:
            await conn.execute(insert(t.approval_votes).values(to_values(vote)))

    async def cast_vote(self, vote: ApprovalVote, *, required: int, decided_by: str) -> VoteOutcome:
        return await self._db.run_write(
            lambda conn: _cast_vote(conn, vote, required, decided_by),
            conflict=f"{vote.approver!r} already voted on {vote.request_id!r}",
            missing=f"approval request {vote.request_id!r} does not exist",
        )

    async def votes(self, account_id: str, request_id: str) -> Sequence[ApprovalVote]:
        c = t.approval_votes.c
        stmt = (
            select(t.approval_votes)
            .where(c.account_id == account_id, c.request_id == request_id)
            .order_by(c.created_at, c.approver)
        )
        return await self._all(stmt, ApprovalVote)


def _require(conn: Connection, account_id: str, request_id: str) -> None:
    c = t.approval_requests.c
    exists = select(c.id).where(c.id == request_id, c.account_id == account_id)
    if conn.scalar(exists) is None:
        raise NotFoundError(f"approval request {request_id!r} does not exist")


def _cast_vote(conn: Connection, vote: ApprovalVote, required: int, decided_by: str) -> VoteOutcome:
    c, v = t.approval_requests.c, t.approval_votes.c
    # The row lock (PostgreSQL; SQLite's transaction holds the write lock already) queues
    # concurrent votes on this request, so each counts the votes committed before it and a
    # quorum reached by two votes at once is never missed.
    status = conn.scalar(
        select(c.status)
        .where(c.id == vote.request_id, c.account_id == vote.account_id)
        .with_for_update()
    )
    if status is None:
        raise NotFoundError(f"approval request {vote.request_id!r} does not exist")
    if ApprovalStatus(status) is not ApprovalStatus.PENDING:
        raise ConflictError(f"approval request {vote.request_id!r} is already {status}")
    conn.execute(insert(t.approval_votes).values(to_values(vote)))
    approvals = int(
        conn.scalar(
            select(func.count())
            .select_from(t.approval_votes)
            .where(
                v.account_id == vote.account_id,
                v.request_id == vote.request_id,
                v.choice == VoteChoice.APPROVE,
            )
        )
        or 0
    )
    new = vote_outcome(vote.choice, approvals, required)
    if new is None:
        return VoteOutcome(approvals=approvals)
    row = conn.execute(
        update(t.approval_requests)
        .where(c.id == vote.request_id, c.account_id == vote.account_id)
        .values(
            status=new,
            decided_at=vote.created_at,
            decided_by=decided_by,
            decided_by_name=vote.approver_name or None,
            decided_via=vote.via or None,
            comment=vote.comment or None,
        )
        .returning(*c)
    ).one()  # the row is locked and pending: the update matches it
    return VoteOutcome(approvals=approvals, decided=to_record(row, ApprovalRequest))
