"""Deciding a tool call: allow, deny or require approval, and why.

    CompiledPolicy.decide(ToolCall) -> Decision

1. Find the tool: exact (server, tool) first, then the server-less entry (``*``, tool). The
   index is built at load, so a decision costs the rules of one tool, not the whole policy.
   A built-in tool (server ``preloop``) matches only its ``source: builtin`` entry, and an
   upstream tool never does (docs/decisions/0089). Not found → ``defaults.unknown_tools``.
2. ``justification: required`` and no (or a blank) justification → deny.
3. Rules in order, first match wins; a rule with ``enabled: false`` is skipped. A rule
   without an expression matches. An expression
   must return a CEL bool; anything else, or an error (missing key, wrong types), stops the
   evaluation with ``defaults.on_error`` (deny or require_approval): an error never allows
   and never skips to the next rule.
4. No rule matched → the tool's ``action``, else ``defaults.action``.

Per call, only what depends on the call is done (``preloop bench policy`` measures it): the
programs are compiled at load; each tool's decision plan (its rules with their programs and
quick checks, and every decision that does not depend on the call: matched rules, the
fallback, a missing justification) is built at load, with the index; the call's
activation is built and prepared for the engine once per call, on the first rule that needs
it; and a rule whose answer a quick check (:mod:`hub.policy._precheck`) is certain of, in
Python, from the call's values (``args.command.startsWith('ls')`` on a string) is not handed
to the CEL engine. Quick checks give the engine's answers exactly; ``prechecks=False`` turns
them off (the tests compare both).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from hub.builtin_tools.names import BUILTIN_SERVER
from hub.policy._precheck import QuickCheck, quick_check
from hub.policy.cel import CelEngine, CelEvaluationError, CelProgram
from hub.policy.model import (
    Action,
    ApprovalWorkflow,
    JustificationMode,
    OnError,
    PolicyDocument,
    Tool,
    ToolSource,
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


def index_key(tool: Tool) -> tuple[str, str]:
    """Where a policy's tool entry is indexed: a built-in under the reserved server
    ``preloop``, an upstream tool under its server or, without one, under ``*``."""
    if tool.source is ToolSource.BUILTIN:
        return BUILTIN_SERVER, tool.name
    return tool.server or ANY_SERVER, tool.name


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


@dataclass(frozen=True, slots=True)
class _Step:
    """A rule as a decision runs it: its program, its quick check and its decision."""

    rule: CompiledRule
    program: CelProgram | None
    quick: QuickCheck | None
    matched: Decision


@dataclass(frozen=True, slots=True)
class _Plan:
    """One tool's decision, with everything that does not depend on the call made once."""

    tool: Tool
    steps: tuple[_Step, ...]
    needs_activation: bool  # some rule has a program
    unjustified: Decision | None  # the answer to a call without a required justification
    fallback: Decision


class CompiledPolicy:
    """A validated policy with its CEL compiled, its tools indexed and their decision plans
    built. Immutable."""

    def __init__(
        self,
        *,
        document: PolicyDocument,
        digest: str,
        tools: Mapping[tuple[str, str], CompiledTool],
        engine: CelEngine,
        prechecks: bool = True,
    ) -> None:
        self.document = document
        self.digest = digest
        self.engine = engine
        self.prechecks = prechecks
        self._index = dict(tools)
        self._defaults = document.effective_defaults
        self._workflows = {w.name: w for w in document.approval_workflows}
        self._servers: dict[str, tuple[str, ...]] = {}
        for server, name in sorted(self._index):
            if server not in (ANY_SERVER, BUILTIN_SERVER):
                self._servers[name] = (*self._servers.get(name, ()), server)
        self._quick: dict[str, QuickCheck | None] = {}
        self._plans = {key: self._plan(entry) for key, entry in self._index.items()}

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
        """The tool entry a call to ``server``/``tool`` uses: exact first, then server-less
        (a built-in call, server ``preloop``: its ``source: builtin`` entry only)."""
        found = self._index.get((server, tool)) if server else None
        if found is not None or server == BUILTIN_SERVER:
            return found
        return self._index.get((ANY_SERVER, tool))

    def servers_of(self, tool: str) -> tuple[str, ...]:
        """The servers the policy lists ``tool`` under, sorted (its server-less entry, which
        any server's call uses, is not one of them)."""
        return self._servers.get(tool, ())

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
        key = (call.server, call.tool)  # exact first, then server-less, as lookup()
        if not call.server or (key not in self._index and call.server != BUILTIN_SERVER):
            key = (ANY_SERVER, call.tool)
        plan = self._plans.get(key)
        if plan is None:
            return self._unknown(call)
        if plan.unjustified is not None and not (call.justification or "").strip():
            return plan.unjustified
        if not plan.needs_activation:  # no rule has a condition: the first one matches
            return plan.steps[0].matched if plan.steps else plan.fallback
        values: dict[str, Any] | None = None
        activation: Mapping[str, Any] | None = None
        for step in plan.steps:
            program = step.program
            if program is not None:
                try:
                    if values is None:
                        values = _activation(call)
                        activation = self.engine.prepare(values)
                    quick = step.quick
                    value = quick(values) if quick is not None else None
                    if value is None:
                        value = program.evaluate(activation)  # type: ignore[arg-type]
                except CelEvaluationError as exc:
                    return self._error(step.rule, plan.tool, exc.message)
                if not isinstance(value, bool):
                    kind = "null" if value is None else type(value).__name__
                    return self._error(
                        step.rule, plan.tool, f"expression returned {kind}, not a bool"
                    )
                if not value:
                    continue
            return step.matched
        return plan.fallback

    def _plan(self, entry: CompiledTool) -> _Plan:
        """A tool's decision plan (built at load)."""
        label = entry.tool.label
        steps = tuple(
            _Step(
                rule=rule,
                program=rule.program,
                quick=self._quick_check(rule) if self.prechecks else None,
                matched=self._matched(rule, entry.tool),
            )
            for rule in entry.rules
        )
        unjustified = None
        if entry.tool.justification is JustificationMode.REQUIRED:
            unjustified = self._decision(
                Action.DENY,
                rule=f"tools.{label}.justification",
                message=(
                    f"Tool '{entry.tool.name}' requires a justification. Call it again with a "
                    "`justification` argument explaining why this call is needed."
                ),
                explanation=f"tool '{label}' has justification: required and the call gave none",
                mode=entry.tool.justification,
            )
        return _Plan(
            tool=entry.tool,
            steps=steps,
            needs_activation=any(step.program is not None for step in steps),
            unjustified=unjustified,
            fallback=self._fallback(entry, len(entry.rules)),
        )

    def _quick_check(self, rule: CompiledRule) -> QuickCheck | None:
        if rule.expression is None or rule.program is None:
            return None
        if rule.expression not in self._quick:
            tree: Any = getattr(rule.program, "tree", None)
            self._quick[rule.expression] = quick_check(tree) if tree is not None else None
        return self._quick[rule.expression]

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
