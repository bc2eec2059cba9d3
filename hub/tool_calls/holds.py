"""Holding a call for approval: open the request, then wait (sync) or answer at once (async).

    require_approval ─▶ open the request ─┬─ async: keep the real arguments (in memory, and
                                          │    sealed in the store when custody can seal,
                                          │    docs/decisions/0048) ─▶ Held
                                          └─ sync: store this process's wait (hub/sync_waits.py)
                                               ─▶ wait for the decision, with progress
                                               heartbeats ─▶ the decided request │ the agent
                                               gone: withdrawn, never run ─▶ Refused(GONE)

An agent that goes away either cancels its call or, when the edge can only tell that the
answer can no longer be delivered, resolves ``gone``. Either way the pending request is
withdrawn, and that runs to its end even under cancellation (hub/tool_calls/bookkeeping.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hub.approvals import ApprovalService
from hub.errors import PreloopError
from hub.held_calls import HeldCalls
from hub.keys import Caller
from hub.policy import ApprovalWorkflow, Decision
from hub.policy.model import ApprovalType
from hub.records import ApprovalRequest, ApprovalStatus
from hub.sync_waits import SyncWaits
from hub.tool_calls.bookkeeping import Bookkeeping
from hub.tool_calls.outcomes import Held, Reason, Refused
from hub.tool_calls.records import DISCONNECTED, Trail

Progress = Callable[[float, float | None, str | None], Awaitable[None]]
Gone = Callable[[], Awaitable[Any]]
"""Resolves once the agent can no longer receive the call's answer (its connection ended)."""

log = logging.getLogger("preloop.tool_calls")


