"""Checks of meaning, run on every part of a policy that is structurally valid.

Structure (types, keys) is checked first, item by item; whatever converted cleanly lands in
:class:`Parts` with its original index, so these checks still run, and still point at the
right ``tools[3]``, when another part of the file is broken. Names referenced across parts
(workflows, servers) are taken from the raw data, so a workflow with a bad field does not
also show up as "unknown workflow" wherever it is used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hub.builtin_tools.names import BUILTIN_SERVER, BUILTIN_TOOL_NAMES, BUILTIN_TOOLS
from hub.policy._convert import Collector
from hub.policy._source import Path, format_path
from hub.policy.engine import index_key
from hub.policy.model import (
    SUPPORTED_VERSIONS,
    Action,
    ApprovalType,
    ApprovalWorkflow,
    Defaults,
    McpServerSpec,
    OnError,
    Tool,
    ToolSource,
    Transport,
)
from hub.policy.servers import find_references, is_valid_name, server_values


@dataclass
class Parts:
    version: str | None = None
    defaults: Defaults | None = None
    servers: list[tuple[int, McpServerSpec]] = field(default_factory=list)
    workflows: list[tuple[int, ApprovalWorkflow]] = field(default_factory=list)
    tools: list[tuple[int, Tool]] = field(default_factory=list)
    workflow_names: set[str] = field(default_factory=set)
    server_names: set[str] = field(default_factory=set)

    @property
    def effective_defaults(self) -> Defaults:
        return self.defaults if self.defaults is not None else Defaults()


def raw_names(items: Any) -> set[str]:
    """The ``name`` of every mapping in a raw list, valid or not."""
    if not isinstance(items, list):
        return set()
    return {i["name"] for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)}


def rule_id(tool: Tool, position: int, explicit: str | None) -> str:
    """A rule's id: its own, else ``<tool>#<1-based position>`` (``server/tool#n``)."""
    return explicit or f"{tool.label}#{position}"


def check_meaning(parts: Parts, collector: Collector) -> None:
    if parts.version is not None and parts.version not in SUPPORTED_VERSIONS:
        supported = ", ".join(f'"{v}"' for v in SUPPORTED_VERSIONS)
        collector.add(
            ("version",), f"unsupported policy version '{parts.version}' (supported: {supported})"
        )
    _check_workflows(parts, collector)
    _check_servers(parts, collector)
    _check_defaults(parts, collector)
    _check_tools(parts, collector)


def _duplicates(names: Iterable[tuple[int, str]]) -> Iterable[tuple[int, str, int]]:
    first: dict[str, int] = {}
    for index, name in names:
        if name in first:
            yield index, name, first[name]
        else:
            first[name] = index


def _check_workflows(parts: Parts, collector: Collector) -> None:
    for index, name, first in _duplicates((i, w.name) for i, w in parts.workflows):
        collector.add(
            ("approval_workflows", index, "name"),
            f"duplicate workflow name '{name}' (also approval_workflows[{first}])",
        )
    for index, workflow in parts.workflows:
        path: Path = ("approval_workflows", index)
        escalation = workflow.escalation
        if escalation is not None and escalation.after_seconds >= workflow.timeout_seconds:
            collector.add(
                (*path, "escalation", "after_seconds"),
                f"escalation after {escalation.after_seconds}s would never happen: the "
                f"request times out after {workflow.timeout_seconds}s",
            )
        _check_ai(workflow, path, collector)
        approvers = set(workflow.approvers)
        users = {a for a in approvers if a.startswith("user:")}
        if approvers and users == approvers and workflow.required_approvals > len(users):
            collector.add(
                (*path, "required_approvals"),
                f"{workflow.required_approvals} approvals required but only {len(users)} "
                "approver(s) listed: the request could never be approved",
            )


def _check_ai(workflow: ApprovalWorkflow, path: Path, collector: Collector) -> None:
    """An ``ai`` workflow names its model; ``ai`` settings on a human workflow are a mistake
    (they would silently do nothing)."""
    if workflow.approval_type is ApprovalType.AI and workflow.ai is None:
        collector.add(
            (*path, "ai"),
            "approval_type ai needs an ai block with at least a model (ai: {model: ...})",
        )
    if workflow.approval_type is ApprovalType.HUMAN and workflow.ai is not None:
        collector.add(
            (*path, "approval_type"),
            "an ai block is given but approval_type is human: set approval_type: ai "
            "(or remove the ai block)",
        )


def _check_servers(parts: Parts, collector: Collector) -> None:
    for index, name, first in _duplicates((i, s.name) for i, s in parts.servers):
        collector.add(
            ("mcp_servers", index, "name"),
            f"duplicate server name '{name}' (also mcp_servers[{first}])",
        )
    for index, server in parts.servers:
        path: Path = ("mcp_servers", index)
        if server.name == BUILTIN_SERVER:
            collector.add((*path, "name"), _reserved_server())
        if server.transport is Transport.STDIO:
            if not server.command:
                collector.add(path, "a stdio server needs 'command'")
            for key in ("url", "headers"):
                if getattr(server, key):
                    collector.add((*path, key), f"'{key}' does not apply to a stdio server")
        else:
            if not server.url:
                collector.add(path, f"a {server.transport.value} server needs 'url'")
            elif not server.url.startswith(("http://", "https://", "${")):
                collector.add((*path, "url"), "the url must start with http:// or https://")
            for key in ("command", "args", "env"):
                if getattr(server, key):
                    collector.add((*path, key), f"'{key}' applies only to stdio servers")
        for where, value in server_values(server):
            for name in find_references(value):
                if not is_valid_name(name):
                    key = where.split(".", 1)[0].split("[", 1)[0]
                    collector.add(
                        (*path, key),
                        f"'${{{name}}}' in {where} is not a valid variable reference "
                        "(write ${NAME} with letters, digits and _)",
                    )


