"""The timer behind the approval scheduler: ticks :class:`hub.scheduler.ApprovalScheduler`
every ``PRELOOP_SERVER_SCHEDULER_SECONDS`` for as long as the server runs.

Every replica runs one; the store's compare-and-sets make sure each escalation and each expiry
fires once. A failing tick (the database briefly gone) is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from hub.scheduler import ApprovalScheduler

log = logging.getLogger("preloop.scheduler")


async def run_scheduler(scheduler: ApprovalScheduler, *, every: float) -> None:
    """Tick forever (until cancelled)."""
    while True:
        try:
            tick = await scheduler.tick()
        except Exception:  # the loop must outlive one bad tick
            log.exception("approval scheduler tick failed; retrying in %ss", every)
        else:
            if tick.escalated or tick.expired or tick.orphaned:
                log.info(
                    "approvals: %d escalated, %d expired, %d cancelled (their process is gone)",
                    tick.escalated,
                    tick.expired,
                    tick.orphaned,
                )
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def scheduler_running(scheduler: ApprovalScheduler, *, every: float) -> AsyncIterator[None]:
    """Run the scheduler in the background for the duration of the block."""
    task = asyncio.create_task(run_scheduler(scheduler, every=every), name="approval-scheduler")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
