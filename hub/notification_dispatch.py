"""Notification dispatch: approval events become notices on the workflow's channels.

    event bus "approvals"
      ApprovalRequested  ─▶ the workflow's channels + approvers ─▶ Notifier.deliver(notice)
      (escalation events ─▶ the escalation approvers, ``Notice.escalation``)
      ApprovalDecided    ─▶ the workflow's channels                 ─▶ Notifier.settle(request)

An ``approval_type: ai`` workflow asks its model first (hub/ai_approval.py): its
``ApprovalRequested`` notifies nobody; ``ApprovalAiEscalated`` (the model did not decide and
the fallback is ``escalate``) delivers to its channels and approvers exactly like
``ApprovalRequested`` does for a human workflow.

The workflow is the one the request was opened under (its policy version), so a later policy
change does not reroute it. A notifier is called only when the workflow lists its channel.
Each call runs in its own task: a slow or failing channel never blocks the bus, the request or
the other channels. Failures are retried with exponential backoff (bounded) and every failed
attempt is audited as ``notification.failed`` (channel, operation, attempt, error). A
notifier never decides: deciding goes through ``ApprovalService.decide`` from the channel's
callback.

Once across processes: every replica (and a bot worker) sharing a PostgreSQL database
receives every event, so before calling a notifier the dispatch claims (request, channel,
operation) in ``Storage.notification_claims``, operation being ``deliver``, ``escalate`` or
``settle``. The first claimant carries the operation out, retries included; every other
dispatch leaves it alone. A claimant that dies mid-operation leaves it undone (no takeover:
see docs/decisions/0016-notification-claims.md).

Settling waits for this dispatch's own deliveries of the request. A delivery claimed by
another process may still be posting when the decision arrives; so a delivery re-reads the
request once it is done, and when it was decided meanwhile it settles too (claiming
``settle`` first: when the claim is another's, that settler may have looked before this
post existed, so the channel is settled again: the second update shows the same outcome).

Announcements (``Notifier.announce``) come from the ``system`` topic:

    BudgetCrossed ─▶ the budget's ``approval_workflow`` in the active policy (none: the
      event stays on the WebSocket and in the audit) ─▶ its approvers and channels
      ─▶ claim (budget:<id>:<period>, channel, "announce") ─▶ Notifier.announce

with the same claims, retries and ``notification.failed`` audit as a delivery (the
announcement's key in place of the request id). See docs/decisions/0041-budget-notices.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial

from hub.auditing import Auditor
from hub.clock import Clock
from hub.events import (
    APPROVALS_TOPIC,
    SYSTEM_TOPIC,
    ApprovalAiEscalated,
    ApprovalDecided,
    ApprovalEscalated,
    ApprovalRequested,
    BudgetCrossed,
    Event,
    EventBus,
)
from hub.model_gateway.notices import announcement_key, announcement_of
from hub.notifier import Announcement, Notice, Notifier
from hub.policy import ApprovalWorkflow
from hub.policy.model import ApprovalType
from hub.policy_versions import PolicyService
from hub.ports import Storage
from hub.recipients import resolve_people, resolve_recipients
from hub.records import ApprovalRequest, ApprovalStatus, NotificationClaim, NotificationOperation

log = logging.getLogger("preloop.notifications")

# Events that call for the escalation approvers.
ESCALATION_EVENTS: tuple[type[Event], ...] = (ApprovalEscalated,)
# Events of the ``system`` topic that are announced on the channels.
ANNOUNCED_EVENTS: tuple[type[Event], ...] = (BudgetCrossed,)
_ERROR_CHARS = 300


def new_claimant() -> str:
    """A dispatch's name in the claims it makes: host, process id and a random part (a
    restarted process is a new claimant)."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{secrets.token_hex(4)}"


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
        claimant: str | None = None,
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
        self.claimant = claimant or new_claimant()
        self._tasks: set[asyncio.Task[None]] = set()
        self._delivering: dict[str, asyncio.Task[None]] = {}  # request id -> its deliveries
        # (request id, channel) a delivery settled because the request was decided while it
        # posted; the decision's own event, handled after that delivery, then settles nothing
        self._settled_early: set[tuple[str, str]] = set()

    @property
    def channels(self) -> list[str]:
        return [n.channel for n in self._notifiers]

    def register(self, notifier: Notifier) -> None:
        self._notifiers.append(notifier)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Dispatch while the block runs (the server's lifespan); subscribed on entry."""
        async with (
            self._bus.subscribe(APPROVALS_TOPIC) as events,
            self._bus.subscribe(SYSTEM_TOPIC) as system,
        ):
            loops = (
                asyncio.create_task(self._consume(events)),
                asyncio.create_task(self._consume(system, only=ANNOUNCED_EVENTS)),
            )
            try:
                yield
            finally:
                for task in (*loops, *self._tasks):
                    task.cancel()
                await asyncio.gather(*loops, *self._tasks, return_exceptions=True)

    async def _consume(
        self, events: AsyncIterator[Event], *, only: tuple[type[Event], ...] | None = None
    ) -> None:
        async for event in events:
            if only is None or isinstance(event, only):
                self._spawn(self.handle(event))

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def handle(self, event: Event) -> None:
        """Handle one event and wait for its deliveries (retries included)."""
        try:
            if isinstance(event, ApprovalRequested | ApprovalAiEscalated):
                await self._track(event.request_id, self._notify(event, escalation=False))
            elif isinstance(event, ESCALATION_EVENTS):
                await self._track(_request_id(event), self._notify(event, escalation=True))
            elif isinstance(event, ApprovalDecided):
                await self._settle(event)
            elif isinstance(event, BudgetCrossed):
                await self._announce_budget(event)
        except Exception as exc:  # a broken event must not stop the dispatch
            log.exception("notification dispatch failed for %s", type(event).__name__)
            await self._audit_failure(
                event.account_id, _subject(event), "", "resolve", self._attempts, exc
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
        if isinstance(event, ApprovalRequested) and workflow.approval_type is ApprovalType.AI:
            return  # the model reviews it first; ApprovalAiEscalated brings the people in
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
        operation = NotificationOperation.ESCALATE if escalation else NotificationOperation.DELIVER
        await asyncio.gather(
            *(self._deliver(request, n, operation, notice) for n in self._for(workflow))
        )

    async def _deliver(
        self,
        request: ApprovalRequest,
        notifier: Notifier,
        operation: NotificationOperation,
        notice: Notice,
    ) -> None:
        if not await self._claim(request, notifier.channel, operation):
            return
        await self._with_retries(request, notifier, operation, partial(notifier.deliver, notice))
        current = await self._storage.approvals.get(request.account_id, request.id)
        if current is None or current.status is ApprovalStatus.PENDING:
            return
        # Decided while this was posting: a settler elsewhere may have missed the new post.
        await self._claim(current, notifier.channel, NotificationOperation.SETTLE)
        self._settled_early.add((request.id, notifier.channel))
        await self._with_retries(
            current, notifier, NotificationOperation.SETTLE, partial(notifier.settle, current)
        )

    async def _settle(self, event: ApprovalDecided) -> None:
        earlier = self._delivering.get(event.request_id)
        if earlier is not None:  # update what was sent only once it was sent
            await asyncio.gather(asyncio.shield(earlier), return_exceptions=True)
        found = await self._request_and_workflow(event)
        if found is None:
            return
        request, workflow = found
        await asyncio.gather(*(self._settle_one(request, n) for n in self._for(workflow)))

    async def _settle_one(self, request: ApprovalRequest, notifier: Notifier) -> None:
        settle = NotificationOperation.SETTLE
        if (request.id, notifier.channel) in self._settled_early:
            self._settled_early.discard((request.id, notifier.channel))
            return
        if await self._claim(request, notifier.channel, settle):
            await self._with_retries(request, notifier, settle, partial(notifier.settle, request))

    # --- announcements ---------------------------------------------------------------------
    async def _announce_budget(self, event: BudgetCrossed) -> None:
        """Tell the budget's workflow's approvers, on its channels; a budget without a
        workflow (or deleted meanwhile) is told nowhere else than the WebSocket and audit."""
        budget = await self._storage.budgets.get(event.account_id, event.budget_id)
        if budget is None or not budget.approval_workflow:
            return
        key = announcement_key(event)
        active = await self._policies.active(event.account_id)
        workflow = active[1].workflow(budget.approval_workflow) if active is not None else None
        if workflow is None:
            problem = LookupError(
                f"budget {budget.name!r} names workflow {budget.approval_workflow!r}, which "
                "the active policy does not have: its soft limit was announced nowhere"
            )
            log.warning("%s", problem)
            announce = NotificationOperation.ANNOUNCE
            if await self._claim_key(event.account_id, key, "", announce):  # audited once
                await self._audit_failure(
                    event.account_id, key, "", "resolve", self._attempts, problem
                )
            return
        recipients = await resolve_people(
            self._storage, event.account_id, workflow.approvers, self._clock.now()
        )
        announcement = announcement_of(
            event,
            recipients=recipients,
            channel_settings={str(k): dict(v) for k, v in workflow.channel_settings.items()},
        )
        await asyncio.gather(*(self._announce(announcement, n) for n in self._for(workflow)))

    async def _announce(self, announcement: Announcement, notifier: Notifier) -> None:
        account, key = announcement.account_id, announcement.key
        announce = NotificationOperation.ANNOUNCE
        if await self._claim_key(account, key, notifier.channel, announce):
            await self._retrying(
                account, key, notifier, announce, partial(notifier.announce, announcement)
            )

    # --- claims, retries, failures ------------------------------------------------------
    async def _claim(
        self, request: ApprovalRequest, channel: str, operation: NotificationOperation
    ) -> bool:
        return await self._claim_key(request.account_id, request.id, channel, operation)

    async def _claim_key(
        self, account_id: str, subject: str, channel: str, operation: NotificationOperation
    ) -> bool:
        """Whether this dispatch carries ``operation`` out (it holds the claim). A claim that
        cannot be made (the database is down) is retried like a delivery and audited; when
        it never succeeds, this dispatch does nothing (another may hold the claim).
        ``subject``: the request's id, or an announcement's key."""
        claim = NotificationClaim(
            account_id=account_id,
            request_id=subject,
            channel=channel,
            operation=operation,
            claimed_at=self._clock.now(),
            claimed_by=self.claimant,
        )
        delay = self._first_delay
        for attempt in range(1, self._attempts + 1):
            try:
                won = await self._storage.notification_claims.claim(claim)
                break
            except Exception as exc:  # the same claimant may claim again: retrying is safe
                log.warning("cannot claim %s %s of %s: %s", channel, operation, subject, exc)
                await self._audit_failure(
                    account_id, subject, channel, f"claim {operation}", attempt, exc
                )
            if attempt == self._attempts:
                return False
            await self._sleep(delay)
            delay *= 2
        if not won:
            log.debug("%s %s of %s is another process's", channel, operation, subject)
        return won

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
        await self._retrying(request.account_id, request.id, notifier, operation, call)

    async def _retrying(
        self,
        account_id: str,
        subject: str,
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
                    subject,
                    attempt,
                    self._attempts,
                    exc,
                )
                await self._audit_failure(
                    account_id, subject, notifier.channel, operation, attempt, exc
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
                    "operation": str(operation),
                    "attempt": attempt,
                    "attempts": self._attempts,
                    "final": attempt >= self._attempts,
                    "error": error[:_ERROR_CHARS],
                },
            )


def _request_id(event: Event) -> str:
    request_id: str = getattr(event, "request_id", "")
    return request_id


def _subject(event: Event) -> str:
    """What a failure is about: the request's id, or the announcement's key."""
    return announcement_key(event) if isinstance(event, BudgetCrossed) else _request_id(event)
