"""Unit tests for policies: a cases file says what the policy must decide for given calls.

    cases:
      - name: deploys to production need approval
        tool: bash
        args: {command: "./deploy.sh production"}
        justification: "release 1.4"
        expect: require_approval
        expect_rule: bash#1
        expect_workflow: deploy-approval
      - name: approving a pull request needs a human
        tool: update_pull_request
        source: builtin           # one of Preloop's built-in tools (server "preloop")
        args: {pull_request: "acme/app#7", review_action: approve}
        expect: require_approval

``preloop policy test POLICY --cases CASES`` loads both and prints :meth:`CaseReport.
render_table`. The file is as strict as a policy: unknown keys are errors with line numbers.
A case's ``context.time`` defaults to 2026-01-01T12:00:00Z so results never depend on when
the tests run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from hub.builtin_tools.names import BUILTIN_SERVER
from hub.errors import PolicyError, Problem
from hub.policy._convert import Collector
from hub.policy._source import parse_yaml
from hub.policy.engine import CallContext, CompiledPolicy, Decision, Principal, ToolCall
from hub.policy.model import Action, ToolSource

__all__ = [
    "DEFAULT_CASE_TIME",
    "CaseReport",
    "CaseResult",
    "PolicyCase",
    "load_cases",
    "load_cases_file",
    "run_cases",
]

DEFAULT_CASE_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class CasePrincipal(_Strict, frozen=True, kw_only=True):
    key_id: str = ""
    user: str = ""
    agent: str = ""
    role: str = ""
    labels: dict[str, str] = {}


class CaseContext(_Strict, frozen=True, kw_only=True):
    time: Annotated[datetime, msgspec.Meta(tz=True)] = DEFAULT_CASE_TIME
    session: str = ""
    flow: str = ""


class PolicyCase(_Strict, frozen=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    tool: Annotated[str, msgspec.Meta(min_length=1)]
    source: ToolSource = ToolSource.MCP  # builtin: the call of a built-in tool
    server: str = ""
    args: dict[str, Any] = {}
    principal: CasePrincipal = CasePrincipal()
    justification: str | None = None
    context: CaseContext = CaseContext()
    expect: Action
    expect_rule: str | None = None
    expect_workflow: str | None = None

    def to_call(self) -> ToolCall:
        p = self.principal
        builtin = self.source is ToolSource.BUILTIN
        return ToolCall(
            tool=self.tool,
            server=BUILTIN_SERVER if builtin else self.server,
            args=self.args,
            principal=Principal(
                key_id=p.key_id, user=p.user, agent=p.agent, role=p.role, labels=p.labels
            ),
            context=CallContext(
                time=self.context.time, session=self.context.session, flow=self.context.flow
            ),
            justification=self.justification,
        )


class _CaseFile(_Strict, frozen=True, kw_only=True):
    cases: tuple[PolicyCase, ...]


class CaseResult(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    expected: Action
    actual: Action
    rule: str
    passed: bool
    detail: str = ""  # why it failed; empty when it passed
    decision: Decision | None = None


class CaseReport(msgspec.Struct, frozen=True, kw_only=True):
    results: tuple[CaseResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> tuple[CaseResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def render_table(self) -> str:
        """A fixed-width pass/fail table, failures' details under their row, a summary last."""
        headers = ("RESULT", "CASE", "EXPECTED", "ACTUAL", "RULE")
        rows = [
            ("PASS" if r.passed else "FAIL", r.name, r.expected.value, r.actual.value, r.rule)
            for r in self.results
        ]
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        out = [line(headers), line(["-" * w for w in widths])]
        for result, row in zip(self.results, rows, strict=True):
            out.append(line(row))
            if not result.passed:
                out.append(f"      ↳ {result.detail}")
        failed = len(self.failed)
        out.append("")
        out.append(f"{len(self.results) - failed} passed, {failed} failed")
        return "\n".join(out) + "\n"


def load_cases(text: str, filename: str = "<cases>") -> list[PolicyCase]:
    """Validate a cases file. Raises :class:`PolicyError` listing every problem."""
    data, source = parse_yaml(text, filename, what="cases")
    collector = Collector(source)
    collector.check_keys(data, _CaseFile, ())
    cases = collector.convert_list(data.get("cases"), PolicyCase, ("cases",))
    if "cases" in data and isinstance(data["cases"], list) and not data["cases"]:
        collector.add(("cases",), "the cases list is empty")
    first: dict[str, int] = {}
    for index, case in cases:
        if case.name in first:
            collector.add(
                ("cases", index, "name"),
                f"duplicate case name '{case.name}' (also cases[{first[case.name]}])",
            )
        else:
            first[case.name] = index
    if collector.problems:
        raise PolicyError(collector.in_file_order())
    return [case for _, case in cases]


def load_cases_file(path: str | os.PathLike[str]) -> list[PolicyCase]:
    filename = os.fspath(path)
    try:
        with open(filename, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        problem = Problem(message=f"cannot read cases file: {exc}", file=filename)
        raise PolicyError([problem]) from exc
    return load_cases(text, filename)


def run_cases(policy: CompiledPolicy, cases: Sequence[PolicyCase]) -> CaseReport:
    """Decide every case's call with ``policy`` and compare with what the case expects."""
    results: list[CaseResult] = []
    for case in cases:
        decision = policy.decide(case.to_call())
        problems: list[str] = []
        if decision.action is not case.expect:
            problems.append(f"expected {case.expect.value}, got {decision.action.value}")
        if case.expect_rule is not None and decision.rule != case.expect_rule:
            problems.append(f"expected rule '{case.expect_rule}', got '{decision.rule}'")
        if case.expect_workflow is not None and decision.workflow != case.expect_workflow:
            problems.append(
                f"expected workflow '{case.expect_workflow}', got "
                + (f"'{decision.workflow}'" if decision.workflow else "none")
            )
        detail = ""
        if problems:
            detail = "; ".join(problems) + f" — {decision.explanation}"
        results.append(
            CaseResult(
                name=case.name,
                expected=case.expect,
                actual=decision.action,
                rule=decision.rule,
                passed=not problems,
                detail=detail,
                decision=decision,
            )
        )
    return CaseReport(results=tuple(results))
