"""Deciding a tool call: allow, deny or require approval, and why.

    CompiledPolicy.decide(ToolCall) -> Decision

1. Find the tool: exact (server, tool) first, then the server-less entry (``*``, tool). The
   index is built at load, so a decision costs the rules of one tool, not the whole policy.
   Not found → ``defaults.unknown_tools``.
2. ``justification: required`` and no (or a blank) justification → deny.
3. Rules in order, first match wins; a rule with ``enabled: false`` is skipped. A rule
   without an expression matches. An expression
   must return a CEL bool; anything else, or an error (missing key, wrong types), stops the
   evaluation with ``defaults.on_error`` (deny or require_approval): an error never allows
   and never skips to the next rule.
4. No rule matched → the tool's ``action``, else ``defaults.action``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from hub.policy.cel import CelEngine, CelEvaluationError, CelProgram
from hub.policy.model import (
    Action,
    ApprovalWorkflow,
    JustificationMode,
    OnError,
    PolicyDocument,
    Tool,
)

__all__ = [
    "CallContext",
    "CompiledPolicy",
    "CompiledRule",
    "CompiledTool",
    "Decision",
    "Principal",
    "ToolCall",
]

ANY_SERVER = "*"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the API key, the user behind it, the agent, its role and labels."""

    key_id: str = ""
    user: str = ""
    agent: str = ""
    role: str = ""
    labels: dict[str, str] = {}


