"""Background polls (hub/trackers/polling.py) over in-memory storage and a scripted tracker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.clock import FrozenClock
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.polling import Poller
from hub.trackers.records import RemoteIssue, Tracker, TrackerKind
from hub.trackers.sync import Syncer
from tests.unit.trackers.scripted_client import ScriptedTracker

T0 = datetime(2026, 12, 1, tzinfo=UTC)


class Clients(ScriptedTracker):
    """Counts scans per tracker; a tracker named in ``broken`` cannot get a client."""

    def __init__(self) -> None:
        super().__init__()
        self.scans: list[str] = []
        self.broken: set[str] = set()

    async def client(self, tracker: Tracker) -> ScriptedTracker:
        if tracker.name in self.broken:
            raise RuntimeError(f"no client for {tracker.name}")
        self.scans.append(tracker.name)
        return self


def tracker(name: str, poll_seconds: int = 300) -> Tracker:
    return Tracker(
        id=f"trk_{name}",
        account_id="acc",
        name=name,
        kind=TrackerKind.GITHUB,
        base_url="https://api.github.com",
        token_ref="env:GH",
        projects=("o/r",),
        poll_seconds=poll_seconds,
        created_at=T0,
        updated_at=T0,
    )


async def setup() -> tuple[InMemoryTrackerStorage, Clients, Poller, FrozenClock]:
    storage = InMemoryTrackerStorage()
    clients = Clients()
    clients.put(
        "o/r",
        RemoteIssue(
            external_id="e1", number="1", title="x", state="open", created_at=T0, updated_at=T0
        ),
    )
    for t in (tracker("a", 60), tracker("b", 600), tracker("manual", 0)):
        await storage.trackers.add(t)
    clock = FrozenClock(T0)
    return storage, clients, Poller(storage, Syncer(storage, clients, clock), clock), clock


async def test_due_trackers_are_polled_then_not_again_until_their_interval_passed() -> None:
    storage, clients, poller, clock = await setup()

    first = await poller.tick()

    assert (2, 2, 2) == (first.due, first.claimed, first.issues)
    assert ["a", "b"] == sorted(clients.scans)  # "manual" (poll_seconds 0) is never polled
    assert (0, 0) == ((await poller.tick()).due, len(clients.scans) - 2)
    clock.advance(60)
    assert 1 == (await poller.tick()).claimed
    assert ["a", "a", "b"] == sorted(clients.scans)
    stored = await storage.trackers.get("acc", "trk_a")
    assert stored is not None
    assert clock.now() + timedelta(seconds=60) == stored.next_poll_at


async def test_a_failing_tracker_is_recorded_on_its_cursor_and_the_others_still_sync() -> None:
    storage, clients, poller, _ = await setup()
    clients.broken = {"a"}

    tick = await poller.tick()

    assert (2, 1) == (tick.claimed, tick.failed)
    assert ["b"] == clients.scans
    cursor = await storage.cursors.get("acc", "trk_a", "o/r")
    assert cursor is not None
    assert "background sync failed: RuntimeError('no client for a')" == cursor.last_error
    assert 1 == await storage.issues.count("acc", "trk_b")


async def test_a_poll_another_replica_claimed_first_is_left_to_it() -> None:
    storage, clients, poller, _ = await setup()
    read_due = storage.trackers.due

    async def due_then_claimed_elsewhere(now: datetime, limit: int = 100) -> list[Tracker]:
        found = list(await read_due(now, limit))
        await storage.trackers.claim_poll("acc", "trk_a", None, now + timedelta(seconds=60))
        return found

    storage.trackers.due = due_then_claimed_elsewhere  # type: ignore[method-assign]  # the race

    tick = await poller.tick()

    assert (2, 1) == (tick.due, tick.claimed)  # read as due, but "a" was claimed elsewhere
    assert ["b"] == clients.scans
