"""The MCP firewall's call path, framework-free: decide, then forward, refuse or hold.

    call ─▶ strip `justification` ─▶ policy decision ─┬─ allow ─────────────▶ upstream ─▶ result
                                                    ├─ deny ──────────────▶ isError result
                                                    ├─ require_approval, sync ─▶ wait (progress
                                                    │     heartbeats) ─▶ approved: claim once,
                                                    │     forward │ denied/expired: isError │
                                                    │     agent gone: withdrawn, never run
                                                    └─ require_approval, async ─▶ approval id;
                                                          get_approval_status runs it once
    every outcome ─▶ one `tool.call` audit event, persisted before the answer is returned

Nothing runs that cannot be recorded (docs/decisions/0047): before a call is forwarded (or its
approval claimed) a `tool.attempt` event is appended; when that append fails the call is
refused and never forwarded. A `tool.call` record that fails after the call ran is retried
until it is written (see :meth:`FirewallService._owe`); the agent still gets its result.

Results are MCP ``CallToolResult`` objects as JSON dicts, passed through untouched when the
upstream answered; the edge (server/mcp) converts them to and from the wire.

An agent that goes away either cancels its call (the edge cancels the task) or, when the edge
can only tell that the answer can no longer be delivered, resolves ``gone``. Either way a
pending approval is withdrawn and the call is audited as ``cancelled``; that bookkeeping runs
to its end even under cancellation (see :meth:`FirewallService._settle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

import msgspec

from hub.approvals import ApprovalService, args_digest
from hub.auditing import Auditor
from hub.clock import Clock
from hub.errors import ConfigError, NotFoundError, PreloopError
from hub.held_calls import HeldCalls
from hub.ids import new_id
from hub.keys import Caller
from hub.policy import Action, ApprovalWorkflow, CallContext, Decision, Principal, ToolCall
from hub.policy.model import ApprovalType
from hub.policy_versions import PolicyService
from hub.records import ApprovalRequest, ApprovalStatus
from hub.redact import redact
from hub.sync_waits import SyncWaits

JUSTIFICATION_ARG = "justification"
DISCONNECTED = "the client disconnected while waiting"
STATUS_TOOL = "get_approval_status"
META_KEY = "ai.preloop/decision"
ATTEMPT_KIND = "tool.attempt"
AUDIT_DOWN = "Preloop cannot write its audit log"
DATABASE_DOWN = "Preloop's database failed"
OWED_FIRST_DELAY = 0.5  # seconds before a failed tool.call record is written again
OWED_MAX_DELAY = 5.0

Progress = Callable[[float, float | None, str | None], Awaitable[None]]
Gone = Callable[[], Awaitable[Any]]
"""Resolves once the agent can no longer receive the call's answer (its connection ended)."""

T = TypeVar("T")
log = logging.getLogger("preloop.firewall")


class Upstream(Protocol):
    """What the firewall needs from the upstream side (server/mcp implements it)."""

    async def call_tool(
        self, name: str, tool: str, arguments: dict[str, Any], *, progress: Progress | None = None
    ) -> dict[str, Any]: ...


class CallRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One inbound tool call, as the edge saw it."""

    server: str
    tool: str  # the upstream's own tool name
    arguments: dict[str, Any] = {}
    session: str = ""
    flow: str = ""


def error_result(text: str, **meta: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": True}
    if meta:
        result["_meta"] = {META_KEY: meta}
    return result


def info_result(text: str, structured: dict[str, Any]) -> dict[str, Any]:
    """Preloop's own answer about a call that has not run (held, pending, running): the
    details in ``structuredContent`` and, for clients that must drop it (a tool with an
    output schema, server/mcp/gateway.py), in ``_meta`` too."""
    return {
        "content": [{"type": "text", "text": text}],
        "structuredContent": structured,
        "isError": False,
        "_meta": {META_KEY: structured},
    }


class FirewallService:
    def __init__(
        self,
        *,
        clock: Clock,
        auditor: Auditor,
        policies: PolicyService,
        approvals: ApprovalService,
        upstream: Upstream,
        heartbeat_seconds: float = 10.0,
        held_calls: HeldCalls | None = None,
        sync_waits: SyncWaits | None = None,
    ) -> None:
        self._clock = clock
        self._auditor = auditor
        self._policies = policies
        self._approvals = approvals
        self._upstream = upstream
        self._heartbeat = heartbeat_seconds
        # Arguments of async approvals waiting to run, by request id. Requests store only the
        # redacted arguments; these are the real ones, checked against the request's digest.
        # ``held_calls`` (when custody has local keys) also keeps them sealed in the database,
        # for every replica and across restarts (docs/decisions/0048).
        self._held: dict[str, dict[str, Any]] = {}
        self._held_calls = held_calls
        # Sync waits, stored with this process's id: a process that dies leaves its requests
        # to be cancelled by the scheduler of any process (hub/sync_waits.py).
        self._sync_waits = sync_waits
        # Bookkeeping that outlives a cancelled call (see _settle), kept until it finishes.
        self._settling: set[asyncio.Future[Any]] = set()
        self._closing = asyncio.Event()  # set by drain: owed records stop waiting to retry

    async def call(
        self,
        caller: Caller,
        request: CallRequest,
        *,
        progress: Progress | None = None,
        gone: Gone | None = None,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        arguments = dict(request.arguments)
        justification = arguments.pop(JUSTIFICATION_ARG, None)
        if justification is not None and not isinstance(justification, str):
            justification = str(justification)
        audit: dict[str, Any] = {
            "server": request.server,
            "tool": request.tool,
            "args": arguments,
            "justification": justification,
            "session": request.session,
        }
        try:
            result = await self._call(
                caller, request, arguments, justification, audit, progress, gone
            )
        except asyncio.CancelledError:
            audit.setdefault("status", "cancelled")
            await self._settle(self._finish(caller, audit, started))
            raise
        except PreloopError as exc:  # raised before anything was forwarded (a store's refusal
            # of a value, NUL text on PostgreSQL, too: never an internal error, never unrecorded)
            audit |= {"status": "refused", "error": f"{DATABASE_DOWN}: {exc.message}"}
            result = error_result(
                f"Not run: {DATABASE_DOWN} ({exc.message}). Nothing was forwarded to "
                f"{request.server!r}; call again once it is back.",
                status="refused",
            )
        await self._finish(caller, audit, started)
        return result

    async def _call(
        self,
        caller: Caller,
        request: CallRequest,
        arguments: dict[str, Any],
        justification: str | None,
        audit: dict[str, Any],
        progress: Progress | None,
        gone: Gone | None,
    ) -> dict[str, Any]:
        active = await self._policies.active(caller.account_id)
        if active is None:
            audit |= {"decision": "deny", "rule": "no-policy", "status": "denied"}
            return error_result(
                "Denied by Preloop: no policy has been applied yet.",
                decision="deny",
                rule="no-policy",
            )
        version, policy = active
        decision = policy.decide(
            ToolCall(
                tool=request.tool,
                server=request.server,
                args=arguments,
                principal=_principal(caller),
                context=CallContext(
                    time=self._clock.now(), session=request.session, flow=request.flow
                ),
                justification=justification,
            )
        )
        audit |= {
            "decision": decision.action.value,
            "rule": decision.rule,
            "why": decision.explanation,
            "policy_version": version.version,
        }
        if decision.error:
            audit["evaluation_error"] = decision.error
        if decision.action is Action.ALLOW:
            refused = await self._attempt(caller, request, arguments, audit)
            if refused is not None:
                return refused
            return await self._forward(request, arguments, audit, progress)
        if decision.action is Action.DENY:
            audit["status"] = "denied"
            return error_result(
                f"Denied by Preloop policy (rule {decision.rule}): "
                f"{decision.message or decision.explanation}",
                decision="deny",
                rule=decision.rule,
            )
        return await self._hold(
            caller,
            request,
            arguments,
            justification,
            decision,
            version.version,
            policy.workflow(decision.workflow or ""),
            audit,
            progress,
            gone,
        )

    async def _hold(
        self,
        caller: Caller,
        request: CallRequest,
        arguments: dict[str, Any],
        justification: str | None,
        decision: Decision,
        version: int,
        workflow: ApprovalWorkflow | None,
        audit: dict[str, Any],
        progress: Progress | None,
        gone: Gone | None,
    ) -> dict[str, Any]:
        if workflow is None:  # the loader refuses such policies; never run the call anyway
            audit["status"] = "denied"
            return error_result(
                f"Denied by Preloop: workflow {decision.workflow!r} is missing.",
                decision="deny",
                rule=decision.rule,
            )
        opened = self._spawn(
            self._approvals.open(
                caller=caller,
                server=request.server,
                tool=request.tool,
                args=arguments,
                justification=justification,
                decision=decision,
                policy_version=version,
                workflow=workflow,
            )
        )
        try:
            approval = await asyncio.shield(opened)
            audit["approval_id"] = approval.id
            if workflow.async_approval:
                self._held[approval.id] = arguments
                await self._keep(caller, approval.id, arguments)
                audit["status"] = "pending"
                return info_result(
                    f"This call needs {_whose(workflow)} approval (workflow {workflow.name!r}). "
                    "It was not "
                    f"run. Poll the {STATUS_TOOL} tool with approval_id {approval.id!r}; once "
                    "approved, that tool runs the call and returns its result.",
                    {
                        "approval_id": approval.id,
                        "status": "pending",
                        "workflow": workflow.name,
                        "expires_at": (
                            approval.expires_at.isoformat() if approval.expires_at else None
                        ),
                    },
                )
            try:  # the wait is released on every way out, also while it is being stored
                await self._hold_wait(caller, approval)
                decided = await self._wait(caller, approval, progress, gone)
            except PreloopError as exc:  # the call is refused: nobody may approve it now
                reason = f"the call was refused: {exc.message}"
                await self._settle(self._withdraw(caller, approval, reason))
                raise
            finally:
                if self._sync_waits is not None:
                    await self._settle(self._sync_waits.release(caller.account_id, approval.id))
        except asyncio.CancelledError:
            # The agent went away: withdraw the request (once it is open) so nobody approves
            # a call that will never run.
            await self._settle(self._withdraw_opened(caller, opened))
            raise
        if decided is None:  # the agent went away first; the request was withdrawn
            audit |= {"status": "cancelled", "error": DISCONNECTED}
            return error_result(
                f"Not run: {DISCONNECTED} for approval {approval.id}.",
                decision="require_approval",
                approval_id=approval.id,
                status="cancelled",
            )
        return await self._after_decision(caller, decided, request, arguments, audit, progress)

    async def _hold_wait(self, caller: Caller, approval: ApprovalRequest) -> None:
        """Store that this process waits for ``approval``; when that fails the request is
        withdrawn by :meth:`_hold` (nobody should approve a call no process would be known
        to hold)."""
        if self._sync_waits is not None:
            await self._sync_waits.hold(caller.account_id, approval.id)

    async def _wait(
        self,
        caller: Caller,
        approval: ApprovalRequest,
        progress: Progress | None,
        gone: Gone | None,
    ) -> ApprovalRequest | None:
        """The request once it is decided, or ``None`` (the request withdrawn) when ``gone``
        resolves first: even an approval given at that moment never runs the call."""
        if gone is None:
            return await self._decided(caller, approval, progress)
        decided = asyncio.ensure_future(self._decided(caller, approval, progress))
        left = asyncio.ensure_future(gone())
        try:
            await asyncio.wait((decided, left), return_when=asyncio.FIRST_COMPLETED)
        finally:
            left.cancel()
            decided.cancel()
        if not left.done() or left.cancelled():
            return decided.result()
        await self._settle(self._withdraw(caller, approval))
        return None

    async def _decided(
        self, caller: Caller, approval: ApprovalRequest, progress: Progress | None
    ) -> ApprovalRequest:
        beats = 0
        while True:
            current = await self._approvals.wait(
                caller.account_id, approval.id, max_wait=self._heartbeat
            )
            if current.status is not ApprovalStatus.PENDING:
                return current
            beats += 1
            if progress is None:
                continue
            try:
                await progress(
                    float(beats),
                    None,
                    f"waiting for approval {approval.id} ({approval.workflow})",
                )
            except Exception:  # a heartbeat is best-effort; it never ends the wait
                log.debug("progress heartbeat for approval %s failed", approval.id, exc_info=True)

    async def _withdraw(
        self, caller: Caller, approval: ApprovalRequest, reason: str = DISCONNECTED
    ) -> None:
        with contextlib.suppress(PreloopError):  # decided meanwhile: nothing to withdraw
            await self._approvals.cancel(
                caller.account_id,
                approval.id,
                actor=caller.key_id,
                reason=reason,
                name=caller.name or caller.key_id,
                via=caller.credential,
            )

    async def _withdraw_opened(self, caller: Caller, opened: Awaitable[ApprovalRequest]) -> None:
        await self._withdraw(caller, await opened)

    def _spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        task = asyncio.ensure_future(work)
        self._settling.add(task)
        task.add_done_callback(self._settled)
        return task

    def _settled(self, task: asyncio.Future[Any]) -> None:
        self._settling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("firewall bookkeeping failed", exc_info=task.exception())

    async def _settle(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to its end even when the calling task is being cancelled.

        An agent that goes away cancels its call, and under anyio (the MCP SDK's task
        groups) that cancellation is delivered again at every later ``await``: bookkeeping
        awaited directly (the withdrawal, the audit record) would be cut short. So it runs as
        a task of its own, kept until it finishes (see :meth:`drain`), and is awaited through
        a shield; the caller's cancellation still goes on at once.
        """
        return await asyncio.shield(self._spawn(work))

    async def drain(self) -> None:
        """Wait for bookkeeping that outlived its call (before storage closes); owed
        ``tool.call`` records get one last attempt each, at once."""
        self._closing.set()
        while self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    async def _after_decision(
        self,
        caller: Caller,
        decided: ApprovalRequest,
        request: CallRequest,
        arguments: dict[str, Any],
        audit: dict[str, Any],
        progress: Progress | None,
    ) -> dict[str, Any]:
        audit |= {
            "approval_status": decided.status.value,
            "decided_by": decided.decided_by,
            "decided_by_name": decided.decided_by_name,
            "decided_via": decided.decided_via,
        }
        if decided.status is not ApprovalStatus.APPROVED:
            audit["status"] = decided.status.value
            why = f": {decided.comment}" if decided.comment else ""
            who = decided.decided_by_name or decided.decided_by
            return error_result(
                f"Not run: approval {decided.id} was {decided.status.value}"
                f"{' by ' + who if who else ''}{why}.",
                decision="require_approval",
                approval_id=decided.id,
                status=decided.status.value,
            )
        if args_digest(arguments) != decided.args_digest:  # never run a different call
            audit["status"] = "denied"
            return error_result(
                "Not run: the arguments differ from the approved call.", approval_id=decided.id
            )
        # The attempt is recorded before the claim: a call whose record cannot be written
        # is refused with its approval still unused, so a later poll can run it.
        refused = await self._attempt(caller, request, arguments, audit)
        if refused is not None:
            return refused
        claimed = await self._approvals.claim(decided.account_id, decided.id)
        if claimed is None:
            audit["status"] = "already_used"
            return error_result(
                f"Not run: approval {decided.id} was already used.", approval_id=decided.id
            )
        result = await self._forward(request, arguments, audit, progress)
        try:
            await self._approvals.store_result(decided.account_id, decided.id, result)
        except PreloopError as exc:  # the call ran: its answer still goes to the agent
            log.error("result of approval %s not stored: %s", decided.id, exc.message)
        return result

    async def approval_status(self, caller: Caller, approval_id: str) -> dict[str, Any]:
        """The built-in ``get_approval_status`` tool: pending, refused, or (once approved) the
        call's result, run exactly once; later polls return the stored result."""
        try:
            return await self._approval_status(caller, approval_id)
        except PreloopError as exc:  # raised before the call was forwarded
            return error_result(
                f"Approval {approval_id} could not be checked: {DATABASE_DOWN} "
                f"({exc.message}). Nothing was run; poll again once it is back.",
                approval_id=approval_id,
                status="refused",
            )

    async def _approval_status(self, caller: Caller, approval_id: str) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            approval = await self._approvals.get(caller.account_id, approval_id)
        except NotFoundError:
            approval = None
        if approval is None or approval.principal_key_id != caller.key_id:
            return error_result(f"No approval {approval_id!r} for this key.")
        if approval.status is ApprovalStatus.PENDING:
            approval = await self._approvals.expire(caller.account_id, approval_id)
        if approval.status is ApprovalStatus.PENDING:
            return info_result(
                f"Approval {approval_id} is still pending.",
                {"approval_id": approval_id, "status": "pending"},
            )
        if approval.result is not None:
            return approval.result
        if approval.status is ApprovalStatus.APPROVED and approval.claimed_at is not None:
            return info_result(
                f"Approval {approval_id} was approved; the call is running.",
                {"approval_id": approval_id, "status": "running"},
            )
        arguments = None
        if approval.status is ApprovalStatus.APPROVED:
            try:
                arguments = await self._held_arguments(caller, approval_id)
            except ConfigError as exc:  # a sealing key was dropped, or the row altered
                return error_result(
                    f"Approval {approval_id} was approved, but its call cannot be opened: "
                    f"{exc.message}. Nothing was run.",
                    approval_id=approval_id,
                )
        if approval.status is ApprovalStatus.APPROVED and arguments is None:
            return error_result(
                f"Approval {approval_id} was approved, but this server no longer holds the "
                "call (it restarted). Call the tool again.",
                approval_id=approval_id,
            )
        request = CallRequest(server=approval.server, tool=approval.tool, arguments=arguments or {})
        audit: dict[str, Any] = {
            "server": approval.server,
            "tool": approval.tool,
            "args": arguments or approval.args,
            "approval_id": approval_id,
            "via": STATUS_TOOL,
            "decision": "require_approval",
        }
        try:
            result = await self._after_decision(
                caller, approval, request, arguments or {}, audit, None
            )
        except asyncio.CancelledError:  # the poll ended; the call may be running: record it
            audit.setdefault("status", "cancelled")
            await self._settle(self._finish(caller, audit, started))
            raise
        if audit.get("status") != "refused":  # a refused call is kept for the next poll
            self._held.pop(approval_id, None)
            await self._forget(caller, approval_id)
        await self._finish(caller, audit, started)
        return result

    async def _keep(self, caller: Caller, approval_id: str, arguments: dict[str, Any]) -> None:
        if self._held_calls is None:
            return
        try:
            await self._held_calls.keep(caller.account_id, approval_id, arguments)
        except PreloopError as exc:  # this process still holds it (until it stops)
            log.error("held call of approval %s not stored: %s", approval_id, exc.message)

    async def _held_arguments(self, caller: Caller, approval_id: str) -> dict[str, Any] | None:
        arguments = self._held.get(approval_id)
        if arguments is None and self._held_calls is not None:
            arguments = await self._held_calls.arguments(caller.account_id, approval_id)
        return arguments

    async def _forget(self, caller: Caller, approval_id: str) -> None:
        """Drop the sealed arguments once the call ran or was refused for good."""
        if self._held_calls is None:
            return
        try:
            await self._held_calls.forget(caller.account_id, approval_id)
        except PreloopError as exc:
            log.warning("held call of approval %s not forgotten: %s", approval_id, exc.message)

    async def _attempt(
        self,
        caller: Caller,
        request: CallRequest,
        arguments: dict[str, Any],
        audit: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Record, durably, that the call is about to be forwarded; ``None`` when it was
        written, else the refusal to answer with (the call must not run)."""
        call_id = new_id("call")
        attempt = {
            "call_id": call_id,
            "server": request.server,
            "tool": request.tool,
            "args": arguments,
        }
        if "approval_id" in audit:
            attempt["approval_id"] = audit["approval_id"]
        try:
            await self._auditor.record(caller.account_id, ATTEMPT_KIND, caller.key_id, attempt)
        except PreloopError as exc:
            audit |= {"status": "refused", "error": f"{AUDIT_DOWN}: {exc.message}"}
            return error_result(
                f"Not run: {AUDIT_DOWN} ({exc.message}), and it runs no call it cannot "
                f"record. Nothing was forwarded to {request.server!r}; call again once the "
                "audit log is writable.",
                status="refused",
                **({"approval_id": audit["approval_id"]} if "approval_id" in audit else {}),
            )
        audit["call_id"] = call_id
        return None

    async def _forward(
        self,
        request: CallRequest,
        arguments: dict[str, Any],
        audit: dict[str, Any],
        progress: Progress | None,
    ) -> dict[str, Any]:
        try:
            result = await self._upstream.call_tool(
                request.server, request.tool, arguments, progress=progress
            )
        except PreloopError as exc:
            audit |= {"status": "upstream_error", "error": exc.message}
            return error_result(f"The upstream server {request.server!r} failed: {exc.message}")
        audit["status"] = "error" if result.get("isError") else "ok"
        return result

    async def _finish(self, caller: Caller, audit: dict[str, Any], started: float) -> None:
        """Record the call's outcome. When that fails after its attempt was recorded (it may
        have run) the record is owed: retried until written. A call that never got that far
        ran nothing; its lost record is logged."""
        audit["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        try:
            await self._auditor.record(caller.account_id, "tool.call", caller.key_id, audit)
        except PreloopError as exc:
            if "call_id" not in audit:
                log.warning(
                    "tool.call record of a call that did not run was not written: %s",
                    exc.message,
                )
                return
            log.error(
                "tool.call record of call %s not written (%s); retrying until it is",
                audit["call_id"],
                exc.message,
            )
            self._spawn(self._owe(caller, audit))

    async def _owe(self, caller: Caller, audit: dict[str, Any]) -> None:
        """Write an owed ``tool.call`` record, retrying with a growing pause, until it is
        written or the firewall drains (then once more, at once; a record still failing is
        logged in full, redacted)."""
        delay = OWED_FIRST_DELAY
        while True:
            closing = self._closing.is_set()
            try:
                await self._auditor.record(caller.account_id, "tool.call", caller.key_id, audit)
            except PreloopError as exc:
                if closing:
                    log.error(
                        "tool.call record of call %s lost at shutdown (%s): %s",
                        audit["call_id"],
                        exc.message,
                        redact(audit),
                    )
                    return
            else:
                log.info("owed tool.call record of call %s written", audit["call_id"])
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            delay = min(delay * 2, OWED_MAX_DELAY)


def _principal(caller: Caller) -> Principal:
    return Principal(
        key_id=caller.key_id,
        user=caller.user_id or "",
        agent=caller.labels.get("agent", caller.name),
        role=caller.role.value,
        labels=dict(caller.labels),
    )


def _whose(workflow: ApprovalWorkflow) -> str:
    """Who approves first, in the held call's message: people, or a model."""
    return "AI" if workflow.approval_type is ApprovalType.AI else "human"
