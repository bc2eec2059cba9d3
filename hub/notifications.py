"""Notification dispatch: approval events become notices on the workflow's channels.

    event bus "approvals"
      ApprovalRequested  ─▶ the workflow's channels + approvers ─▶ Notifier.deliver(notice)
      (escalation events ─▶ the escalation approvers, ``Notice.escalation``)
      ApprovalDecided    ─▶ the workflow's channels                 ─▶ Notifier.settle(request)

The workflow is the one the request was opened under (its policy version), so a later policy
change does not reroute it. A notifier is called only when the workflow lists its channel.
Each call runs in its own task: a slow or failing channel never blocks the bus, the request or
the other channels. Failures are retried with exponential backoff (bounded) and every failed
attempt is audited as ``notification.failed`` (channel, operation, attempt, error). A
notifier never decides: deciding goes through ``ApprovalService.decide`` from the channel's
callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial

from hub.auditing import Auditor
from hub.clock import Clock
from hub.events import ApprovalDecided, ApprovalEscalated, ApprovalRequested, Event, EventBus
from hub.notify import Notice, Notifier
from hub.policy import ApprovalWorkflow
from hub.policy_versions import PolicyService
from hub.ports import Storage
from hub.recipients import resolve_recipients
from hub.records import ApprovalRequest

log = logging.getLogger("preloop.notifications")

APPROVALS_TOPIC = "approvals"
# Events that call for the escalation approvers.
ESCALATION_EVENTS: tuple[type[Event], ...] = (ApprovalEscalated,)
_ERROR_CHARS = 300


class NotificationDispatch:
    """Subscribes to the approval events and calls the registered notifiers."""

    def __init__(
        self,
        *,
        storage: Storage,
        policies: PolicyService,
        auditor: Auditor,
        clock: Clock,
        bus: EventBus,
        notifiers: Sequence[Notifier] = (),
        attempts: int = 4,
        first_delay: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._storage = storage
        self._policies = policies
        self._auditor = auditor
        self._clock = clock
        self._bus = bus
        self._notifiers = list(notifiers)
        self._attempts = max(1, attempts)
        self._first_delay = first_delay
        self._sleep = sleep
        self._tasks: set[asyncio.Task[None]] = set()
        self._delivering: dict[str, asyncio.Task[None]] = {}  # request id -> its deliveries

    @property
    def channels(self) -> list[str]:
        return [n.channel for n in self._notifiers]

    def register(self, notifier: Notifier) -> None:
        self._notifiers.append(notifier)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Dispatch while the block runs (the server's lifespan); subscribed on entry."""
        async with self._bus.subscribe(APPROVALS_TOPIC) as events:
            loop = asyncio.create_task(self._consume(events))
            try:
                yield
            finally:
                loop.cancel()
                for task in (loop, *self._tasks):
                    task.cancel()
                await asyncio.gather(loop, *self._tasks, return_exceptions=True)

    async def _consume(self, events: AsyncIterator[Event]) -> None:
        async for event in events:
            self._spawn(self.handle(event))

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def handle(self, event: Event) -> None:
        """Handle one event and wait for its deliveries (retries included)."""
        try:
            if isinstance(event, ApprovalRequested):
                await self._track(event.request_id, self._notify(event, escalation=False))
            elif isinstance(event, ESCALATION_EVENTS):
                await self._track(_request_id(event), self._notify(event, escalation=True))
            elif isinstance(event, ApprovalDecided):
                await self._settle(event)
        except Exception as exc:  # a broken event must not stop the dispatch
            log.exception("notification dispatch failed for %s", type(event).__name__)
            await self._audit_failure(
                event.account_id, _request_id(event), "", "resolve", self._attempts, exc
            )

    async def _track(self, request_id: str, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._delivering[request_id] = task
        try:
            await task
        finally:
            if self._delivering.get(request_id) is task:
                del self._delivering[request_id]

    async def _notify(self, event: Event, *, escalation: bool) -> None:
        found = await self._request_and_workflow(event)
        if found is None:
            return
        request, workflow = found
        if escalation and workflow.escalation is None:
            return
        approvers = workflow.escalation.approvers if escalation and workflow.escalation else ()
        recipients = await resolve_recipients(
            self._storage,
            request,
            approvers if escalation else request.approvers,
            self._clock.now(),
        )
        notice = Notice(
            request=request,
            recipients=recipients,
            escalation=escalation,
            channel_settings={str(k): dict(v) for k, v in workflow.channel_settings.items()},
        )
        await asyncio.gather(
            *(
                self._with_retries(request, n, "deliver", partial(n.deliver, notice))
                for n in self._for(workflow)
            )
        )

    async def _settle(self, event: ApprovalDecided) -> None:
        earlier = self._delivering.get(event.request_id)
        if earlier is not None:  # update what was sent only once it was sent
            await asyncio.gather(asyncio.shield(earlier), return_exceptions=True)
        found = await self._request_and_workflow(event)
        if found is None:
            return
        request, workflow = found
        await asyncio.gather(
            *(
                self._with_retries(request, n, "settle", partial(n.settle, request))
                for n in self._for(workflow)
            )
        )

    async def _request_and_workflow(
        self, event: Event
    ) -> tuple[ApprovalRequest, ApprovalWorkflow] | None:
        request = await self._storage.approvals.get(event.account_id, _request_id(event))
        if request is None:
            return None
        workflow = await self._policies.workflow(
            request.account_id, request.policy_version, request.workflow
        )
        return None if workflow is None else (request, workflow)

    def _for(self, workflow: ApprovalWorkflow) -> list[Notifier]:
        wanted = {str(c) for c in workflow.channels}
        return [n for n in self._notifiers if n.channel in wanted]

    async def _with_retries(
        self,
        request: ApprovalRequest,
        notifier: Notifier,
        operation: str,
        call: Callable[[], Awaitable[None]],
    ) -> None:
        delay = self._first_delay
        for attempt in range(1, self._attempts + 1):
            try:
                await call()
                return
            except Exception as exc:
                log.warning(
                    "%s %s of %s failed (attempt %d/%d): %s",
                    notifier.channel,
                    operation,
                    request.id,
                    attempt,
                    self._attempts,
                    exc,
                )
                await self._audit_failure(
                    request.account_id, request.id, notifier.channel, operation, attempt, exc
                )
            if attempt < self._attempts:
                await self._sleep(delay)
                delay *= 2

    async def _audit_failure(
        self,
        account_id: str,
        request_id: str,
        channel: str,
        operation: str,
        attempt: int,
        exc: BaseException,
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):  # auditing a failure must not fail the dispatch
            await self._auditor.record(
                account_id,
                "notification.failed",
                "system",
                {
                    "request_id": request_id,
                    "channel": channel,
                    "operation": operation,
                    "attempt": attempt,
                    "attempts": self._attempts,
                    "final": attempt >= self._attempts,
                    "error": error[:_ERROR_CHARS],
                },
            )


def _request_id(event: Event) -> str:
    request_id: str = getattr(event, "request_id", "")
    return request_id
