"""Gateway content capture, off the request path (decision 0109).

    request path ─▶ rule_for(who)      the rule that applies (cached per account; a miss reads
                                       the rules once, as the router and price book do)
                 ─▶ capture(pending)   after the ledger record: appends to a bounded queue,
                                       never awaits; a full queue drops and counts (``dropped``)
    writer task  ─▶ lingers ``linger_seconds`` (or until ``batch`` are queued) so a busy
                    gateway pays one transaction per batch, not per request; then for each
                    queued request, yielding to the event loop between them: pull the text
                    out of the wire format, redact, cap, embed (``embedder``, at most
                    ``EMBED_CHARS`` of it, for similarity search); then store the batch in one
                    transaction; every ``purge_seconds`` delete expired interactions
    flush()      ─▶ returns once everything captured before the call is stored
    close()      ─▶ flushes (bounded by ``close_seconds``), then stops the writer

The request path keeps only references to bytes it already holds (the request body, the whole
answer) and, for a stream, the raw chunks up to a cap: the parsing, redaction and embedding
all happen in the writer. A failed write is retried with a doubling delay, like the ledger's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from hub.cache import Recent
from hub.clock import Clock
from hub.errors import NotFoundError
from hub.model_gateway.capture_records import (
    CaptureMode,
    CaptureRule,
    CaptureScope,
    Interaction,
)
from hub.model_gateway.capture_store import CaptureStore
from hub.model_gateway.capture_text import answer_text, cap, request_text, stream_text
from hub.model_gateway.records import Attribution, UsageRecord
from hub.search.embedders import Embedder, Vector

log = logging.getLogger("preloop.gateway.capture")

MAX_RETRY_SECONDS = 60.0
EMBED_CHARS = 4000  # what similarity search reads of a captured text (the cost is linear)


def rule_for(rules: tuple[CaptureRule, ...], who: Attribution) -> CaptureRule | None:
    """The API key's rule, else the flow's, else the account's (decision 0109)."""
    best: CaptureRule | None = None
    rank = 0
    for rule in rules:
        if rule.scope is CaptureScope.API_KEY and rule.subject == who.api_key_id:
            return rule
        if rule.scope is CaptureScope.FLOW and who.flow is not None and rule.subject == who.flow:
            best, rank = rule, 2
        elif rule.scope is CaptureScope.ACCOUNT and rank < 1:
            best, rank = rule, 1
    return best


class StreamTap:
    """A stream's raw bytes as they pass, up to ``limit`` (then ``truncated``)."""

    __slots__ = ("chunks", "limit", "size", "truncated")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.chunks: list[bytes] = []
        self.truncated = False

    def feed(self, chunk: bytes) -> None:
        room = self.limit - self.size
        if room <= 0:
            self.truncated = True
            return
        if len(chunk) > room:
            chunk, self.truncated = chunk[:room], True
        self.chunks.append(chunk)
        self.size += len(chunk)


class Pending:
    """What the request path hands over: the ledger record and the raw bytes."""

    __slots__ = ("answer", "record", "request", "rule", "tap")

    def __init__(
        self,
        record: UsageRecord,
        rule: CaptureRule,
        request: bytes | None,
        answer: bytes | None,
        tap: StreamTap | None,
    ) -> None:
        self.record = record
        self.rule = rule
        self.request = request
        self.answer = answer
        self.tap = tap


def interaction_of(pending: Pending) -> Interaction:
    """The stored form: text pulled out, redacted and capped (in the writer, not per request)."""
    r, rule = pending.record, pending.rule
    request = response = None
    truncated = False
    if rule.mode.keeps_content:
        if pending.request is not None:
            request, cut = cap(request_text(pending.request, rule.mode), rule.max_bytes)
            truncated |= cut
        if pending.tap is not None:
            raw = b"".join(pending.tap.chunks)
            response, cut = cap(stream_text(raw, r.endpoint), rule.max_bytes)
            truncated |= cut or pending.tap.truncated
        elif pending.answer is not None:
            response, cut = cap(answer_text(pending.answer, r.endpoint), rule.max_bytes)
            truncated |= cut
    return Interaction(
        id=r.id,
        account_id=r.account_id,
        principal=r.principal,
        api_key_id=r.api_key_id,
        flow=r.flow,
        execution_id=r.execution_id,
        session_id=r.session_id,
        endpoint=r.endpoint,
        model=r.model,
        provider=r.provider,
        status=r.status,
        outcome=r.outcome,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        cost=r.cost,
        latency_ms=r.latency_ms,
        created_at=r.created_at,
        expires_at=r.created_at + timedelta(days=rule.retention_days),
        mode=rule.mode,
        request=request,
        response=response,
        truncated=truncated,
    )


