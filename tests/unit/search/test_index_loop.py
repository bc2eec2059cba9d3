"""The server's loops around the indexer: it runs in the background (server/search_loop.py),
embeds what is stale, and a tracker poll that wrote issues kicks it (server/tracker_loops.py)."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

from hub.clock import FrozenClock
from hub.search.embedders import HashingEmbedder
from hub.search.indexer import Indexer
from hub.trackers.polling import PollTick
from server.search_loop import indexer_running
from server.tracker_loops import run_polls
from tests.unit.search.world import ACCOUNT, T0, issue, storage_with

if TYPE_CHECKING:
    from hub.trackers.polling import Poller
    from server.hub_services import Hub


class OnePoll:
    """A poller whose first tick wrote ``issues`` issues; its second tick (the first one's
    aftermath is done by then) sets ``again``."""

    def __init__(self, issues: int) -> None:
        self.issues = issues
        self.ticks = 0
        self.again = asyncio.Event()

    async def tick(self) -> PollTick:
        self.ticks += 1
        if self.ticks == 1:
            return PollTick(due=1, claimed=1, issues=self.issues)
        self.again.set()
        return PollTick()


async def polled(issues: int) -> bool:
    """Whether ``written`` was called after the loop's first tick."""
    written = asyncio.Event()
    poller = OnePoll(issues)
    task = asyncio.create_task(run_polls(cast("Poller", poller), every=0, written=written.set))
    try:
        async with asyncio.timeout(30):
            await poller.again.wait()
        return written.is_set()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_poll_that_wrote_issues_kicks_the_indexer() -> None:
    assert (True, False) == (await polled(2), await polled(0))


async def test_the_background_indexer_embeds_what_was_written_once_kicked() -> None:
    storage = await storage_with(issue(1, "First"))
    indexer = Indexer(storage, HashingEmbedder(), FrozenClock(T0))
    model = "local:hashing-v1@512"
    hub = cast("Hub", SimpleNamespace(indexer=indexer))

    async def embedded(count: int) -> None:
        """Until ``count`` issues are embedded; bounded (a missed kick waits an hour)."""
        async with asyncio.timeout(10):
            while True:
                if await storage.vectors.count(ACCOUNT, model) >= count:
                    return
                await asyncio.sleep(0.01)

    async with indexer_running(hub, every=3600):
        await embedded(1)  # the first step runs at start
        await storage.issues.upsert(issue(2, "Second"))
        indexer.kick()
        await embedded(2)

    assert 2 == await storage.vectors.count(ACCOUNT, model)
