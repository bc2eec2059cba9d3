"""The timers behind tracker sync: background polls (``Poller.tick``) and the webhook inbox
(``InboxProcessor.run_once``), every ``PRELOOP_SERVER_TRACKER_SYNC_SECONDS`` for as long as
the server runs.

Every replica runs both; the store's compare-and-sets make sure each due poll is scanned by
one replica and each delivery processed by one. The inbox loop also wakes at once when the
webhook endpoint calls ``Hub.tracker_inbox.kick()``. A failing round (the database briefly
gone) is logged and the next one tries again. A round that wrote issues kicks the search
indexer (``Hub.indexer.kick()``), so new and edited issues are embedded at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from hub.trackers.inbox import InboxProcessor
from hub.trackers.polling import Poller
from server.hub_services import Hub

log = logging.getLogger("preloop.trackers")


async def run_polls(
    poller: Poller, *, every: float, written: Callable[[], None] | None = None
) -> None:
    """Tick forever (until cancelled); ``written`` is called after a tick that wrote issues
    (the search indexer's ``kick``)."""
    while True:
        try:
            tick = await poller.tick()
        except Exception:  # the loop must outlive one bad tick
            log.exception("tracker poll tick failed; retrying in %ss", every)
        else:
            if tick.issues and written is not None:
                written()
            if tick.claimed:
                log.info(
                    "trackers: %d polled, %d issues written, %d failed",
                    tick.claimed,
                    tick.issues,
                    tick.failed,
                )
        await asyncio.sleep(every)


async def run_inbox(
    inbox: InboxProcessor, *, every: float, written: Callable[[], None] | None = None
) -> None:
    """Process the webhook inbox forever (until cancelled): every ``every`` seconds, and at
    once when kicked; ``written`` is called after a round that processed deliveries."""
    while True:
        try:
            run = await inbox.run_once()
        except Exception:
            log.exception("webhook inbox round failed; retrying in %ss", every)
        else:
            if run.done and written is not None:
                written()
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
    written = hub.indexer.kick if hub.indexer is not None else None  # embed what was synced
    if hub.tracker_poller is not None:
        polls = run_polls(hub.tracker_poller, every=every, written=written)
        tasks.append(asyncio.create_task(polls, name="tracker-polls"))
    if hub.tracker_inbox is not None:
        inbox = run_inbox(hub.tracker_inbox, every=every, written=written)
        tasks.append(asyncio.create_task(inbox, name="tracker-inbox"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
