"""Policy unit tests: the cases file format and the runner."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from hub.errors import PolicyError
from hub.policy import Action, CompiledPolicy, load_cases, run_cases
from hub.policy.cases import DEFAULT_CASE_TIME
from tests.unit.policy.policy_helpers import located, policy

POLICY = """
version: "1.0"
metadata: {name: cases}
defaults: {unknown_tools: deny, approval_workflow: review}
approval_workflows: [{name: review}]
tools:
  - name: bash
    conditions:
      - id: deploy
        expression: "args.command.contains('deploy')"
        action: require_approval
      - id: night
        expression: "context.time.getHours() >= 22"
        action: deny
      - id: admins
        expression: "principal.role == 'admin' && size(justification) > 0"
        action: allow
    action: deny
"""


@pytest.fixture(scope="module")
def compiled() -> CompiledPolicy:
    return policy(POLICY)


def cases(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_passing_cases(compiled: CompiledPolicy) -> None:
    loaded = load_cases(
        cases(
            """
            cases:
              - name: deploy needs review
                tool: bash
                args: {command: deploy}
                expect: require_approval
                expect_rule: deploy
                expect_workflow: review
              - name: at night everything else is denied
                tool: bash
                args: {command: ls}
                context: {time: 2026-01-01T23:00:00Z}
                expect: deny
                expect_rule: night
              - name: admins with a reason are allowed
                tool: bash
                server: local
                args: {command: ls}
                principal: {role: admin, user: ann}
                justification: "checking disk space"
                expect: allow
                expect_rule: admins
              - name: unknown tools are denied
                tool: python
                expect: deny
                expect_rule: defaults.unknown_tools
            """
        ),
        "bash.cases.yaml",
    )

    report = run_cases(compiled, loaded)

    assert report.passed
    assert [r.passed for r in report.results] == [True, True, True, True]
    assert [r.rule for r in report.results] == [
        "deploy",
        "night",
        "admins",
        "defaults.unknown_tools",
    ]
    assert all(r.detail == "" for r in report.results)


def test_failing_cases_say_why(compiled: CompiledPolicy) -> None:
    loaded = load_cases(
        cases(
            """
            cases:
              - name: wrong action
                tool: bash
                args: {command: deploy}
                expect: allow
              - name: wrong rule
                tool: bash
                args: {command: ls}
                expect: deny
                expect_rule: night
              - name: wrong workflow
                tool: bash
                args: {command: deploy}
                expect: require_approval
                expect_workflow: other
              - name: right
                tool: bash
                args: {command: ls}
                expect: deny
            """
        )
    )

    report = run_cases(compiled, loaded)

    assert not report.passed
    assert [r.passed for r in report.results] == [False, False, False, True]
    details = [r.detail.split(" — ")[0] for r in report.failed]
    assert details == [
        "expected allow, got require_approval",
        "expected rule 'night', got 'tools.bash.action'",
        "expected workflow 'other', got 'review'",
    ]
    assert report.results[0].expected is Action.ALLOW
    assert report.results[0].actual is Action.REQUIRE_APPROVAL


def test_render_table_is_fixed_width_with_details_and_summary(compiled: CompiledPolicy) -> None:
    loaded = load_cases(
        cases(
            """
            cases:
              - {name: ok, tool: bash, args: {command: deploy}, expect: require_approval}
              - {name: broken expectation, tool: bash, args: {command: ls}, expect: allow}
            """
        )
    )

    table = run_cases(compiled, loaded).render_table()

    lines = table.splitlines()
    assert lines[0].split() == ["RESULT", "CASE", "EXPECTED", "ACTUAL", "RULE"]
    assert lines[2] == "PASS    ok                  require_approval  require_approval  deploy"
    assert (
        lines[3]
        == "FAIL    broken expectation  allow             deny              tools.bash.action"
    )
    assert lines[4].startswith("      ↳ expected allow, got deny — no rule of tool 'bash'")
    assert lines[-1] == "1 passed, 1 failed"
    assert lines[0].index("CASE") == lines[2].index("ok")


def test_context_time_defaults_to_a_fixed_moment() -> None:
    (case,) = load_cases("cases: [{name: a, tool: t, expect: deny}]\n")

    assert case.context.time == DEFAULT_CASE_TIME == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert case.to_call().context.time == DEFAULT_CASE_TIME


def test_case_files_are_strict_and_report_every_problem() -> None:
    with pytest.raises(PolicyError) as caught:
        load_cases(
            cases(
                """
                cases:
                  - name: one
                    tool: bash
                    expect: allowed
                  - name: two
                    tool: bash
                    expected: allow
                  - name: one
                    tool: bash
                    args: [not, a, mapping]
                    expect: deny
                  - name: naive time
                    tool: bash
                    context: {time: 2026-01-01T12:00:00}
                    expect: deny
                extra: true
                """
            ),
            "x.cases.yaml",
        )

    found = list(caught.value.problems)
    assert located(found) == [
        (4, "cases[0].expect"),
        (5, "cases[1]"),
        (7, "cases[1].expected"),
        (10, "cases[2].args"),
        (14, "cases[3].context.time"),
        (16, "extra"),
    ]
    assert found[0].message == (
        "invalid value 'allowed': expected one of allow, deny, require_approval"
    )
    assert found[2].message == "unknown key 'expected' (did you mean 'expect'?)"
    assert all(p.file == "x.cases.yaml" for p in found)


def test_duplicate_case_names_are_rejected() -> None:
    with pytest.raises(PolicyError) as caught:
        load_cases(
            cases(
                """
                cases:
                  - {name: same, tool: a, expect: deny}
                  - {name: same, tool: b, expect: deny}
                """
            )
        )

    assert located(list(caught.value.problems)) == [(3, "cases[1].name")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the cases file is empty"),
        ("cases: []\n", "the cases list is empty"),
        (
            "- name: a\n",
            "the cases must be a YAML mapping (key: value) at the top level, got a list",
        ),
        ("other: 1\n", "unknown key 'other' (allowed: cases)"),
    ],
)
def test_malformed_case_files(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_cases(text)

    assert message in [p.message for p in caught.value.problems]
