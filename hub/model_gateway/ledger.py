"""The usage ledger: gateway requests are recorded without waiting for the database.

    request path ─▶ record(r)  (appends to a list, wakes the writer; never awaits)
    writer task  ─▶ everything queued, up to ``batch`` records, in one transaction
                    (group commit, like the audit writer of docs/decisions/0005)
    flush()      ─▶ returns once everything recorded before the call is stored
    running()    ─▶ starts the writer; on exit flushes (bounded by ``close_seconds``)

A failed write is logged and retried with a doubling delay (up to a minute); the records stay
queued meanwhile, in order. A batch refused as a whole because one record cannot be stored is
written record by record: a record already stored (a retry after a commit whose answer was
lost) is skipped, a record whose account is gone is dropped with an error in the log. Nothing
is dropped silently. Records are kept in memory only until they are written: a process killed
with records queued loses them, which ``close`` on shutdown avoids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from hub.errors import ConflictError, NotFoundError
from hub.model_gateway.records import UsageRecord

log = logging.getLogger("preloop.gateway.ledger")

MAX_RETRY_SECONDS = 60.0


class UsageWriter(Protocol):
    async def add_many(self, records: Sequence[UsageRecord]) -> None: ...


class UsageLedger:
    """Implements ``hub.model_gateway.ports.Ledger``."""

    def __init__(
        self,
        store: UsageWriter,
        *,
        batch: int = 500,
        retry_seconds: float = 1.0,
        close_seconds: float = 30.0,
    ) -> None:
        self._store = store
        self._batch = batch
        self._retry = retry_seconds
        self._close_seconds = close_seconds
        self._pending: list[UsageRecord] = []
        self._queued = 0  # records ever recorded
        self._done = 0  # records written (or, when they never can be, dropped and logged)
        self._wake: asyncio.Event | None = None
        self._progress: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None
        self.failures = 0  # failed write attempts, for tests and health

    @property
    def queued(self) -> int:
        """Records recorded but not yet stored."""
        return self._queued - self._done

    def record(self, record: UsageRecord) -> None:
        self._pending.append(record)
        self._queued += 1
        self._start()
        assert self._wake is not None
        self._wake.set()

    async def flush(self) -> None:
        """Wait until everything recorded before this call is stored."""
        target = self._queued
        if self._done >= target:
            return
        self._start()
        assert self._progress is not None
        async with self._progress:
            await self._progress.wait_for(lambda: self._done >= target)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[UsageLedger]:
        self._start()
        try:
            yield self
        finally:
            await self.close()

    async def close(self) -> None:
        """Flush (for at most ``close_seconds``), then stop the writer."""
        try:
            await asyncio.wait_for(self.flush(), timeout=self._close_seconds)
        except TimeoutError:
            log.error(
                "usage ledger: %d records could not be written before shutdown: lost",
                self.queued,
            )
        finally:
            task, self._task = self._task, None
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        if self._wake is None:
            self._wake = asyncio.Event()
            self._progress = asyncio.Condition()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="preloop-usage-ledger"
        )
        if self._pending:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        delay = self._retry
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._batch]
                try:
                    written = await self._write(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.failures += 1
                    log.warning(
                        "usage ledger: writing %d records failed (%s); retrying in %.1f s "
                        "(%d queued)",
                        len(batch),
                        exc,
                        delay,
                        len(self._pending),
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_SECONDS)
                    continue
                delay = self._retry
                del self._pending[:written]
                await self._advance(written)

    async def _write(self, batch: list[UsageRecord]) -> int:
        try:
            await self._store.add_many(batch)
        except (ConflictError, NotFoundError):
            for record in batch:
                try:
                    await self._store.add_many([record])
                except ConflictError:
                    log.info("usage ledger: record %s was already stored", record.id)
                except NotFoundError as exc:
                    log.error("usage ledger: record %s dropped: %s", record.id, exc)
        return len(batch)

    async def _advance(self, count: int) -> None:
        assert self._progress is not None
        async with self._progress:
            self._done += count
            self._progress.notify_all()