def _reserved_server() -> str:
    return (
        f"the server name '{BUILTIN_SERVER}' is reserved for Preloop's built-in tools "
        "(name them with source: builtin)"
    )


def _check_source(path: Path, tool: Tool, collector: Collector) -> None:
    """A built-in entry names one of the built-in tools and no server; an upstream entry
    never names the built-ins' reserved server."""
    if tool.source is ToolSource.BUILTIN:
        if tool.name not in BUILTIN_TOOLS:
            collector.add(
                (*path, "name"),
                f"unknown built-in tool '{tool.name}' (built-in tools: "
                f"{', '.join(BUILTIN_TOOL_NAMES)})",
            )
        if tool.server is not None:
            collector.add(
                (*path, "server"), "a built-in tool (source: builtin) runs in Preloop: no server"
            )
    elif tool.server == BUILTIN_SERVER:
        collector.add((*path, "server"), _reserved_server())


def _unknown_workflow(name: str, known: set[str]) -> str:
    listed = ", ".join(sorted(known)) or "none defined"
    return f"unknown approval workflow '{name}' (approval_workflows: {listed})"


def _no_workflow(what: str) -> str:
    return (
        f"{what} requires approval but no approval workflow applies: set approval_workflow "
        "on the rule, on the tool or in defaults"
    )


def _check_defaults(parts: Parts, collector: Collector) -> None:
    defaults = parts.defaults
    if defaults is None:
        return
    workflow = defaults.approval_workflow
    if workflow is not None and workflow not in parts.workflow_names:
        collector.add(
            ("defaults", "approval_workflow"), _unknown_workflow(workflow, parts.workflow_names)
        )
    if defaults.unknown_tools is Action.REQUIRE_APPROVAL and workflow is None:
        collector.add(
            ("defaults", "unknown_tools"),
            "require_approval for unknown tools needs defaults.approval_workflow",
        )


def _check_tools(parts: Parts, collector: Collector) -> None:
    defaults = parts.effective_defaults
    workflows = parts.workflow_names
    keys = ((i, "\0".join(index_key(t))) for i, t in parts.tools)
    by_index = dict(parts.tools)
    for index, _, first in _duplicates(keys):
        tool = by_index[index]
        where = (
            "(source: builtin)"
            if tool.source is ToolSource.BUILTIN
            else f"on server '{tool.server}'"
            if tool.server
            else "without a server"
        )
        collector.add(
            ("tools", index, "name"), f"duplicate tool '{tool.name}' {where} (also tools[{first}])"
        )
    seen_ids: dict[str, Path] = {}
    on_error_gaps: list[str] = []
    for index, tool in parts.tools:
        path: Path = ("tools", index)
        _check_source(path, tool, collector)
        if tool.server is not None and parts.server_names and tool.server not in parts.server_names:
            known = ", ".join(sorted(parts.server_names))
            collector.add(
                (*path, "server"), f"unknown server '{tool.server}' (mcp_servers: {known})"
            )
        if tool.approval_workflow is not None and tool.approval_workflow not in workflows:
            collector.add(
                (*path, "approval_workflow"), _unknown_workflow(tool.approval_workflow, workflows)
            )
        tool_workflow = tool.approval_workflow or defaults.approval_workflow
        unconditional: int | None = None
        for ri, rule in enumerate(tool.conditions):
            rule_path: Path = (*path, "conditions", ri)
            this_id = rule_id(tool, ri + 1, rule.id)
            if this_id in seen_ids:
                collector.add(
                    (*rule_path, "id") if rule.id else rule_path,
                    f"duplicate rule id '{this_id}' (also {format_path(seen_ids[this_id])})",
                )
            else:
                seen_ids[this_id] = rule_path
            if unconditional is not None:
                collector.add(
                    rule_path,
                    f"rule {ri + 1} can never match: rule {unconditional + 1} before it has no "
                    "expression and always matches",
                )
            elif rule.expression is None and rule.enabled:  # a disabled catch-all hides nothing
                unconditional = ri
            if rule.approval_workflow is not None and rule.approval_workflow not in workflows:
                collector.add(
                    (*rule_path, "approval_workflow"),
                    _unknown_workflow(rule.approval_workflow, workflows),
                )
            workflow = rule.approval_workflow or tool_workflow
            if rule.action is Action.REQUIRE_APPROVAL and workflow is None:
                collector.add((*rule_path, "action"), _no_workflow("this rule"))
            if (
                rule.expression is not None
                and defaults.on_error is OnError.REQUIRE_APPROVAL
                and workflow is None
            ):
                on_error_gaps.append(this_id)
        fallback = tool.action or defaults.action
        if fallback is Action.REQUIRE_APPROVAL and tool_workflow is None and unconditional is None:
            if tool.action is not None:
                collector.add((*path, "action"), _no_workflow("this tool's action"))
            else:
                collector.add(path, _no_workflow("defaults.action, which applies to this tool,"))
    if on_error_gaps:
        shown = ", ".join(on_error_gaps[:5]) + (" …" if len(on_error_gaps) > 5 else "")
        collector.add(
            ("defaults", "on_error"),
            "on_error require_approval needs an approval workflow for every rule with an "
            f"expression; none applies to: {shown}",
        )
