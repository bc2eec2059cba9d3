"""One tool call, start to end: the use case every tool call goes through.

    call(caller, name, arguments)
      ─▶ the key's role runs nothing ───────────────────────────────▶ Refused (recorded)
      ─▶ get_approval_status (Preloop's own tool) ─▶ its status, or its approved call run once
      ─▶ outside the key's tool allow-list (hub/allowlist.py) ───────▶ Refused (recorded)
      ─▶ a built-in tool (hub/builtin_tools) ─▶ (preloop, name), not pinned: Preloop's own
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

    get_approval_status: hub/tool_calls/status_tool.py; forwarding (to the upstream, or a
    built-in tool to its runner), running an approved call once and recording the end:
    hub/tool_calls/runs.py

Outcomes are values (hub/tool_calls/outcomes.py); the edge that answers the agent renders
them (server/mcp/_answers.py). Nothing runs that cannot be recorded (docs/decisions/0047).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from hub.allowlist import key_allows
from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.builtin_tools.names import BUILTIN_SERVER, BUILTIN_TOOLS
from hub.clock import Clock
from hub.errors import PreloopError
from hub.held_calls import HeldCalls
from hub.keys import ACTING_ROLES, Caller
from hub.policy import Action, CallContext, Principal, ToolCall
from hub.policy_versions import PolicyService
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
from hub.tool_calls.outcomes import Held, Outcome, Reason, Refused
from hub.tool_calls.records import DATABASE_DOWN, Trail, refusal_record
from hub.tool_calls.runs import BuiltinRunner, Runs, Upstream
from hub.tool_calls.status_tool import ApprovalStatusTool


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
        builtins: BuiltinRunner | None = None,
    ) -> None:
        self._clock = clock
        self._policies = policies
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
        self._runs = Runs(approvals, upstream, self._books, builtins)
        self._status = ApprovalStatusTool(approvals, self._holds, self._runs, self._books)

    def use_builtins(self, builtins: BuiltinRunner) -> None:
        """Serve Preloop's built-in tools with ``builtins`` (the composition root's Hub sets
        it once it holds the trackers). Without it their names are unknown tools."""
        self._runs.builtins = builtins

    def _target(self, name: str, servers: list[str]) -> tuple[str, str] | None:
        """(server, tool) of the name an agent called: a built-in's is (preloop, name)."""
        if name in BUILTIN_TOOLS and self._runs.builtins is not None:
            return BUILTIN_SERVER, name
        return split_name(name, servers)

    async def approval_status(self, caller: Caller, approval_id: str) -> Outcome:
        """``get_approval_status`` (hub/tool_calls/status_tool.py); :meth:`call` checks the
        key's role first."""
        return await self._status(caller, approval_id)

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
        if name in BUILTIN_TOOLS and self._runs.builtins is not None:
            # Preloop's own tool: its definition is Preloop's, never pinned (docs/decisions/0089)
            return await self._decide(
                caller, BUILTIN_SERVER, name, arguments, session, progress, gone
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
            return await self._recorded(caller, server, tool, arguments, session, refused)
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
            target = self._target(name, await self._servers.names(caller.account_id))
        except PreloopError:  # the database failed: the record names the tool as called
            target = None
        server, tool = target if target is not None else ("", name)
        return await self._recorded(caller, server, tool, arguments, session, refused)

    async def _recorded(
        self,
        caller: Caller,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        session: str,
        refused: Refused,
    ) -> Refused:
        """``refused``, once its ``tool.call`` record is written (or its loss logged)."""
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
            await self._books.settle(self._runs.finish(caller, trail, trail.outcome, started))
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
        await self._runs.finish(caller, trail, outcome, started)
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
            if refused is not None:
                return refused
            return await self._runs.forward(caller, trail, progress)
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
        return await self._runs.run_approved(caller, held, trail, progress)


def _stripped(arguments: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in arguments.items() if k != JUSTIFICATION_ARG}


def _principal(caller: Caller) -> Principal:
    return Principal(
        key_id=caller.key_id,
        user=caller.user_id or "",
        agent=caller.labels.get("agent", caller.name),
        role=caller.role.value,
        labels=dict(caller.labels),
    )
