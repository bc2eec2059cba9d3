"""Background polls of connected trackers: what one tick does, free of any timer.

    every tick ─▶ trackers.due(now)                 poll_seconds > 0 and next_poll_at passed
              └▶ for each: trackers.claim_poll(...)  compare-and-set next_poll_at → now + poll
                            └▶ only when claimed: Syncer.scan(tracker)

Every replica ticks; the compare-and-set on ``next_poll_at`` lets exactly one of them claim a
due poll, so each tracker is scanned once per interval however many replicas run. A failure
(the tracker, its token, the database) is kept on the tracker's cursors and logged; the other
trackers of the tick still sync. A scan that outlasts its interval may be claimed again by
another replica: rewriting an issue is harmless (rows are keyed by the tracker's ids). The
timer lives at the edge (``server/tracker_loops.py``).
"""

from __future__ import annotations

import contextlib
import logging

import msgspec

from hub.clock import Clock
from hub.errors import PreloopError
from hub.trackers.ports import TrackerStorage
from hub.trackers.records import Tracker
from hub.trackers.sync import Syncer, next_poll

log = logging.getLogger("preloop.trackers")


class PollTick(msgspec.Struct, frozen=True, kw_only=True):
    """What one tick did in this process."""

    due: int = 0  # trackers found due
    claimed: int = 0  # of them, claimed (and scanned) here
    issues: int = 0  # issues and pull/merge requests written
    failed: int = 0  # scans that failed or reported errors


class Poller:
    def __init__(
        self, storage: TrackerStorage, syncer: Syncer, clock: Clock, *, batch: int = 100
    ) -> None:
        self._storage = storage
        self._syncer = syncer
        self._clock = clock
        self._batch = batch

    async def tick(self) -> PollTick:
        """Scan every due tracker this process claims."""
        now = self._clock.now()
        due = await self._storage.trackers.due(now, limit=self._batch)
        claimed = issues = failed = 0
        for tracker in due:
            won = await self._storage.trackers.claim_poll(
                tracker.account_id, tracker.id, tracker.next_poll_at, next_poll(tracker, now)
            )
            if not won:
                continue  # another replica polls it
            claimed += 1
            written, ok = await self._poll(tracker)
            issues += written
            failed += 0 if ok else 1
        return PollTick(due=len(due), claimed=claimed, issues=issues, failed=failed)

    async def _poll(self, tracker: Tracker) -> tuple[int, bool]:
        try:
            report = await self._syncer.scan(tracker)
        except Exception as exc:  # one tracker's failure must not stop the others
            message = exc.message if isinstance(exc, PreloopError) else repr(exc)
            log.warning("tracker %s: background sync failed: %s", tracker.name, message)
            with contextlib.suppress(Exception):  # the database itself may be what failed
                await self._syncer.note_failure(tracker, f"background sync failed: {message}")
            return 0, False
        for error in report.errors:
            log.warning("tracker %s: %s", tracker.name, error)
        return report.issues, not report.errors
