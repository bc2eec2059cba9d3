"""Load a policy: YAML text → validated :class:`PolicyDocument` → :class:`CompiledPolicy`.

Every problem is collected and raised together in one :class:`PolicyError`, in file order,
each with the file, the line and the key path (``tools[0].conditions[1].action``):

1. YAML syntax, duplicate keys, empty or non-mapping documents (``_source``);
2. structure: unknown keys, wrong types, missing keys, bad enum values, each list item
   checked on its own so one bad tool does not hide another (``_convert``);
3. meaning: duplicate names, dangling references, transport fields, approval workflows that
   cannot be resolved, unreachable rules (here);
4. every CEL expression compiled (once per distinct text) with its column and line.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from hub.errors import PolicyError, Problem
from hub.policy._checks import Parts, check_meaning, raw_names, rule_id
from hub.policy._convert import Collector
from hub.policy._source import Path, SourceMap, parse_yaml
from hub.policy.cel import CelCompileError, CelEngine, CelProgram, default_engine
from hub.policy.engine import CompiledPolicy, CompiledRule, CompiledTool, index_key
from hub.policy.export import export_policy, policy_digest
from hub.policy.model import (
    ApprovalWorkflow,
    Defaults,
    McpServerSpec,
    Metadata,
    PolicyDocument,
    Tool,
)

__all__ = ["load_policy", "load_policy_file"]


def load_policy_file(
    path: str | os.PathLike[str], *, engine: CelEngine | None = None, prechecks: bool = True
) -> CompiledPolicy:
    """Read and load a policy file (UTF-8)."""
    filename = os.fspath(path)
    try:
        with open(filename, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        problem = Problem(message=f"cannot read policy file: {exc}", file=filename)
        raise PolicyError([problem]) from exc
    return load_policy(text, filename=filename, engine=engine, prechecks=prechecks)


def load_policy(
    text: str,
    *,
    filename: str = "<policy>",
    engine: CelEngine | None = None,
    prechecks: bool = True,
) -> CompiledPolicy:
    """Validate and compile a policy. Raises :class:`PolicyError` listing every problem.
    ``prechecks=False``: every condition goes to the CEL engine (no quick checks; the tests
    compare decisions with and without them)."""
    engine = engine or default_engine()
    data, source = parse_yaml(text, filename)
    collector = Collector(source)
    document, parts = _structure(data, collector)
    programs = _compile_expressions(data.get("tools"), collector, engine)
    check_meaning(parts, collector)
    if collector.problems or document is None:
        raise PolicyError(collector.in_file_order())
    digest = policy_digest(export_policy(document))
    return CompiledPolicy(
        document=document,
        digest=digest,
        tools=_index(document, programs),
        engine=engine,
        prechecks=prechecks,
    )


# -- structure ----------------------------------------------------------------------------


def _structure(data: dict[str, Any], collector: Collector) -> tuple[PolicyDocument | None, Parts]:
    """The whole document, and its parts for the checks of meaning.

    Fast path: the document converts in one go. Otherwise each section, and each item of each
    list, is converted on its own; the document is ``None`` and the parts hold what converted.
    """
    names = {
        "workflow_names": raw_names(data.get("approval_workflows")),
        "server_names": raw_names(data.get("mcp_servers")),
    }
    try:
        document = msgspec.convert(data, PolicyDocument)
    except msgspec.ValidationError:
        pass
    else:
        return document, Parts(
            version=document.version,
            defaults=document.defaults,
            servers=list(enumerate(document.mcp_servers)),
            workflows=list(enumerate(document.approval_workflows)),
            tools=list(enumerate(document.tools)),
            **names,
        )
    collector.check_keys(data, PolicyDocument, ())
    raw_version = data.get("version")
    version: str | None = None
    if isinstance(raw_version, int | float) and not isinstance(raw_version, bool):
        collector.add(("version",), f'the version must be a string: write version: "{raw_version}"')
    elif "version" in data:
        version = collector.convert(raw_version, str, ("version",))
    if "metadata" in data:
        collector.convert(data["metadata"], Metadata, ("metadata",))
    defaults = None
    if data.get("defaults") is not None:
        defaults = collector.convert(data["defaults"], Defaults, ("defaults",))
    parts = Parts(
        version=version,
        defaults=defaults,
        servers=collector.convert_list(data.get("mcp_servers"), McpServerSpec, ("mcp_servers",)),
        workflows=collector.convert_list(
            data.get("approval_workflows"), ApprovalWorkflow, ("approval_workflows",)
        ),
        tools=collector.convert_list(data.get("tools"), Tool, ("tools",)),
        **names,
    )
    return None, parts


# -- CEL ----------------------------------------------------------------------------------


def _compile_expressions(
    raw_tools: Any, collector: Collector, engine: CelEngine
) -> dict[str, CelProgram]:
    """Compile every expression found in the raw data, once per distinct text."""
    programs: dict[str, CelProgram] = {}
    failures: dict[str, CelCompileError] = {}
    if not isinstance(raw_tools, list):
        return programs
    for ti, raw_tool in enumerate(raw_tools):
        if not isinstance(raw_tool, dict) or not isinstance(raw_tool.get("conditions"), list):
            continue
        label = _raw_label(raw_tool, ti)
        for ri, raw_rule in enumerate(raw_tool["conditions"]):
            if not isinstance(raw_rule, dict):
                continue
            expression = raw_rule.get("expression")
            if not isinstance(expression, str):
                continue
            if expression not in programs and expression not in failures:
                try:
                    programs[expression] = engine.compile(expression)
                except CelCompileError as exc:
                    failures[expression] = exc
            failure = failures.get(expression)
            if failure is not None:
                path: Path = ("tools", ti, "conditions", ri, "expression")
                collector.add(
                    path,
                    f"{failure.message} (tool '{label}', rule {ri + 1})",
                    line=_expression_line(collector.source, path, failure.line),
                )
    return programs


def _raw_label(raw_tool: dict[str, Any], index: int) -> str:
    name = raw_tool.get("name")
    server = raw_tool.get("server")
    if not isinstance(name, str):
        return f"tools[{index}]"
    return f"{server}/{name}" if isinstance(server, str) and server else name


def _expression_line(source: SourceMap, path: Path, cel_line: int | None) -> int | None:
    info = source.scalar(path)
    if info is None:
        return source.locate(path)[0]
    block = 1 if info.style in ("|", ">") else 0
    return info.line + block + max((cel_line or 1) - 1, 0)


# -- the index ----------------------------------------------------------------------------


def _index(
    document: PolicyDocument, programs: dict[str, CelProgram]
) -> dict[tuple[str, str], CompiledTool]:
    defaults = document.effective_defaults
    index: dict[tuple[str, str], CompiledTool] = {}
    for tool in document.tools:
        tool_workflow = tool.approval_workflow or defaults.approval_workflow
        rules = tuple(
            CompiledRule(
                id=rule_id(tool, position, rule.id),
                position=position,
                action=rule.action,
                description=rule.description,
                message=rule.message,
                expression=rule.expression,
                program=programs[rule.expression] if rule.expression is not None else None,
                workflow=rule.approval_workflow or tool_workflow,
            )
            for position, rule in enumerate(tool.conditions, start=1)
            if rule.enabled  # a disabled rule keeps its position but is never checked
        )
        index[index_key(tool)] = CompiledTool(
            tool=tool,
            rules=rules,
            fallback_action=tool.action or defaults.action,
            fallback_rule=f"tools.{tool.label}.action"
            if tool.action is not None
            else "defaults.action",
            fallback_workflow=tool_workflow,
        )
    return index
