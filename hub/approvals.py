"""The approval state machine and its use cases.

    pending ──▶ approved | denied | expired | cancelled        (nothing leaves those four)
       └─ escalated (once): the escalation approvers join the approvers; still pending

The deadline decides by the workflow's ``on_timeout``: ``deny`` (the default) ends the request
as denied by ``system``, ``expire`` as expired. The scheduler (``expire_due``,
``escalate_due``) ends and escalates requests from the stored state alone, so it survives a
restart and never relies on a waiting agent; each step is a compare-and-set, so with several
replicas exactly one fires.

Every transition is a compare-and-set in the store, so a Slack click and a TUI key press can
never both win. A request is bound to the exact call (principal, server, tool, digest of the
arguments, policy version) and snapshots its workflow's approvers, quorum and deadline when it
is created. Only the workflow's approvers may vote; the principal that made the call never can.
Waiting is event-driven: waiters subscribe to the event bus, nobody polls the store.

Who decided is recorded the same way on every channel (docs/decisions/0054-who-decided.md):
the vote's ``approver``, the request's ``decided_by`` and the audit's actor are the person (a
user id; a key that belongs to no user is its own person), beside the person's name and the
credential the vote came through (``key:<id>``, ``slack:<id>``, ``email:<link id>``,
``device:<id>``…).

Every step is told one way (``_recorded_and_published``, docs/decisions/0077): its audit
record queued, its event published, the record awaited before the actor is answered. A vote
(``decide``) answers a :class:`VoteResult`: the request as the vote left it and its approvals
so far. The channels decide through ``hub.channel_decisions`` (the person behind a Slack,
Mattermost or email identity).

A request of an ``approval_type: ai`` workflow is first reviewed by a model (hub/ai_approval.py)
in a task of its own, started by ``open``: the call waits as for people, and the request's
deadline bounds the review. A confident verdict is a vote that decides (actor ``ai:<model>``,
confidence and reason in the audit); a fallback ``deny``/``approve`` ends it as ``system``;
``escalate`` publishes ``ApprovalAiEscalated``, on which the notification dispatch asks the
workflow's people (it leaves ``ApprovalRequested`` of an ai workflow alone). People with a
deciding role may still decide while the model thinks: whoever comes first wins the
compare-and-set. See docs/decisions/0038-ai-approval.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import msgspec

from hub.ai_approval import AiReviewer, Outcome, Review
from hub.auditing import Auditor
from hub.clock import Clock
from hub.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from hub.events import (
    APPROVALS_TOPIC,
    ApprovalAiEscalated,
    ApprovalDecided,
    ApprovalEscalated,
    ApprovalRequested,
    ApprovalVoted,
    Event,
    EventBus,
)
from hub.identity import KeyOwners
from hub.ids import new_id
from hub.keys import Caller
from hub.policy import ApprovalWorkflow, Decision
from hub.policy.model import ApprovalType, OnTimeout
from hub.ports import Storage
from hub.records import ApprovalRequest, ApprovalStatus, ApprovalVote, Role, VoteChoice
from hub.redact import redact

log = logging.getLogger("preloop.approvals")

DECIDING_ROLES = (Role.ADMIN, Role.APPROVER)
_digest_encoder = msgspec.json.Encoder(order="sorted")
TIMED_OUT = "no decision before the deadline"


def ended_by_deadline(request: ApprovalRequest) -> bool:
    """Whether the request's deadline ended it (``on_timeout``), rather than a decision; an
    AI review's fallback also decides as ``system``, so the actor alone does not tell."""
    return request.decided_by == "system" and (request.comment or "").startswith(TIMED_OUT)


def args_digest(args: dict[str, Any]) -> str:
    """The SHA-256 of the arguments' canonical JSON: what an approval is bound to."""
    return hashlib.sha256(_digest_encoder.encode(args)).hexdigest()


class VoteResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one vote did (``ApprovalService.decide``): the request as it is now, still pending
    while it waits for more approvals, and how many approvals it has, this vote's included.
    A channel answers "2 of 3 so far" from it without reading the votes again."""

    request: ApprovalRequest
    approvals: int


class ApprovalService:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        auditor: Auditor,
        bus: EventBus,
        *,
        reviewer: AiReviewer | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._auditor = auditor
        self._bus = bus
        # The model reviewer of ai workflows; without a gateway every review takes the fallback.
        self.reviewer = reviewer or AiReviewer()
        self._reviews: set[asyncio.Task[None]] = set()
        # The owner of each requester's key, for the self-approval check (read once).
        self._owners = KeyOwners(storage.api_keys, tokens=storage.access_tokens)

    # --- creating -------------------------------------------------------------------------
    async def open(
        self,
        *,
        caller: Caller,
        server: str,
        tool: str,
        args: dict[str, Any],
        justification: str | None,
        decision: Decision,
        policy_version: int,
        workflow: ApprovalWorkflow,
    ) -> ApprovalRequest:
        """A new pending request for this exact call."""
        now = self._clock.now()
        request = ApprovalRequest(
            id=new_id("apr"),
            account_id=caller.account_id,
            principal_key_id=caller.key_id,
            server=server,
            tool=tool,
            args_digest=args_digest(args),
            args=redact(args),
            justification=justification,
            policy_version=policy_version,
            workflow=workflow.name,
            rule=decision.rule,
            reason=decision.rule_description or decision.explanation,
            required_approvals=workflow.required_approvals,
            created_at=now,
            expires_at=now + timedelta(seconds=workflow.timeout_seconds),
            approvers=tuple(workflow.approvers),
            on_timeout=workflow.on_timeout.value,
            escalate_at=(
                now + timedelta(seconds=workflow.escalation.after_seconds)
                if workflow.escalation
                else None
            ),
            escalation_approvers=tuple(workflow.escalation.approvers)
            if workflow.escalation
            else (),
        )
        await self._storage.approvals.add(request)
        await self._record_and_publish(
            "approval.requested",
            caller.key_id,
            {
                "request_id": request.id,
                "server": server,
                "tool": tool,
                "workflow": workflow.name,
                "rule": decision.rule,
                "args": request.args,
                "justification": justification,
            },
            ApprovalRequested(
                account_id=request.account_id,
                at=now,
                request_id=request.id,
                tool=tool,
                server=server,
                workflow=workflow.name,
            ),
        )
        if workflow.approval_type is ApprovalType.AI:
            task = asyncio.create_task(self._review(request, workflow))
            self._reviews.add(task)
            task.add_done_callback(self._reviews.discard)
        return request

    # --- AI review --------------------------------------------------------------------------
    async def _review(self, request: ApprovalRequest, workflow: ApprovalWorkflow) -> None:
        """Run the AI reviewer of an ai workflow's request and act on its outcome. Never raises
        (a background task): a failure is logged and audited, and the request then ends by its
        deadline like any undecided request."""
        try:
            left = self._seconds_left(request)
            try:
                review = await asyncio.wait_for(
                    self.reviewer.review(request, workflow),
                    timeout=None if left == float("inf") else max(left, 0),
                )
            except TimeoutError:
                await self._auditor.record(
                    request.account_id,
                    "approval.ai_reviewed",
                    "system",
                    {
                        "request_id": request.id,
                        "workflow": workflow.name,
                        "outcome": "timeout",
                        "why": "the model did not answer before the request's deadline",
                    },
                )
                return
            await self._auditor.record(
                request.account_id,
                "approval.ai_reviewed",
                review.actor,
                review.audit_details(request.id),
            )
            await self._apply_review(request, review)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("AI review of approval request %s failed", request.id)

    async def _apply_review(self, request: ApprovalRequest, review: Review) -> None:
        try:
            if review.outcome is Outcome.ESCALATE:
                await self._bus.publish(
                    APPROVALS_TOPIC,
                    ApprovalAiEscalated(
                        account_id=request.account_id,
                        at=self._clock.now(),
                        request_id=request.id,
                        workflow=request.workflow,
                        why=review.why,
                    ),
                )
            elif review.by_model:
                await self._ai_vote(request, review)
            else:
                status = (
                    ApprovalStatus.APPROVED
                    if review.outcome is Outcome.APPROVE
                    else ApprovalStatus.DENIED
                )
                await self._finish(request, status, review.actor, review.why)
        except ConflictError as exc:  # a person decided first, or it expired meanwhile
            log.info("AI review of %s not applied: %s", request.id, exc)

    async def _ai_vote(self, request: ApprovalRequest, review: Review) -> None:
        """The model's confident verdict: one vote that decides the request (the model is
        the workflow's reviewer; required_approvals counts people once it escalates)."""
        actor = review.actor
        if actor == request.principal_key_id:  # cannot happen: actors are "ai:<model>"
            raise PermissionDeniedError("the principal that made a call can never decide it")
        approve = review.outcome is Outcome.APPROVE
        choice = VoteChoice.APPROVE if approve else VoteChoice.DENY
        now = self._clock.now()
        outcome = await self._storage.approvals.cast_vote(
            ApprovalVote(
                request_id=request.id,
                account_id=request.account_id,
                approver=actor,
                choice=choice,
                comment=review.why,
                channel="ai",
                created_at=now,
                approver_name=actor,
                via=actor,
            ),
            required=1,
            decided_by=actor,
        )
        verdict = review.verdict
        async with self._recorded_and_published(
            "approval.voted",
            actor,
            {
                "request_id": request.id,
                "choice": choice.value,
                "comment": review.why,
                "channel": "ai",
                "approvals": outcome.approvals,
                "required": 1,
                "approver_name": actor,
                "via": actor,
                "confidence": verdict.confidence if verdict else None,
                "reason": verdict.reason if verdict else None,
            },
            ApprovalVoted(
                account_id=request.account_id,
                at=now,
                request_id=request.id,
                approver=actor,
                choice=choice.value,
                approvals=outcome.approvals,
                required=1,
                approver_name=actor,
                via=actor,
            ),
        ):
            if outcome.decided is not None:
                await self._announce(outcome.decided)

    async def reviews_finished(self) -> None:
        """Wait for the AI reviews running now (tests, and a graceful drain)."""
        await asyncio.gather(*self._reviews, return_exceptions=True)

    async def stop_reviews(self) -> None:
        """Cancel AI reviews still running (shutdown); their requests end by their deadline."""
        for task in list(self._reviews):
            task.cancel()
        await asyncio.gather(*self._reviews, return_exceptions=True)

    # --- reading --------------------------------------------------------------------------
    async def get(self, account_id: str, request_id: str) -> ApprovalRequest:
        found = await self._storage.approvals.get(account_id, request_id)
        if found is None:
            raise NotFoundError(f"no approval request {request_id!r}")
        return found

    async def list(
        self, account_id: str, *, status: ApprovalStatus | None = None, limit: int = 100
    ) -> Sequence[ApprovalRequest]:
        return await self._storage.approvals.list(account_id, status=status, limit=limit)

    async def votes(self, account_id: str, request_id: str) -> Sequence[ApprovalVote]:
        return await self._storage.approvals.votes(account_id, request_id)

    # --- deciding -------------------------------------------------------------------------
    async def decide(
        self,
        account_id: str,
        request_id: str,
        *,
        approver: Caller,
        approve: bool,
        comment: str = "",
        channel: str = "api",
    ) -> VoteResult:
        """Record one approver's vote; a deny decides at once, enough approvals approve.

        The vote, the quorum count and the transition are one store transaction
        (``cast_vote``); the audit records and events follow it, voted before decided. The
        result is the request as the vote left it and its approvals so far."""
        request = await self._pending(account_id, request_id)
        await self._check_may_decide(request, approver)
        person, name = await self._person(account_id, approver)
        via = approver.credential
        now = self._clock.now()
        choice = VoteChoice.APPROVE if approve else VoteChoice.DENY
        try:
            outcome = await self._storage.approvals.cast_vote(
                ApprovalVote(
                    request_id=request.id,
                    account_id=account_id,
                    approver=person,
                    choice=choice,
                    comment=comment,
                    channel=channel,
                    created_at=now,
                    approver_name=name,
                    via=via,
                ),
                required=request.required_approvals,
                decided_by=person,
            )
        except ConflictError as exc:
            current = await self.get(account_id, request.id)
            if current.status is not ApprovalStatus.PENDING:  # somebody else decided first
                raise ConflictError(
                    f"approval request {request.id} was already "
                    f"{current.status.value} by {_decider(current)}"
                ) from exc
            raise ConflictError(f"{name} already voted on {request.id}") from exc
        async with self._recorded_and_published(
            "approval.voted",
            person,
            {
                "request_id": request.id,
                "choice": choice.value,
                "comment": comment,
                "channel": channel,
                "approver_name": name,
                "via": via,
                "approvals": outcome.approvals,
                "required": request.required_approvals,
            },
            ApprovalVoted(
                account_id=account_id,
                at=now,
                request_id=request.id,
                approver=person,
                choice=choice.value,
                approvals=outcome.approvals,
                required=request.required_approvals,
                approver_name=name,
                via=via,
            ),
        ):
            if outcome.decided is not None:
                await self._announce(outcome.decided)
        return VoteResult(request=outcome.decided or request, approvals=outcome.approvals)

    async def cancel(
        self,
        account_id: str,
        request_id: str,
        *,
        actor: str,
        reason: str,
        name: str | None = None,
        via: str | None = None,
    ) -> ApprovalRequest:
        """Withdraw a pending request (the agent went away, the call was abandoned).
        ``name`` and ``via`` say who withdrew it and through what (a key's name and
        ``key:<id>``); they default to ``actor`` (``system``)."""
        request = await self._pending(account_id, request_id)
        return await self._finish(
            request, ApprovalStatus.CANCELLED, actor, reason, name=name, via=via
        )

    # --- consuming ------------------------------------------------------------------------
    async def claim(self, account_id: str, request_id: str) -> ApprovalRequest | None:
        """Mark an approved request used (once): the winner runs the call; ``None`` when it
        was already used or is not approved."""
        return await self._storage.approvals.claim(account_id, request_id, self._clock.now())

    async def store_result(
        self, account_id: str, request_id: str, result: dict[str, Any]
    ) -> ApprovalRequest:
        """Keep the approved call's result, for later polls of an async approval."""
        return await self._storage.approvals.store_result(account_id, request_id, result)

    # --- time -----------------------------------------------------------------------------
    async def expire(self, account_id: str, request_id: str) -> ApprovalRequest:
        """End the request by its ``on_timeout`` if its deadline has passed; returns its
        current state."""
        request = await self.get(account_id, request_id)
        if request.status is ApprovalStatus.PENDING and self._overdue(request):
            done = await self._transition(request, *_timeout_outcome(request))
            return done or await self.get(account_id, request_id)
        return request

    async def expire_due(self, *, limit: int = 100) -> int:
        """End every overdue pending request by its ``on_timeout`` (the scheduler's tick);
        how many this call ended (another replica may have ended some first)."""
        count = 0
        for request in await self._storage.approvals.due(self._clock.now(), limit=limit):
            done = await self._transition(request, *_timeout_outcome(request))
            count += done is not None
        return count

    async def escalate_due(self, *, limit: int = 100) -> int:
        """Escalate every pending request undecided past its ``escalate_at`` (once each): the
        escalation approvers may decide it from now on. How many this call escalated."""
        count = 0
        for request in await self._storage.approvals.escalation_due(self._clock.now(), limit=limit):
            count += await self._escalate(request)
        return count

    async def wait(
        self, account_id: str, request_id: str, *, max_wait: float | None = None
    ) -> ApprovalRequest:
        """Wait until the request is decided, expired or cancelled, or ``max_wait`` seconds
        pass (then it is returned still pending). Reaching the request's own deadline expires
        it. Event-driven: no polling."""
        async with self._bus.subscribe(APPROVALS_TOPIC) as events:
            request = await self.get(account_id, request_id)
            if request.status is not ApprovalStatus.PENDING:
                return request
            deadline = self._seconds_left(request)
            limit = deadline if max_wait is None else min(deadline, max_wait)

            async def decided() -> ApprovalDecided:
                async for event in events:
                    if (
                        isinstance(event, ApprovalDecided)
                        and event.request_id == request_id
                        and event.account_id == account_id
                    ):
                        return event
                raise AssertionError("the event stream never ends")  # pragma: no cover

            try:
                event = await asyncio.wait_for(
                    decided(), timeout=None if limit == float("inf") else max(limit, 0)
                )
            except TimeoutError:
                if max_wait is None or deadline <= max_wait:
                    return await self.expire(account_id, request_id)
                return await self.get(account_id, request_id)
            return _as_decided(request, event)

    # --- internals ------------------------------------------------------------------------
    async def _escalate(self, request: ApprovalRequest) -> bool:
        added = tuple(a for a in request.escalation_approvers if a not in request.approvers)
        # No approvers listed means anyone with a deciding role may decide: adding names
        # would narrow that, so such a request keeps its empty list.
        approvers = (*request.approvers, *added) if request.approvers else ()
        now = self._clock.now()
        done = await self._storage.approvals.escalate(
            request.account_id, request.id, at=now, approvers=approvers
        )
        if done is None:  # decided meanwhile, or another replica escalated it first
            return False
        await self._record_and_publish(
            "approval.escalated",
            "system",
            {
                "request_id": request.id,
                "workflow": request.workflow,
                "added": list(added),
                "approvers": list(approvers),
            },
            ApprovalEscalated(
                account_id=request.account_id,
                at=now,
                request_id=request.id,
                workflow=request.workflow,
                added=added,
            ),
        )
        return True

    async def _pending(self, account_id: str, request_id: str) -> ApprovalRequest:
        request = await self.get(account_id, request_id)
        if request.status is ApprovalStatus.PENDING and self._overdue(request):
            request = await self.expire(account_id, request_id)
        if request.status is not ApprovalStatus.PENDING:
            who = f" by {_decider(request)}" if request.decided_by else ""
            when = f" at {request.decided_at.isoformat()}" if request.decided_at else ""
            raise ConflictError(
                f"approval request {request.id} is already {request.status.value}{who}{when}"
            )
        return request

    def _overdue(self, request: ApprovalRequest) -> bool:
        return request.expires_at is not None and self._clock.now() >= request.expires_at

    def _seconds_left(self, request: ApprovalRequest) -> float:
        if request.expires_at is None:
            return float("inf")
        return (request.expires_at - self._clock.now()).total_seconds()

    async def may_decide(self, request: ApprovalRequest, approver: Caller) -> bool:
        """Whether ``approver`` may vote on ``request`` (the rules ``decide`` applies)."""
        try:
            await self._check_may_decide(request, approver)
        except PermissionDeniedError:
            return False
        return True

    async def check_may_decide(self, request: ApprovalRequest, approver: Caller) -> None:
        """``PermissionDeniedError`` saying why ``approver`` may not vote on ``request``
        (a channel asks before showing a form, e.g. Slack's deny modal)."""
        await self._check_may_decide(request, approver)

    async def _check_may_decide(self, request: ApprovalRequest, approver: Caller) -> None:
        if approver.key_id == request.principal_key_id:
            raise PermissionDeniedError("the principal that made a call can never decide it")
        owner = await self._owners.owner(request.principal_key_id)
        if owner is not None and owner == approver.user_id:
            raise PermissionDeniedError(
                "the user whose key made a call can never decide it, with any of their keys"
            )
        if approver.role not in DECIDING_ROLES:
            raise PermissionDeniedError(
                f"deciding approvals needs the approver or admin role; key {approver.key_id} "
                f"has role {approver.role.value}"
            )
        if request.approvers and not await self._is_listed(request, approver):
            listed = ", ".join(request.approvers)
            raise PermissionDeniedError(
                f"only the approvers of workflow {request.workflow!r} may decide this request "
                f"({listed})"
            )

    async def _person(self, account_id: str, approver: Caller) -> tuple[str, str]:
        """Who a vote is from: the person and their name as it is now. The person is the user
        when the key (or channel identity) belongs to one, else the key: one person holding
        several keys, or deciding through a key and an email link, is one approver towards
        the quorum. The name is the user's name, else email; a key's name."""
        if approver.user_id:
            user = await self._storage.users.get(account_id, approver.user_id)
            name = (user.name or user.email) if user is not None else approver.user_id
            return approver.user_id, name
        return approver.key_id, approver.name or approver.key_id

    async def _is_listed(self, request: ApprovalRequest, approver: Caller) -> bool:
        user = (
            await self._storage.users.get(request.account_id, approver.user_id)
            if approver.user_id
            else None
        )
        for entry in request.approvers:
            kind, _, value = entry.partition(":")
            if kind == "role" and approver.role.value == value:
                return True
            if kind == "user" and user is not None and value.lower() in (user.email, user.id):
                return True
            if kind == "team" and user is not None:
                team = await self._storage.teams.get_by_name(request.account_id, value)
                if team is not None and user.id in team.members:
                    return True
        return False

    async def _finish(
        self,
        request: ApprovalRequest,
        status: ApprovalStatus,
        actor: str,
        comment: str,
        *,
        name: str | None = None,
        via: str | None = None,
    ) -> ApprovalRequest:
        done = await self._transition(request, status, actor, comment, name=name, via=via)
        if done is None:  # somebody else decided first
            current = await self.get(request.account_id, request.id)
            raise ConflictError(
                f"approval request {request.id} was already "
                f"{current.status.value} by {_decider(current)}"
            )
        return done

    async def _transition(
        self,
        request: ApprovalRequest,
        status: ApprovalStatus,
        actor: str,
        comment: str,
        *,
        name: str | None = None,
        via: str | None = None,
    ) -> ApprovalRequest | None:
        if status is ApprovalStatus.PENDING:
            raise ValidationError("a request cannot go back to pending")
        now = self._clock.now()
        done = await self._storage.approvals.transition(
            request.account_id,
            request.id,
            expected=ApprovalStatus.PENDING,
            new=status,
            decided_at=now,
            decided_by=actor,
            comment=comment or None,
            # system and ai:<model> are their own name and credential (decision 0054); who
            # withdrew a call passes theirs
            decided_by_name=name or actor,
            decided_via=via or actor,
        )
        if done is None:
            return None
        await self._announce(done)
        return done

    async def _announce(self, done: ApprovalRequest) -> None:
        """Audit and publish a decision the store has committed. The event does not wait for
        the audit record (the decision is committed already, and the waiting call should wake
        at once); the record is queued first and awaited before returning, so the decider is
        answered only once it is written, and in this process it is queued ahead of anything
        the woken call records."""
        status = done.status
        await self._record_and_publish(
            "approval.decided",
            done.decided_by or "system",
            {
                "request_id": done.id,
                "status": status.value,
                "comment": done.comment or "",
                "tool": done.tool,
                "server": done.server,
                "decided_by_name": done.decided_by_name,
                "via": done.decided_via,
            },
            ApprovalDecided(
                account_id=done.account_id,
                at=done.decided_at or self._clock.now(),
                request_id=done.id,
                status=status.value,
                decided_by=done.decided_by,
                comment=done.comment,
                decided_by_name=done.decided_by_name,
                decided_via=done.decided_via,
            ),
        )

    async def _record_and_publish(
        self, kind: str, actor: str, data: dict[str, Any], event: Event
    ) -> None:
        """Audit ``kind`` and publish ``event`` on the approvals topic (see
        :meth:`_recorded_and_published`)."""
        async with self._recorded_and_published(kind, actor, data, event):
            pass

    @asynccontextmanager
    async def _recorded_and_published(
        self, kind: str, actor: str, data: dict[str, Any], event: Event
    ) -> AsyncIterator[None]:
        """Every step of the state machine is told the same way: its audit record (in the
        event's account) and its event. The record's draft is queued first, ahead of anything
        a task woken by the event records; the event does not wait for the record to be
        written (a waiting call wakes at once), the block runs (a vote announcing the decision
        it made), and the record is awaited on leaving, so the actor is answered only once it
        is written, even when cancelled meanwhile."""
        recorded = asyncio.ensure_future(self._auditor.record(event.account_id, kind, actor, data))
        # Retrieve the outcome even when the awaiting caller was cancelled, so asyncio never
        # reports it as lost.
        recorded.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            await self._bus.publish(APPROVALS_TOPIC, event)
            yield
        finally:
            await asyncio.shield(recorded)  # a cancelled actor still gets it written