class GatewayCapture:
    """Decides what to capture and writes it in the background (see the module docstring)."""

    def __init__(
        self,
        store: CaptureStore,
        embedder: Callable[[], Embedder],
        clock: Clock,
        *,
        cache_seconds: float = 2.0,
        batch: int = 200,
        max_queue: int = 10_000,
        retry_seconds: float = 1.0,
        close_seconds: float = 30.0,
        purge_seconds: float = 3600.0,
        linger_seconds: float = 0.25,
    ) -> None:
        self.store = store
        self.embedder = embedder  # read per batch: the hub's search embedder of the moment
        self._clock = clock
        self._rules: Recent[str, tuple[CaptureRule, ...]] = Recent(cache_seconds)
        self._batch = batch
        self._max_queue = max_queue
        self._retry = retry_seconds
        self._close_seconds = close_seconds
        self._purge_seconds = purge_seconds
        self._linger = linger_seconds
        self._closing = False
        self._stopped = False
        self._flushing = 0  # flushes waiting: the writer does not linger for them
        self._pending: list[Pending] = []
        self._queued = 0
        self._done = 0
        self._wake: asyncio.Event | None = None
        self._progress: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # captures refused because the queue was full
        self.failures = 0  # failed write attempts
        self.purged = 0  # interactions deleted by retention

    # --- the request path ----------------------------------------------------------------
    async def rule_for(self, who: Attribution) -> CaptureRule | None:
        """The rule that applies to ``who`` (``None``: capture is off)."""
        rules = await self._rules.load(who.account_id, lambda: self._listed(who.account_id))
        if not rules:
            return None
        rule = rule_for(rules, who)
        return None if rule is None or rule.mode is CaptureMode.OFF else rule

    async def _listed(self, account_id: str) -> tuple[CaptureRule, ...]:
        return tuple(await self.store.rules(account_id))

    def forget(self, account_id: str) -> None:
        """Drop the cached rules after this process changed them."""
        self._rules.drop(account_id)

    def capture(self, pending: Pending) -> bool:
        """Queue one request for capture; never awaits. False (and counted) when the queue
        is full: capture never holds a request back."""
        if len(self._pending) >= self._max_queue:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("gateway capture: queue full, %d captures dropped", self.dropped)
            return False
        self._pending.append(pending)
        self._queued += 1
        self._start()
        assert self._wake is not None
        self._wake.set()
        return True

    # --- the writer ----------------------------------------------------------------------
    @property
    def queued(self) -> int:
        return self._queued - self._done

    async def flush(self) -> None:
        """Wait until everything captured before the call is stored (no lingering)."""
        target = self._queued
        if self._done >= target:
            return
        self._start()
        assert self._progress is not None
        assert self._wake is not None
        self._flushing += 1
        self._wake.set()
        try:
            async with self._progress:
                await self._progress.wait_for(lambda: self._done >= target)
        finally:
            self._flushing -= 1

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[GatewayCapture]:
        self._start()
        try:
            yield self
        finally:
            await self.close()

    async def close(self) -> None:
        self._closing = True  # no more lingering: write what is queued now
        if self._wake is not None:
            self._wake.set()
        try:
            await asyncio.wait_for(self.flush(), timeout=self._close_seconds)
        except TimeoutError:
            log.error("gateway capture: %d captures not written before shutdown", self.queued)
        finally:
            self._stopped = True  # the writer's loop ends even if a cancel is swallowed
            if self._wake is not None:
                self._wake.set()
            task, self._task = self._task, None
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def purge_expired(self) -> int:
        count = await self.store.purge(self._clock.now())
        self.purged += count
        return count

    def _start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._stopped = False
        if self._wake is None:
            self._wake = asyncio.Event()
            self._progress = asyncio.Condition()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="preloop-gateway-capture"
        )
        if self._pending:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        delay = self._retry
        loop = asyncio.get_running_loop()
        next_purge = loop.time()
        while not self._stopped:
            if loop.time() >= next_purge:
                next_purge = loop.time() + self._purge_seconds
                try:
                    await self.purge_expired()
                except Exception as exc:  # retention is retried at the next period
                    log.warning("gateway capture: purging expired interactions failed: %s", exc)
            await self._wait_wake(next_purge - loop.time())
            self._wake.clear()
            if self._pending and self._linger > 0:
                await self._gather()
            while self._pending:
                batch = self._pending[: self._batch]
                try:
                    await self._write(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.failures += 1
                    log.warning(
                        "gateway capture: writing %d captures failed (%s); retrying in %.1f s",
                        len(batch),
                        exc,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_SECONDS)
                    continue
                delay = self._retry
                del self._pending[: len(batch)]
                await self._advance(len(batch))

    async def _wait_wake(self, seconds: float) -> None:
        """Until woken or ``seconds`` pass. ``asyncio.timeout``, not ``wait_for``: on Python
        3.11 ``wait_for`` swallows a cancel that arrives as its awaitable completes (a close
        wakes the writer and cancels it at once), and the writer would sleep on."""
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await self._wake.wait()

    async def _gather(self) -> None:
        """Wait up to ``linger_seconds`` for a batch to fill (a flush or close cuts it short)."""
        assert self._wake is not None
        deadline = asyncio.get_running_loop().time() + self._linger
        while len(self._pending) < self._batch and not self._closing and not self._flushing:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await self._wait_wake(left)
            self._wake.clear()

    async def _write(self, batch: list[Pending]) -> None:
        embedder = self.embedder()
        items: list[tuple[Interaction, Vector | None]] = []
        for pending in batch:  # one at a time, letting requests through in between
            interaction = interaction_of(pending)
            text = interaction.text[:EMBED_CHARS]
            vector = (await embedder.embed([text]))[0] if text else None
            items.append((interaction, vector))
            await asyncio.sleep(0)
        model = str(embedder.identity)
        try:
            await self.store.add_many(items, model=model)
        except NotFoundError:  # an account deleted meanwhile: store the others
            for item in items:
                try:
                    await self.store.add_many([item], model=model)
                except NotFoundError as exc:
                    log.error("gateway capture: interaction %s dropped: %s", item[0].id, exc)

    async def _advance(self, count: int) -> None:
        assert self._progress is not None
        async with self._progress:
            self._done += count
            self._progress.notify_all()
