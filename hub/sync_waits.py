"""Calls waiting for a synchronous approval, and what happens to them when their process dies.

A synchronous call waits inside one server process. When that process dies (a crash, a kill,
a host gone), its request would stay pending and could be approved, though nothing would ever
run it. So each wait is stored with the id of the process holding it, and every process
renews a lease while it runs:

    call held (sync) ─▶ SyncWaits.hold: (request, this instance) stored
    every scheduler tick ─▶ renew this instance's lease (at most every lease/3)
                       └─▶ sweep: waits of pending requests whose instance's lease ran out
                             ─▶ request cancelled (compare-and-set: one replica wins), reason
                                CRASHED; the usual decided event updates every channel
                             ─▶ the cut-off call's `tool.call` record (status cancelled)
    decision or withdrawal ─▶ SyncWaits.release

The first tick runs at start, so a restarted server cancels what its predecessor left once
that lease has run out (docs/decisions/0049).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.clock import Clock
from hub.errors import ConflictError, PreloopError
from hub.ports import SyncWaitStore
from hub.records import ApprovalStatus, SyncWait

CRASHED = "the Preloop process holding the call stopped; it will never run"
SYSTEM = "system"
log = logging.getLogger("preloop.sync_waits")


class SyncWaits:
    def __init__(
        self,
        store: SyncWaitStore,
        approvals: ApprovalService,
        auditor: Auditor,
        clock: Clock,
        *,
        instance_id: str,
        lease_seconds: float = 30.0,
    ) -> None:
        self._store = store
        self._approvals = approvals
        self._auditor = auditor
        self._clock = clock
        self.instance_id = instance_id
        self._lease = timedelta(seconds=lease_seconds)
        self._renewed: datetime | None = None

    async def hold(self, account_id: str, request_id: str) -> None:
        await self.renew()  # a lease exists before the first wait depends on it
        await self._store.add(
            SyncWait(
                account_id=account_id,
                request_id=request_id,
                instance_id=self.instance_id,
                created_at=self._clock.now(),
            )
        )

    async def release(self, account_id: str, request_id: str) -> None:
        try:
            await self._store.remove(account_id, request_id)
        except PreloopError as exc:  # the request is decided: a leftover wait is harmless
            log.warning("wait of approval %s not released: %s", request_id, exc.message)

    async def renew(self) -> None:
        """Renew this process's lease, unless it was renewed within a third of it."""
        now = self._clock.now()
        if self._renewed is None or now - self._renewed >= self._lease / 3:
            await self._store.renew(self.instance_id, now)
            self._renewed = now

    async def sweep(self, *, limit: int = 100) -> int:
        """Cancel the requests of waits whose process is gone; how many this call cancelled
        (another replica may win some)."""
        await self.renew()
        cancelled = 0
        for wait in await self._store.orphaned(self._clock.now() - self._lease, limit=limit):
            cancelled += await self._cancel(wait)
        return cancelled

    async def _cancel(self, wait: SyncWait) -> bool:
        """End one orphaned wait: removing it is the claim (of several replicas sweeping, one
        wins); a pending request is cancelled, and the cut-off call gets its record (also when
        the request was decided after its process died: nothing ran it). A claimed request's
        call was run by its process, which recorded it: its wait was only left unreleased."""
        if not await self._store.remove(wait.account_id, wait.request_id):
            return False
        request = await self._approvals.get(wait.account_id, wait.request_id)
        if request.claimed_at is not None:  # its process ran it (a wait left unreleased)
            return False
        cancelled = False
        if request.status is ApprovalStatus.PENDING:
            try:
                request = await self._approvals.cancel(
                    wait.account_id, wait.request_id, actor=SYSTEM, reason=CRASHED
                )
                cancelled = True
            except ConflictError:  # decided this instant: record what it became
                request = await self._approvals.get(wait.account_id, wait.request_id)
        await self._auditor.record(
            request.account_id,
            "tool.call",
            request.principal_key_id,
            {
                "server": request.server,
                "tool": request.tool,
                "args": request.args,
                "justification": request.justification,
                "decision": "require_approval",
                "rule": request.rule,
                "policy_version": request.policy_version,
                "approval_id": request.id,
                "approval_status": request.status.value,
                "decided_by": request.decided_by,
                "decided_by_name": request.decided_by_name,
                "decided_via": request.decided_via,
                "status": "cancelled",
                "error": CRASHED,
                "instance": wait.instance_id,
            },
        )
        return cancelled