class Holds:
    def __init__(
        self,
        approvals: ApprovalService,
        books: Bookkeeping,
        *,
        heartbeat_seconds: float,
        held_calls: HeldCalls | None,
        sync_waits: SyncWaits | None,
    ) -> None:
        self._approvals = approvals
        self._books = books
        self._heartbeat = heartbeat_seconds
        # Arguments of async approvals waiting to run, by request id. Requests store only the
        # redacted arguments; these are the real ones, checked against the request's digest.
        self._held: dict[str, dict[str, Any]] = {}
        self._held_calls = held_calls
        # Sync waits, stored with this process's id: a process that dies leaves its requests
        # to be cancelled by the scheduler of any process (hub/sync_waits.py).
        self._sync_waits = sync_waits

    async def hold(
        self,
        caller: Caller,
        trail: Trail,
        justification: str | None,
        decision: Decision,
        version: int,
        workflow: ApprovalWorkflow,
        progress: Progress | None,
        gone: Gone | None,
    ) -> Held | Refused | ApprovalRequest:
        """Held (async), the refusal of a call whose agent went away, or the decided
        request (sync) for the pipeline to run or refuse."""
        opened = self._books.spawn(
            self._approvals.open(
                caller=caller,
                server=trail.server,
                tool=trail.tool,
                args=trail.args,
                justification=justification,
                decision=decision,
                policy_version=version,
                workflow=workflow,
            )
        )
        try:
            approval = await asyncio.shield(opened)
            trail.approval_id = approval.id
            if workflow.async_approval:
                self._held[approval.id] = trail.args
                await self._keep(caller, approval.id, trail.args)
                return Held(
                    approval_id=approval.id,
                    workflow=workflow.name,
                    expires_at=approval.expires_at,
                    approver="AI" if workflow.approval_type is ApprovalType.AI else "human",
                )
            try:  # the wait is released on every way out, also while it is being stored
                if self._sync_waits is not None:  # a failure here withdraws the request:
                    await self._sync_waits.hold(caller.account_id, approval.id)  # see below
                decided = await self._wait(caller, approval, progress, gone)
            except PreloopError as exc:  # the call is refused: nobody may approve it now
                reason = f"the call was refused: {exc.message}"
                await self._books.settle(self._withdraw(caller, approval, reason))
                raise
            finally:
                if self._sync_waits is not None:
                    await self._books.settle(
                        self._sync_waits.release(caller.account_id, approval.id)
                    )
        except asyncio.CancelledError:
            # The agent went away: withdraw the request (once it is open) so nobody approves
            # a call that will never run.
            await self._books.settle(self._withdraw_opened(caller, opened))
            raise
        if decided is None:  # the agent went away first; the request was withdrawn
            return Refused(
                reason=Reason.GONE,
                message=f"Not run: {DISCONNECTED} for approval {approval.id}.",
                decision="require_approval",
                approval_id=approval.id,
                status="cancelled",
                error=DISCONNECTED,
            )
        return decided

    async def _wait(
        self,
        caller: Caller,
        approval: ApprovalRequest,
        progress: Progress | None,
        gone: Gone | None,
    ) -> ApprovalRequest | None:
        """The request once it is decided, or ``None`` (the request withdrawn) when ``gone``
        resolves first: even an approval given at that moment never runs the call."""
        if gone is None:
            return await self._decided(caller, approval, progress)
        decided = asyncio.ensure_future(self._decided(caller, approval, progress))
        left = asyncio.ensure_future(gone())
        try:
            await asyncio.wait((decided, left), return_when=asyncio.FIRST_COMPLETED)
        finally:
            left.cancel()
            decided.cancel()
        if not left.done() or left.cancelled():
            return decided.result()
        await self._books.settle(self._withdraw(caller, approval))
        return None

    async def _decided(
        self, caller: Caller, approval: ApprovalRequest, progress: Progress | None
    ) -> ApprovalRequest:
        beats = 0
        while True:
            current = await self._approvals.wait(
                caller.account_id, approval.id, max_wait=self._heartbeat
            )
            if current.status is not ApprovalStatus.PENDING:
                return current
            beats += 1
            if progress is None:
                continue
            try:
                await progress(
                    float(beats),
                    None,
                    f"waiting for approval {approval.id} ({approval.workflow})",
                )
            except Exception:  # a heartbeat is best-effort; it never ends the wait
                log.debug("progress heartbeat for approval %s failed", approval.id, exc_info=True)

    async def _withdraw(
        self, caller: Caller, approval: ApprovalRequest, reason: str = DISCONNECTED
    ) -> None:
        with contextlib.suppress(PreloopError):  # decided meanwhile: nothing to withdraw
            await self._approvals.cancel(
                caller.account_id,
                approval.id,
                actor=caller.key_id,
                reason=reason,
                name=caller.name or caller.key_id,
                via=caller.credential,
            )

    async def _withdraw_opened(self, caller: Caller, opened: Awaitable[ApprovalRequest]) -> None:
        await self._withdraw(caller, await opened)

    # -- the arguments of async approvals ----------------------------------------------------

    async def _keep(self, caller: Caller, approval_id: str, arguments: dict[str, Any]) -> None:
        if self._held_calls is None:
            return
        try:
            await self._held_calls.keep(caller.account_id, approval_id, arguments)
        except PreloopError as exc:  # this process still holds it (until it stops)
            log.error("held call of approval %s not stored: %s", approval_id, exc.message)

    async def arguments(self, caller: Caller, approval_id: str) -> dict[str, Any] | None:
        """The real arguments of an async approval's call; ``None`` when no process kept them
        (``ConfigError`` when they are sealed but cannot be opened)."""
        arguments = self._held.get(approval_id)
        if arguments is None and self._held_calls is not None:
            arguments = await self._held_calls.arguments(caller.account_id, approval_id)
        return arguments

    async def forget(self, caller: Caller, approval_id: str) -> None:
        """Drop the arguments once the call ran or was refused for good."""
        self._held.pop(approval_id, None)
        if self._held_calls is None:
            return
        try:
            await self._held_calls.forget(caller.account_id, approval_id)
        except PreloopError as exc:
            log.warning("held call of approval %s not forgotten: %s", approval_id, exc.message)
