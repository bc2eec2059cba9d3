"""Running a call: forward it, run an approved one once, record how it ended.

Shared by the pipeline (hub/tool_calls/pipeline.py) and the built-in ``get_approval_status``
(hub/tool_calls/status_tool.py). An approved call is recorded as attempted before its approval
is claimed, claimed once, forwarded, and its outcome stored on the approval for later polls.

Forwarding goes to the ``Upstream`` port, or, for a built-in tool (server ``preloop``), to its
companion ``BuiltinRunner`` (hub/builtin_tools/runner.py), which runs it for the caller's
account. Everything before and after is the same for both.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from hub.approvals import ApprovalService, args_digest
from hub.builtin_tools.names import BUILTIN_SERVER
from hub.errors import PreloopError
from hub.keys import Caller
from hub.records import ApprovalRequest, ApprovalStatus
from hub.tool_calls.bookkeeping import Bookkeeping
from hub.tool_calls.holds import Progress
from hub.tool_calls.outcomes import Failed, Forwarded, Outcome, Reason, Refused
from hub.tool_calls.records import Trail, call_record
from hub.tool_results import ToolResult

FAILED_KEY = "ai.preloop/failed"  # a stored result: the upstream failed the approved call

log = logging.getLogger("preloop.tool_calls")


class Upstream(Protocol):
    """Where allowed calls go (server/mcp's pool implements it)."""

    async def forward(
        self, server: str, tool: str, arguments: dict[str, Any], *, progress: Progress | None = None
    ) -> ToolResult: ...


class BuiltinRunner(Protocol):
    """Where allowed calls of Preloop's built-in tools go (hub/builtin_tools/runner.py). A
    tool's own failure (a tracker's refusal, a bad argument) is an ``isError`` result; a
    ``PreloopError`` raised here is reported as the call having failed."""

    async def run(self, account_id: str, tool: str, arguments: dict[str, Any]) -> ToolResult: ...


class Runs:
    def __init__(
        self,
        approvals: ApprovalService,
        upstream: Upstream,
        books: Bookkeeping,
        builtins: BuiltinRunner | None = None,
    ) -> None:
        self._approvals = approvals
        self._upstream = upstream
        self._books = books
        self.builtins = builtins

    async def run_approved(
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
        outcome = await self.forward(caller, trail, progress)
        try:
            await self._approvals.store_result(decided.account_id, decided.id, _stored(outcome))
        except PreloopError as exc:  # the call ran: its answer still goes to the agent
            log.error("result of approval %s not stored: %s", decided.id, exc.message)
        return outcome

    async def forward(
        self, caller: Caller, trail: Trail, progress: Progress | None
    ) -> Forwarded | Failed:
        outcome: Forwarded | Failed
        try:
            if trail.server == BUILTIN_SERVER and self.builtins is not None:
                result = await self.builtins.run(caller.account_id, trail.tool, trail.args)
            else:
                result = await self._upstream.forward(
                    trail.server, trail.tool, trail.args, progress=progress
                )
        except PreloopError as exc:
            outcome = Failed(server=trail.server, error=exc.message)
        else:
            outcome = Forwarded(result=result)
        trail.outcome = outcome  # a cancellation from here on records what ran
        return outcome

    async def finish(
        self, caller: Caller, trail: Trail, outcome: Outcome | None, started: float
    ) -> None:
        duration = round((time.perf_counter() - started) * 1000, 3)
        await self._books.finish(caller, call_record(trail, outcome, duration))


def _stored(outcome: Forwarded | Failed) -> dict[str, Any]:
    """What an approval keeps of its call's outcome, for later polls: the upstream's result
    as it sent it, or (the upstream failed) the failure (docs/decisions/0058)."""
    if isinstance(outcome, Forwarded):
        return outcome.result.as_dict()
    return {FAILED_KEY: {"server": outcome.server, "error": outcome.error}}


def replayed(stored: dict[str, Any]) -> Forwarded | Failed:
    failed = stored.get(FAILED_KEY)
    if isinstance(failed, dict) and len(stored) == 1:
        return Failed(server=str(failed.get("server")), error=str(failed.get("error")))
    return Forwarded(result=ToolResult.of(stored))
