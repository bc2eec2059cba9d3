"""One tool call, start to end: the use case every tool call goes through.

    call(caller, name, arguments)
      ─▶ the key's role runs nothing ───────────────────────────────▶ Refused (recorded)
      ─▶ get_approval_status (Preloop's own tool) ─▶ approval_status, below
      ─▶ outside the key's tool allow-list (hub/allowlist.py) ───────▶ Refused (recorded)
      ─▶ the name resolved to (server, tool); none ─────────────────▶ Refused
      ─▶ the tool's definition changed since it was pinned ──────────▶ Refused (recorded)
      ─▶ strip ``justification`` ─▶ policy decision ─┬─ deny / no policy ─▶ Refused
                                                     ├─ allow ─▶ attempt recorded ─▶ forward
                                                     └─ require_approval (hub/tool_calls/
                                                        holds.py) ─┬─ async ─▶ Held
                                                                   └─ sync ─▶ decided:
                                                        approved ─▶ attempt, claim once,
                                                        forward │ else ─▶ Refused
      every call that reached the policy ─▶ one ``tool.call`` record, written before the
      outcome is returned (hub/tool_calls/records.py, bookkeeping.py)

    approval_status(caller, approval_id): pending or running ─▶ Waiting │ refused ─▶ Refused
      │ approved ─▶ attempt, claim once, forward ─▶ Forwarded (stored: later polls replay it)

Outcomes are values (hub/tool_calls/outcomes.py); the edge that answers the agent renders
them (server/mcp/_answers.py). Nothing runs that cannot be recorded (docs/decisions/0047).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from hub.allowlist import key_allows
from hub.approvals import ApprovalService, args_digest
from hub.auditing import Auditor
from hub.clock import Clock
from hub.errors import ConfigError, NotFoundError, PreloopError
from hub.held_calls import HeldCalls
from hub.keys import ACTING_ROLES, Caller
from hub.policy import Action, CallContext, Principal, ToolCall
from hub.policy_versions import PolicyService
from hub.records import ApprovalRequest, ApprovalStatus
from hub.sync_waits import SyncWaits
from hub.tool_calls.bookkeeping import Bookkeeping
from hub.tool_calls.holds import Gone, Holds, Progress
from hub.tool_calls.names import (
    JUSTIFICATION_ARG,
    KEY_ALLOW_LIST_RULE,
    KEY_ROLE_RULE,
    PINNING_RULE,
    STATUS_TOOL,
    role_refusal,
    split_name,
)
from hub.tool_calls.outcomes import Failed, Forwarded, Held, Outcome, Reason, Refused, Waiting
from hub.tool_calls.records import DATABASE_DOWN, Trail, call_record, refusal_record
from hub.tool_results import ToolResult

FAILED_KEY = "ai.preloop/failed"  # a stored result: the upstream failed the approved call

log = logging.getLogger("preloop.tool_calls")


class Upstream(Protocol):
    """Where allowed calls go (server/mcp's pool implements it)."""

    async def forward(
        self, server: str, tool: str, arguments: dict[str, Any], *, progress: Progress | None = None
    ) -> ToolResult: ...


class ServerNames(Protocol):
    """The upstream servers an account's agents can reach (hub/mcp_servers.py)."""

    async def names(self, account_id: str) -> list[str]: ...


class Pins(Protocol):
    """Tool pinning (hub/catalog.py): whether a tool's served definition awaits acceptance."""

    async def blocked(self, account_id: str, server: str, tool: str) -> bool: ...


class ToolCalls:
    def __init__(
        self,
        *,
        clock: Clock,
        auditor: Auditor,
        policies: PolicyService,
        approvals: ApprovalService,
        upstream: Upstream,
        servers: ServerNames,
        pins: Pins,
        heartbeat_seconds: float = 10.0,
        held_calls: HeldCalls | None = None,
        sync_waits: SyncWaits | None = None,
    ) -> None:
        self._clock = clock
        self._policies = policies
        self._approvals = approvals
        self._upstream = upstream
        self._servers = servers
        self._pins = pins
        self._books = Bookkeeping(auditor)
        self._holds = Holds(
            approvals,
            self._books,
            heartbeat_seconds=heartbeat_seconds,
            held_calls=held_calls,
            sync_waits=sync_waits,
        )

    async def drain(self) -> None:
        """Wait for bookkeeping that outlived its call (see hub/tool_calls/bookkeeping.py)."""
        await self._books.drain()

    async def call(
        self,
        caller: Caller,
        name: str,
        arguments: dict[str, Any],
        *,
        session: str = "",
        progress: Progress | None = None,
        gone: Gone | None = None,
    ) -> Outcome:
        """One tool call by ``caller`` of the tool agents know as ``name``."""
        if not caller.has(*ACTING_ROLES):  # before anything runs, get_approval_status too
            message = role_refusal(caller, "call tools")
            return await self._refuse(caller, name, arguments, session, KEY_ROLE_RULE, message)
        if name == STATUS_TOOL:
            approval_id = arguments.get("approval_id")
            if not isinstance(approval_id, str) or not approval_id:
                return Refused(
                    reason=Reason.BAD_ARGUMENTS,
                    message="get_approval_status needs an approval_id (a string).",
                )
            return await self.approval_status(caller, approval_id)
        if not key_allows(caller, name):
            # The same answer whether or not the tool exists: it reveals no hidden tool.
            message = (
                f"Refused by Preloop: this API key may not use the tool {name!r} (it is not "
                "in the key's tool allow-list)."
            )
            return await self._refuse(
                caller, name, arguments, session, KEY_ALLOW_LIST_RULE, message
            )
        target = split_name(name, await self._servers.names(caller.account_id))
        if target is None:
            return Refused(
                reason=Reason.UNKNOWN_TOOL,
                message=f"Unknown tool {name!r}: Preloop names tools <server>__<tool>; "
                "list the tools to see them.",
            )
        server, tool = target
        if await self._pins.blocked(caller.account_id, server, tool):
            refused = Refused(
                reason=Reason.PINNED,
                message=(
                    f"Refused by Preloop: the definition of tool {tool!r} on server "
                    f"{server!r} changed since it was approved. An administrator must review "
                    f"it and run 'preloop servers accept {server} {tool}'."
                ),
                decision="deny",
                rule=PINNING_RULE,
            )
            record = refusal_record(server, tool, _stripped(arguments), session, refused)
            await self._books.finish(caller, record)
            return refused
        return await self._decide(caller, server, tool, arguments, session, progress, gone)

    async def _refuse(
        self,
        caller: Caller,
        name: str,
        arguments: dict[str, Any],
        session: str,
        rule: str,
        message: str,
    ) -> Refused:
        """Refuse (and record) a call before the policy sees it: the key's role or its tool
        allow-list does not let it through. When the record cannot be written the refusal
        still goes to the agent: nothing ran."""
        reason = Reason.ROLE if rule == KEY_ROLE_RULE else Reason.ALLOW_LIST
        refused = Refused(reason=reason, message=message, decision="deny", rule=rule)
        try:
            target = split_name(name, await self._servers.names(caller.account_id))
        except PreloopError:  # the database failed: the record names the tool as called
            target = None
        server, tool = target if target is not None else ("", name)
        record = refusal_record(server, tool, _stripped(arguments), session, refused)
        await self._books.finish(caller, record)
        return refused

    # -- the policy, approvals, forwarding -----------------------------------------------------

    async def _decide(
        self,
        caller: Caller,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        session: str,
        progress: Progress | None,
        gone: Gone | None,
    ) -> Outcome:
        started = time.perf_counter()
        args = dict(arguments)
        justification = args.pop(JUSTIFICATION_ARG, None)
        if justification is not None and not isinstance(justification, str):
            justification = str(justification)
        trail = Trail(
            server=server, tool=tool, args=args, justification=justification, session=session
        )
        try:
            outcome = await self._by_policy(caller, trail, justification, progress, gone)
        except asyncio.CancelledError:
            await self._books.settle(self._finish(caller, trail, trail.outcome, started))
            raise
        except PreloopError as exc:  # raised before anything was forwarded (a store's refusal
            # of a value, NUL text on PostgreSQL, too: never an internal error, never unrecorded)
            outcome = Refused(
                reason=Reason.DATABASE_DOWN,
                message=f"Not run: {DATABASE_DOWN} ({exc.message}). Nothing was forwarded to "
                f"{server!r}; call again once it is back.",
                status="refused",
                error=f"{DATABASE_DOWN}: {exc.message}",
            )
        await self._finish(caller, trail, outcome, started)
        return outcome

    async def _by_policy(
        self,
        caller: Caller,
        trail: Trail,
        justification: str | None,
        progress: Progress | None,
        gone: Gone | None,
    ) -> Outcome:
        active = await self._policies.active(caller.account_id)
        if active is None:
            trail.decision, trail.rule = "deny", "no-policy"
            return Refused(
                reason=Reason.NO_POLICY,
                message="Denied by Preloop: no policy has been applied yet.",
                decision="deny",
                rule="no-policy",
            )
        version, policy = active
        decision = policy.decide(
            ToolCall(
                tool=trail.tool,
                server=trail.server,
                args=trail.args,
                principal=_principal(caller),
                context=CallContext(
                    time=self._clock.now(),
                    session=trail.session if isinstance(trail.session, str) else "",
                ),
                justification=justification,
            )
        )
        trail.decision, trail.rule = decision.action.value, decision.rule
        trail.why, trail.policy_version = decision.explanation, version.version
        if decision.error:
            trail.evaluation_error = decision.error
        if decision.action is Action.ALLOW:
            refused = await self._books.attempt(caller, trail)
            return refused if refused is not None else await self._forward(trail, progress)
        if decision.action is Action.DENY:
            return Refused(
                reason=Reason.POLICY_DENY,
                message=f"Denied by Preloop policy (rule {decision.rule}): "
                f"{decision.message or decision.explanation}",
                decision="deny",
                rule=decision.rule,
            )
        workflow = policy.workflow(decision.workflow or "")
        if workflow is None:  # the loader refuses such policies; never run the call anyway
            return Refused(
                reason=Reason.NO_WORKFLOW,
                message=f"Denied by Preloop: workflow {decision.workflow!r} is missing.",
                decision="deny",
                rule=decision.rule,
            )
        held = await self._holds.hold(
            caller, trail, justification, decision, version.version, workflow, progress, gone
        )
        if isinstance(held, Held | Refused):
            return held
        return await self._run_approved(caller, held, trail, progress)

    async def _run_approved(
        self,
        caller: Caller,
        decided: ApprovalRequest,
        trail: Trail,
        progress: Progress | None,
    ) -> Outcome:
        trail.approval_status = decided.status.value
        trail.decided_by, trail.decided_by_name = decided.decided_by, decided.decided_by_name
        trail.decided_via = decided.decided_via
        if decided.status is not ApprovalStatus.APPROVED:
            why = f": {decided.comment}" if decided.comment else ""
            who = decided.decided_by_name or decided.decided_by
            return Refused(
                reason=Reason.NOT_APPROVED,
                message=f"Not run: approval {decided.id} was {decided.status.value}"
                f"{' by ' + who if who else ''}{why}.",
                decision="require_approval",
                approval_id=decided.id,
                status=decided.status.value,
            )
        if args_digest(trail.args) != decided.args_digest:  # never run a different call
            return Refused(
                reason=Reason.ARGS_DIFFER,
                message="Not run: the arguments differ from the approved call.",
                approval_id=decided.id,
            )
        # The attempt is recorded before the claim: a call whose record cannot be written
        # is refused with its approval still unused, so a later poll can run it.
        refused = await self._books.attempt(caller, trail)
        if refused is not None:
            return refused
        if await self._approvals.claim(decided.account_id, decided.id) is None:
            return Refused(
                reason=Reason.ALREADY_USED,
                message=f"Not run: approval {decided.id} was already used.",
                approval_id=decided.id,
            )
        outcome = await self._forward(trail, progress)
        try:
            await self._approvals.store_result(decided.account_id, decided.id, _stored(outcome))
        except PreloopError as exc:  # the call ran: its answer still goes to the agent
            log.error("result of approval %s not stored: %s", decided.id, exc.message)
        return outcome

    async def _forward(self, trail: Trail, progress: Progress | None) -> Forwarded | Failed:
        outcome: Forwarded | Failed
        try:
            result = await self._upstream.forward(
                trail.server, trail.tool, trail.args, progress=progress
            )
        except PreloopError as exc:
            outcome = Failed(server=trail.server, error=exc.message)
        else:
            outcome = Forwarded(result=result)
        trail.outcome = outcome  # a cancellation from here on records what ran
        return outcome

    async def _finish(
        self, caller: Caller, trail: Trail, outcome: Outcome | None, started: float
    ) -> None:
        duration = round((time.perf_counter() - started) * 1000, 3)
        await self._books.finish(caller, call_record(trail, outcome, duration))

    # -- the built-in get_approval_status -------------------------------------------------------

    async def approval_status(self, caller: Caller, approval_id: str) -> Outcome:
        """``get_approval_status``: pending, refused, or (once approved) the call's result,
        run exactly once; later polls replay the stored result."""
        try:
            return await self._approval_status(caller, approval_id)
        except PreloopError as exc:  # raised before the call was forwarded
            return Refused(
                reason=Reason.DATABASE_DOWN,
                message=f"Approval {approval_id} could not be checked: {DATABASE_DOWN} "
                f"({exc.message}). Nothing was run; poll again once it is back.",
                approval_id=approval_id,
                status="refused",
            )

    async def _approval_status(self, caller: Caller, approval_id: str) -> Outcome:
        started = time.perf_counter()
        try:
            approval = await self._approvals.get(caller.account_id, approval_id)
        except NotFoundError:
            approval = None
        if approval is None or approval.principal_key_id != caller.key_id:
            return Refused(
                reason=Reason.NO_APPROVAL, message=f"No approval {approval_id!r} for this key."
            )
        if approval.status is ApprovalStatus.PENDING:
            approval = await self._approvals.expire(caller.account_id, approval_id)
        if approval.status is ApprovalStatus.PENDING:
            return Waiting(approval_id=approval_id, status="pending")
        if approval.result is not None:
            return _replayed(approval.result)
        if approval.status is ApprovalStatus.APPROVED and approval.claimed_at is not None:
            return Waiting(approval_id=approval_id, status="running")
        arguments = None
        if approval.status is ApprovalStatus.APPROVED:
            try:
                arguments = await self._holds.arguments(caller, approval_id)
            except ConfigError as exc:  # a sealing key was dropped, or the row altered
                return Refused(
                    reason=Reason.NOT_HELD,
                    message=f"Approval {approval_id} was approved, but its call cannot be "
                    f"opened: {exc.message}. Nothing was run.",
                    approval_id=approval_id,
                )
            if arguments is None:
                return Refused(
                    reason=Reason.NOT_HELD,
                    message=f"Approval {approval_id} was approved, but this server no longer "
                    "holds the call (it restarted). Call the tool again.",
                    approval_id=approval_id,
                )
        trail = Trail(
            server=approval.server,
            tool=approval.tool,
            args=arguments or approval.args,
            approval_id=approval_id,
            via=STATUS_TOOL,
            decision="require_approval",
        )
        try:
            outcome = await self._run_approved(caller, approval, trail, None)
        except asyncio.CancelledError:  # the poll ended; the call may be running: record it
            await self._books.settle(self._finish(caller, trail, trail.outcome, started))
            raise
        if not (isinstance(outcome, Refused) and outcome.reason is Reason.AUDIT_DOWN):
            await self._holds.forget(caller, approval_id)  # a refused call waits for a poll
        await self._finish(caller, trail, outcome, started)
        return outcome


def _stripped(arguments: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in arguments.items() if k != JUSTIFICATION_ARG}


def _stored(outcome: Forwarded | Failed) -> dict[str, Any]:
    """What an approval keeps of its call's outcome, for later polls: the upstream's result
    as it sent it, or (the upstream failed) the failure (docs/decisions/0058)."""
    if isinstance(outcome, Forwarded):
        return outcome.result.as_dict()
    return {FAILED_KEY: {"server": outcome.server, "error": outcome.error}}


def _replayed(stored: dict[str, Any]) -> Forwarded | Failed:
    failed = stored.get(FAILED_KEY)
    if isinstance(failed, dict) and len(stored) == 1:
        return Failed(server=str(failed.get("server")), error=str(failed.get("error")))
    return Forwarded(result=ToolResult.of(stored))


def _principal(caller: Caller) -> Principal:
    return Principal(
        key_id=caller.key_id,
        user=caller.user_id or "",
        agent=caller.labels.get("agent", caller.name),
        role=caller.role.value,
        labels=dict(caller.labels),
    )
