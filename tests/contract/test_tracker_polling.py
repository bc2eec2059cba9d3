"""SQL only: replicas polling the same database sync each due tracker exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from hub.clock import FrozenClock
from hub.trackers.polling import Poller
from hub.trackers.records import RemoteIssue, Tracker, TrackerKind
from hub.trackers.sync import Syncer
from server.db import SqlStorage, make_engine
from server.db.stores.trackers import SqlTrackerStorage
from tests.unit.trackers.scripted_client import ScriptedTracker

from .records import new_account

T0 = datetime(2026, 12, 1, tzinfo=UTC)


class Counting(ScriptedTracker):
    def __init__(self) -> None:
        super().__init__(page_size=1)
        self.scans: list[str] = []

    async def client(self, tracker: Tracker) -> ScriptedTracker:
        self.scans.append(tracker.name)
        await asyncio.sleep(0)  # let the other replica run in between
        return self


async def test_two_replicas_ticking_together_sync_each_due_tracker_once(sql_url: str) -> None:
    replicas = [SqlStorage(make_engine(sql_url)) for _ in range(2)]
    try:
        account = await new_account(replicas[0], "acme")
        stores = [SqlTrackerStorage.beside(r) for r in replicas]
        names = [f"t{n}" for n in range(6)]
        for name in names:
            await stores[0].trackers.add(
                Tracker(
                    id=f"trk_{name}",
                    account_id=account,
                    name=name,
                    kind=TrackerKind.GITHUB,
                    base_url="https://api.github.com",
                    token_ref="env:GH",
                    projects=("o/r",),
                    poll_seconds=60,
                    created_at=T0,
                    updated_at=T0,
                )
            )
        client = Counting()
        for n in range(3):
            client.put(
                "o/r",
                RemoteIssue(
                    external_id=f"e{n}",
                    number=str(n),
                    title="x",
                    state="open",
                    created_at=T0,
                    updated_at=T0,
                ),
            )
        clock = FrozenClock(T0)
        pollers = [Poller(s, Syncer(s, client, clock), clock) for s in stores]

        ticks = await asyncio.gather(*(p.tick() for p in pollers * 2))

        assert sorted(names) == sorted(client.scans)  # each once, across both replicas
        assert 6 == sum(t.claimed for t in ticks)
        for name in names:
            assert 3 == await stores[1].issues.count(account, f"trk_{name}")
    finally:
        for replica in replicas:
            await replica.close()
