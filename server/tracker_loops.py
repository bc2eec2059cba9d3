"""The timers behind tracker sync: background polls (``Poller.tick``) and the webhook inbox
(``InboxProcessor.run_once``), every ``PRELOOP_SERVER_TRACKER_SYNC_SECONDS`` for as long as
the server runs.

Every replica runs both; the store's compare-and-sets make sure each due poll is scanned by
one replica and each delivery processed by one. The inbox loop also wakes at once when the
webhook endpoint calls ``Hub.tracker_inbox.kick()``. A failing round (the database briefly
gone) is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from hub.trackers.inbox import InboxProcessor
from hub.trackers.polling import Poller
from server.hub_services import Hub

log = logging.getLogger("preloop.trackers")


async def run_polls(poller: Poller, *, every: float) -> None:
    """Tick forever (until cancelled)."""
    while True:
        try:
            tick = await poller.tick()
        except Exception:  # the loop must outlive one bad tick
            log.exception("tracker poll tick failed; retrying in %ss", every)
        else:
            if tick.claimed:
                log.info(
                    "trackers: %d polled, %d issues written, %d failed",
                    tick.claimed,
                    tick.issues,
                    tick.failed,
                )
        await asyncio.sleep(every)


async def run_inbox(inbox: InboxProcessor, *, every: float) -> None:
    """Process the webhook inbox forever (until cancelled): every ``every`` seconds, and at
    once when kicked."""
    while True:
        try:
            run = await inbox.run_once()
        except Exception:
            log.exception("webhook inbox round failed; retrying in %ss", every)
        else:
            if run.claimed:
                log.info(
                    "webhook inbox: %d processed, %d to retry, %d given up",
                    run.done,
                    run.retried,
                    run.failed,
                )
        await inbox.wait(every)


@contextlib.asynccontextmanager
async def trackers_running(hub: Hub, *, every: float) -> AsyncIterator[None]:
    """Run the poll and inbox loops in the background for the duration of the block (nothing
    when the hub holds no tracker storage)."""
    tasks = []
    if hub.tracker_poller is not None:
        tasks.append(
            asyncio.create_task(run_polls(hub.tracker_poller, every=every), name="tracker-polls")
        )
    if hub.tracker_inbox is not None:
        tasks.append(
            asyncio.create_task(run_inbox(hub.tracker_inbox, every=every), name="tracker-inbox")
        )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
