"""The approval scheduler's work: what one tick does, free of any timer.

    every tick ─▶ ApprovalService.escalate_due   undecided past escalation.after_seconds:
              │                                  escalation approvers join, once
              ├▶ ApprovalService.expire_due      past the deadline: denied or expired
              │                                  (the workflow's on_timeout)
              └▶ SyncWaits.sweep (first)         renew this process's lease; cancel sync
                                                 requests whose process is gone

The state lives in the store, not here: a restarted server picks up where it stopped, and a
request is expired whether or not an agent still waits for it. Each step is a compare-and-set,
so several replicas ticking at once fire each event exactly once. The timer that calls
:meth:`ApprovalScheduler.tick` lives at the edge (``server/scheduler.py``).
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from hub.approvals import ApprovalService
from hub.sync_waits import SyncWaits


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    """What one tick did in this process."""

    escalated: int = 0
    expired: int = 0
    orphaned: int = 0  # sync requests cancelled because their process is gone


class ApprovalScheduler:
    def __init__(
        self, approvals: ApprovalService, *, batch: int = 100, sync_waits: SyncWaits | None = None
    ) -> None:
        self._approvals = approvals
        self._batch = batch
        self._sync_waits = sync_waits

    async def tick(self) -> Tick:
        """Escalate, then end, everything due now (escalation first: a request whose
        escalation and deadline both passed is still escalated and recorded as such)."""
        orphaned = 0
        if self._sync_waits is not None:  # renews this process's lease, too
            orphaned = await self._drain(self._sync_waits.sweep)
        escalated = await self._drain(self._approvals.escalate_due)
        expired = await self._drain(self._approvals.expire_due)
        return Tick(escalated=escalated, expired=expired, orphaned=orphaned)

    async def _drain(self, step: _Step) -> int:
        total = 0
        while True:
            done = await step(limit=self._batch)
            total += done
            if done < self._batch:  # a short batch: nothing more is due
                return total


class _Step(Protocol):
    async def __call__(self, *, limit: int) -> int: ...
