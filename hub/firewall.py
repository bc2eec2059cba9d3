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
from hub.errors import NotFoundError, PreloopError
from hub.keys import Caller
from hub.policy import Action, ApprovalWorkflow, CallContext, Decision, Principal, ToolCall
from hub.policy.model import ApprovalType
from hub.policy_versions import PolicyService
from hub.records import ApprovalRequest, ApprovalStatus

JUSTIFICATION_ARG = "justification"
DISCONNECTED = "the client disconnected while waiting"
STATUS_TOOL = "get_approval_status"
META_KEY = "ai.preloop/decision"

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
    ) -> None:
        self._clock = clock
        self._auditor = auditor
        self._policies = policies
        self._approvals = approvals
        self._upstream = upstream
        self._heartbeat = heartbeat_seconds
        # Arguments of async approvals waiting to run, by request id. Requests store only the
        # redacted arguments; these are the real ones, checked against the request's digest.
        self._held: dict[str, dict[str, Any]] = {}
        # Bookkeeping that outlives a cancelled call (see _settle), kept until it finishes.
        self._settling: set[asyncio.Future[Any]] = set()

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
            await self._settle(self._record(caller, audit, started))
            raise
        await self._record(caller, audit, started)
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
            decided = await self._wait(caller, approval, progress, gone)
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
        return await self._after_decision(decided, request, arguments, audit, progress)

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

    async def _withdraw(self, caller: Caller, approval: ApprovalRequest) -> None:
        with contextlib.suppress(PreloopError):  # decided meanwhile: nothing to withdraw
            await self._approvals.cancel(
                caller.account_id, approval.id, actor=caller.key_id, reason=DISCONNECTED
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
        """Wait for bookkeeping that outlived its call (before storage closes)."""
        while self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    async def _after_decision(
        self,
        decided: ApprovalRequest,
        request: CallRequest,
        arguments: dict[str, Any],
        audit: dict[str, Any],
        progress: Progress | None,
    ) -> dict[str, Any]:
        audit |= {"approval_status": decided.status.value, "decided_by": decided.decided_by}
        if decided.status is not ApprovalStatus.APPROVED:
            audit["status"] = decided.status.value
            why = f": {decided.comment}" if decided.comment else ""
            return error_result(
                f"Not run: approval {decided.id} was {decided.status.value}"
                f"{' by ' + decided.decided_by if decided.decided_by else ''}{why}.",
                decision="require_approval",
                approval_id=decided.id,
                status=decided.status.value,
            )
        if args_digest(arguments) != decided.args_digest:  # never run a different call
            audit["status"] = "denied"
            return error_result(
                "Not run: the arguments differ from the approved call.", approval_id=decided.id
            )
        claimed = await self._approvals.claim(decided.account_id, decided.id)
        if claimed is None:
            audit["status"] = "already_used"
            return error_result(
                f"Not run: approval {decided.id} was already used.", approval_id=decided.id
            )
        result = await self._forward(request, arguments, audit, progress)
        await self._approvals.store_result(decided.account_id, decided.id, result)
        return result

    async def approval_status(self, caller: Caller, approval_id: str) -> dict[str, Any]:
        """The built-in ``get_approval_status`` tool: pending, refused, or (once approved) the
        call's result, run exactly once; later polls return the stored result."""
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
        arguments = (
            self._held.pop(approval_id, None)
            if (approval.status is ApprovalStatus.APPROVED)
            else None
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
        result = await self._after_decision(approval, request, arguments or {}, audit, None)
        if approval.status is not ApprovalStatus.APPROVED:
            self._held.pop(approval_id, None)
        await self._record(caller, audit, started)
        return result

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

    async def _record(self, caller: Caller, audit: dict[str, Any], started: float) -> None:
        audit["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        await self._auditor.record(caller.account_id, "tool.call", caller.key_id, audit)


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
