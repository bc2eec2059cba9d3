"""Preloop's own tool ``get_approval_status``: an async approval's status, and once it is
approved, its call, run exactly once.

    pending ─▶ Waiting("pending") │ approved and running ─▶ Waiting("running")
    denied, expired, cancelled ─▶ Refused │ approved ─▶ attempt, claim, forward ─▶ Forwarded
    polled again ─▶ the stored outcome, replayed (nothing runs twice, nothing is recorded twice)

It runs behind the same checks as every tool (hub/tool_calls/pipeline.py: the key's role).
"""

from __future__ import annotations

import asyncio
import time

from hub.approvals import ApprovalService
from hub.errors import ConfigError, NotFoundError, PreloopError
from hub.keys import Caller
from hub.records import ApprovalStatus
from hub.tool_calls.bookkeeping import Bookkeeping
from hub.tool_calls.holds import Holds
from hub.tool_calls.names import STATUS_TOOL
from hub.tool_calls.outcomes import Outcome, Reason, Refused, Waiting
from hub.tool_calls.records import DATABASE_DOWN, Trail
from hub.tool_calls.runs import Runs, replayed


class ApprovalStatusTool:
    def __init__(
        self, approvals: ApprovalService, holds: Holds, runs: Runs, books: Bookkeeping
    ) -> None:
        self._approvals = approvals
        self._holds = holds
        self._runs = runs
        self._books = books

    async def __call__(self, caller: Caller, approval_id: str) -> Outcome:
        """``get_approval_status``: pending, refused, or (once approved) the call's result,
        run exactly once; later polls replay the stored result."""
        try:
            return await self._approval_status(caller, approval_id)
        except PreloopError as exc:  # raised before the call was forwarded
            return Refused(
                reason=Reason.DATABASE_DOWN,
                message=f"Approval {approval_id} could not be checked: {DATABASE_DOWN} "
                f"({exc.message}). Nothing was run; poll again once it is back.",
                approval_id=approval_id,
                status="refused",
            )

    async def _approval_status(self, caller: Caller, approval_id: str) -> Outcome:
        started = time.perf_counter()
        try:
            approval = await self._approvals.get(caller.account_id, approval_id)
        except NotFoundError:
            approval = None
        if approval is None or approval.principal_key_id != caller.key_id:
            return Refused(
                reason=Reason.NO_APPROVAL, message=f"No approval {approval_id!r} for this key."
            )
        if approval.status is ApprovalStatus.PENDING:
            approval = await self._approvals.expire(caller.account_id, approval_id)
        if approval.status is ApprovalStatus.PENDING:
            return Waiting(approval_id=approval_id, status="pending")
        if approval.result is not None:
            return replayed(approval.result)
        if approval.status is ApprovalStatus.APPROVED and approval.claimed_at is not None:
            return Waiting(approval_id=approval_id, status="running")
        arguments = None
        if approval.status is ApprovalStatus.APPROVED:
            try:
                arguments = await self._holds.arguments(caller, approval_id)
            except ConfigError as exc:  # a sealing key was dropped, or the row altered
                return Refused(
                    reason=Reason.NOT_HELD,
                    message=f"Approval {approval_id} was approved, but its call cannot be "
                    f"opened: {exc.message}. Nothing was run.",
                    approval_id=approval_id,
                )
            if arguments is None:
                return Refused(
                    reason=Reason.NOT_HELD,
                    message=f"Approval {approval_id} was approved, but this server no longer "
                    "holds the call (it restarted). Call the tool again.",
                    approval_id=approval_id,
                )
        trail = Trail(
            server=approval.server,
            tool=approval.tool,
            args=arguments or approval.args,
            approval_id=approval_id,
            via=STATUS_TOOL,
            decision="require_approval",
        )
        try:
            outcome = await self._runs.run_approved(caller, approval, trail, None)
        except asyncio.CancelledError:  # the poll ended; the call may be running: record it
            await self._books.settle(self._runs.finish(caller, trail, trail.outcome, started))
            raise
        if not (isinstance(outcome, Refused) and outcome.reason is Reason.AUDIT_DOWN):
            await self._holds.forget(caller, approval_id)  # a refused call waits for a poll
        await self._runs.finish(caller, trail, outcome, started)
        return outcome