class CallContext(msgspec.Struct, frozen=True, kw_only=True):
    time: datetime
    session: str = ""
    flow: str = ""


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    tool: str
    server: str = ""
    args: dict[str, Any] = {}
    principal: Principal = Principal()
    context: CallContext
    justification: str | None = None


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The answer for one call. ``rule`` is a rule id, or one of ``defaults.action``,
    ``defaults.unknown_tools``, ``tools.<tool>.action``, ``tools.<tool>.justification``."""

    action: Action
    rule: str
    rule_description: str = ""
    workflow: str | None = None
    message: str = ""
    explanation: str = ""
    justification_mode: JustificationMode = JustificationMode.NONE
    error: str | None = None
    policy_digest: str = ""


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    position: int  # 1-based
    action: Action
    description: str
    message: str | None
    expression: str | None
    program: CelProgram | None
    workflow: str | None  # rule's, else tool's, else defaults': used for approvals and errors


@dataclass(frozen=True, slots=True)
class CompiledTool:
    tool: Tool
    rules: tuple[CompiledRule, ...]
    fallback_action: Action
    fallback_rule: str  # "tools.<label>.action" or "defaults.action"
    fallback_workflow: str | None


class CompiledPolicy:
    """A validated policy with its CEL compiled and its tools indexed. Immutable."""

    def __init__(
        self,
        *,
        document: PolicyDocument,
        digest: str,
        tools: Mapping[tuple[str, str], CompiledTool],
        engine: CelEngine,
    ) -> None:
        self.document = document
        self.digest = digest
        self.engine = engine
        self._index = dict(tools)
        self._defaults = document.effective_defaults
        self._workflows = {w.name: w for w in document.approval_workflows}

    def __repr__(self) -> str:
        return (
            f"CompiledPolicy(name={self.document.metadata.name!r}, tools={len(self._index)}, "
            f"digest={self.digest[:12]!r})"
        )

    @property
    def name(self) -> str:
        return self.document.metadata.name

    def workflow(self, name: str) -> ApprovalWorkflow | None:
        return self._workflows.get(name)

    def lookup(self, server: str, tool: str) -> CompiledTool | None:
        """The tool entry a call to ``server``/``tool`` uses: exact first, then server-less."""
        found = self._index.get((server, tool)) if server else None
        return found if found is not None else self._index.get((ANY_SERVER, tool))

    def servers_of(self, tool: str) -> tuple[str, ...]:
        """The servers the policy lists ``tool`` under, sorted (its server-less entry, which
        any server's call uses, is not one of them)."""
        return tuple(sorted(s for s, t in self._index if t == tool and s != ANY_SERVER))

    def may_run(self, server: str, tool: str) -> bool:
        """Whether some call to ``server``/``tool`` could run (be allowed, or held for
        approval): ``False`` only when every call is denied, whatever its arguments, caller,
        time or justification. Listings show only the tools that may run.

        A rule that can match and does not deny makes the tool runnable. A deny rule that
        always matches (no expression, or the literal ``true``) ends the analysis: the rules
        after it are never reached. A conditional deny rule is passed over, unless
        ``defaults.on_error`` is ``require_approval`` (an evaluation error would hold the
        call). With no rule deciding, the tool's fallback action (or, for a tool the policy
        does not list, ``defaults.unknown_tools``) decides.
        """
        entry = self.lookup(server, tool)
        if entry is None:
            return self._defaults.unknown_tools is not Action.DENY
        errors_hold = self._defaults.on_error is OnError.REQUIRE_APPROVAL
        for rule in entry.rules:
            condition = (rule.expression or "").strip()
            if condition == "false":
                continue  # never matches
            if rule.action is not Action.DENY:
                return True
            if rule.expression is None or condition == "true":
                return False
            if errors_hold:
                return True
        return entry.fallback_action is not Action.DENY

    def decide(self, call: ToolCall) -> Decision:
        entry = self.lookup(call.server, call.tool)
        if entry is None:
            return self._unknown(call)
        tool = entry.tool
        mode = tool.justification
        if mode is JustificationMode.REQUIRED and not (call.justification or "").strip():
            return self._decision(
                Action.DENY,
                rule=f"tools.{tool.label}.justification",
                message=(
                    f"Tool '{call.tool}' requires a justification. Call it again with a "
                    "`justification` argument explaining why this call is needed."
                ),
                explanation=(
                    f"tool '{tool.label}' has justification: required and the call gave none"
                ),
                mode=mode,
            )
        activation: Mapping[str, Any] | None = None
        for rule in entry.rules:
            if rule.program is not None:
                try:
                    if activation is None:
                        activation = self.engine.prepare(_activation(call))
                    value = rule.program.evaluate(activation)
                except CelEvaluationError as exc:
                    return self._error(rule, tool, exc.message)
                if not isinstance(value, bool):
                    kind = "null" if value is None else type(value).__name__
                    return self._error(rule, tool, f"expression returned {kind}, not a bool")
                if not value:
                    continue
            return self._matched(rule, tool)
        return self._fallback(entry, len(entry.rules))

    # -- building decisions -----------------------------------------------------------

    def _decision(
        self,
        action: Action,
        *,
        rule: str,
        explanation: str,
        message: str = "",
        description: str = "",
        workflow: str | None = None,
        mode: JustificationMode = JustificationMode.NONE,
        error: str | None = None,
    ) -> Decision:
        return Decision(
            action=action,
            rule=rule,
            rule_description=description,
            workflow=workflow if action is Action.REQUIRE_APPROVAL else None,
            message=message,
            explanation=explanation,
            justification_mode=mode,
            error=error,
            policy_digest=self.digest,
        )

    def _matched(self, rule: CompiledRule, tool: Tool) -> Decision:
        why = f"rule '{rule.id}' (rule {rule.position} of tool '{tool.label}') matched" + (
            f": {rule.expression}" if rule.expression else " (it has no condition)"
        )
        return self._decision(
            rule.action,
            rule=rule.id,
            description=rule.description,
            workflow=rule.workflow,
            message=_agent_message(
                rule.action, rule.id, rule.description, rule.message, rule.workflow
            ),
            explanation=f"{why}; action {rule.action.value}{_via(rule.action, rule.workflow)}",
            mode=tool.justification,
        )

    def _fallback(self, entry: CompiledTool, checked: int) -> Decision:
        tool = entry.tool
        source = "the tool's action" if tool.action is not None else "defaults.action"
        if checked:
            lead = f"no rule of tool '{tool.label}' matched ({checked} checked)"
        elif tool.conditions:
            lead = f"tool '{tool.label}' has no enabled rules"
        else:
            lead = f"tool '{tool.label}' has no rules"
        action = entry.fallback_action
        return self._decision(
            action,
            rule=entry.fallback_rule,
            description=tool.description,
            workflow=entry.fallback_workflow,
            message=_agent_message(action, entry.fallback_rule, "", None, entry.fallback_workflow),
            explanation=(
                f"{lead}; {source} {action.value} applies{_via(action, entry.fallback_workflow)}"
            ),
            mode=tool.justification,
        )

    def _unknown(self, call: ToolCall) -> Decision:
        action = self._defaults.unknown_tools
        workflow = self._defaults.approval_workflow
        where = f" on server '{call.server}'" if call.server else ""
        return self._decision(
            action,
            rule="defaults.unknown_tools",
            workflow=workflow,
            message=(
                f"Tool '{call.tool}' is not covered by the policy and unknown tools are denied."
                if action is Action.DENY
                else _agent_message(action, "defaults.unknown_tools", "", None, workflow)
            ),
            explanation=(
                f"tool '{call.tool}'{where} is not in the policy; defaults.unknown_tools "
                f"{action.value} applies{_via(action, workflow)}"
            ),
        )

    def _error(self, rule: CompiledRule, tool: Tool, error: str) -> Decision:
        on_error = self._defaults.on_error
        action = Action.DENY if on_error is OnError.DENY else Action.REQUIRE_APPROVAL
        outcome = "was denied" if action is Action.DENY else "needs approval"
        return self._decision(
            action,
            rule=rule.id,
            description=rule.description,
            workflow=rule.workflow,
            message=(
                f"The policy could not evaluate rule '{rule.id}' for this call, so the call "
                f"{outcome}: {error}"
            ),
            explanation=(
                f"rule '{rule.id}' (rule {rule.position} of tool '{tool.label}') could not be "
                f"evaluated: {error}; an evaluation error never allows a call, so "
                f"defaults.on_error {on_error.value} applies{_via(action, rule.workflow)}"
            ),
            mode=tool.justification,
            error=error,
        )


def _via(action: Action, workflow: str | None) -> str:
    if action is Action.REQUIRE_APPROVAL and workflow:
        return f" via workflow '{workflow}'"
    return ""


def _agent_message(
    action: Action, rule: str, description: str, message: str | None, workflow: str | None
) -> str:
    if action is Action.ALLOW:
        return ""
    if message:
        return message
    detail = f": {description}" if description else ""
    if action is Action.DENY:
        return f"Denied by policy (rule '{rule}'){detail}."
    if action is Action.REQUIRE_APPROVAL:
        return f"This call needs human approval (workflow '{workflow}', rule '{rule}'){detail}."
    return ""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _activation(call: ToolCall) -> dict[str, Any]:
    principal = call.principal
    return {
        "args": call.args,
        "tool": {"name": call.tool, "server": call.server},
        "principal": {
            "key_id": principal.key_id,
            "user": principal.user,
            "agent": principal.agent,
            "role": principal.role,
            "labels": dict(principal.labels),
        },
        "context": {
            "time": _aware(call.context.time),
            "session": call.context.session,
            "flow": call.context.flow,
        },
        "justification": call.justification or "",
    }