def _as_decided(pending: ApprovalRequest, event: ApprovalDecided) -> ApprovalRequest:
    """The request as its decision stored it, without reading it again: a decision changes
    exactly the four fields its event carries (see ``_transition``). The waiter wakes one
    database round trip sooner; whoever acts on an approval still goes through the store's
    compare-and-set (``claim``), so a stale copy can never run a call twice."""
    return msgspec.structs.replace(
        pending,
        status=ApprovalStatus(event.status),
        decided_at=event.at,
        decided_by=event.decided_by,
        decided_by_name=event.decided_by_name,
        decided_via=event.decided_via,
        comment=event.comment,
    )


def _decider(request: ApprovalRequest) -> str | None:
    """Who decided, as people read it: the name recorded with the decision and the person's
    id when they differ (two keys may share a name), else the id."""
    name, person = request.decided_by_name, request.decided_by
    return f"{name} ({person})" if name and name != person else person


def _timeout_outcome(request: ApprovalRequest) -> tuple[ApprovalStatus, str, str]:
    """The status, actor and comment a request ends with when its deadline passes."""
    if request.on_timeout == OnTimeout.EXPIRE:
        return ApprovalStatus.EXPIRED, "system", TIMED_OUT
    return ApprovalStatus.DENIED, "system", f"{TIMED_OUT} (expired, on_timeout: deny)"
