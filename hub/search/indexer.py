"""The background indexer: embeds what is new or changed, off the request path.

    step ─▶ run_once ─▶ vectors.stale(model, batch)   issues with no vector of the embedder's
         │                                            identity, or one of another content hash
         │            ─▶ embedder.embed(texts)        one call per batch (hub/search/text.py)
         │            ─▶ vectors.put(...)             each with the issue's content_hash
         └▶ the delay until the next step: 0 after a full batch (more may wait), the interval
            after a short one, a growing delay (doubling, at most ``MAX_BACKOFF_SECONDS``)
            after a failure

Incremental by content hash: an unchanged issue is never embedded twice; an edited one is
embedded again once. A change of embedder is a new identity: every issue is stale under it
and is embedded again in the background, while searches use the new identity (and say how
many issues are still waiting). The old identity's vectors are kept (docs/decisions/0102).

A failing embedder (the gateway down, a provider refusing) never stops the loop: the error is
logged once per change of message (not once per retry), and the step is retried later.
``kick()`` wakes the loop at once (an issue was just written).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from hub.clock import Clock
from hub.errors import NotFoundError, PreloopError
from hub.search.embedders import Embedder
from hub.search.ports import IssueVectorStore
from hub.search.records import IssueVector
from hub.search.text import issue_text

log = logging.getLogger("preloop.search")

MAX_BACKOFF_SECONDS = 300.0


class IndexStorage(Protocol):
    """What the indexer reads and writes of ``TrackerStorage``: the issue vectors."""

    @property
    def vectors(self) -> IssueVectorStore: ...


class Indexer:
    def __init__(
        self, storage: IndexStorage, embedder: Embedder, clock: Clock, batch: int = 64
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        self._storage = storage
        self.embedder = embedder
        self._clock = clock
        self._batch = batch
        self._kicked = asyncio.Event()
        self._failures = 0  # consecutive failed steps
        self._last_error: str | None = None

    @property
    def model(self) -> str:
        return str(self.embedder.identity)

    @property
    def failing(self) -> str | None:
        """The last step's error, while steps fail (``None`` once one succeeds)."""
        return self._last_error

    async def run_once(self) -> int:
        """Embed one batch of stale issues (every account's); answers how many were
        embedded. Raises what the embedder or the store raised."""
        vectors, model = self._storage.vectors, self.model
        stale = await vectors.stale(model, self._batch)
        if not stale:
            return 0
        embedded = await self.embedder.embed([issue_text(i) for i in stale])
        if len(embedded) != len(stale):
            raise RuntimeError(
                f"embedder {model} answered {len(embedded)} vectors for {len(stale)} texts"
            )
        now = self._clock.now()
        written = 0
        for issue, vector in zip(stale, embedded, strict=True):
            try:
                await vectors.put(
                    IssueVector(
                        account_id=issue.account_id,
                        issue_id=issue.id,
                        model=model,
                        content_hash=issue.content_hash,
                        vector=tuple(vector),
                        embedded_at=now,
                    )
                )
            except NotFoundError:  # removed with its tracker meanwhile: nothing to index
                continue
            written += 1
        return written

    async def step(self, every: float) -> float:
        """One ``run_once`` that never raises: answers how long to wait before the next
        (``every`` after a short batch; 0 after a full one; a growing delay after a failure,
        logged when its message differs from the last one's)."""
        try:
            embedded = await self.run_once()
        except Exception as exc:  # the loop outlives any failure, and retries it later
            self._failures += 1
            message = exc.message if isinstance(exc, PreloopError) else repr(exc)
            delay: float = min(MAX_BACKOFF_SECONDS, max(every, 1.0) * 2.0 ** (self._failures - 1))
            if message != self._last_error:
                log.warning(
                    "search indexer (%s): %s; retrying, next in %.0fs", self.model, message, delay
                )
                self._last_error = message
            return delay
        if self._last_error is not None:
            log.info("search indexer (%s): embedding again after a failure", self.model)
        self._failures, self._last_error = 0, None
        if embedded:
            log.debug("search indexer (%s): %d issues embedded", self.model, embedded)
        return 0.0 if embedded >= self._batch else every

    def kick(self) -> None:
        """Wake the loop waiting in :meth:`wait` (issues were just written)."""
        self._kicked.set()

    async def wait(self, seconds: float) -> None:
        """Until :meth:`kick` is called or ``seconds`` pass."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kicked.wait(), timeout=seconds)
        self._kicked.clear()

    async def run(self, every: float) -> None:
        """Step and wait forever (until cancelled)."""
        while True:
            await self.wait(await self.step(every))
