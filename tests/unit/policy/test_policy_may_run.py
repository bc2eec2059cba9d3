"""``CompiledPolicy.may_run``: whether some call to a tool could run (allowed or held for
approval). The MCP listing hides the tools for which it is ``False``."""

from __future__ import annotations

import pytest

from hub.policy import Action
from tests.unit.policy.policy_helpers import call, policy

POLICY = """
version: "1.0"
metadata: {name: listing}
approval_workflows:
  - {name: ops}
tools:
  - {name: read, server: s, action: allow}
  - {name: held, server: s, action: require_approval, approval_workflow: ops}
  - {name: denied, server: s, action: deny}
  - name: first_rule_denies
    server: s
    action: allow
    conditions:
      - {action: deny, message: never}
  - name: literal_true_deny
    server: s
    action: allow
    conditions:
      - {expression: "true", action: deny}
  - name: disabled_deny
    server: s
    action: allow
    conditions:
      - {action: deny, enabled: false}
  - name: false_allow
    server: s
    action: deny
    conditions:
      - {expression: "false", action: allow}
  - name: conditional_allow
    server: s
    conditions:
      - {expression: "args.n < 3", action: allow}
  - name: conditional_deny_then_deny
    server: s
    conditions:
      - {expression: "args.n < 3", action: deny}
  - name: conditional_deny_then_held
    server: s
    conditions:
      - {expression: "args.n < 3", action: deny}
      - {action: require_approval, approval_workflow: ops}
  - name: justified
    server: s
    action: allow
    justification: required
  - {name: anywhere, action: allow}
defaults:
  action: deny
  unknown_tools: %s
  on_error: %s
"""


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        ("read", True),
        ("held", True),  # only require_approval: still listed
        ("denied", False),
        ("first_rule_denies", False),  # the tool's action allow is never reached
        ("literal_true_deny", False),
        ("disabled_deny", True),
        ("false_allow", False),
        ("conditional_allow", True),
        ("conditional_deny_then_deny", False),  # falls under defaults.action deny
        ("conditional_deny_then_held", True),
        ("justified", True),  # a justified call runs
        ("anywhere", True),  # the server-less entry
        ("not_in_policy", False),  # defaults.unknown_tools deny
    ],
)
def test_a_tool_may_run_unless_every_call_is_denied(tool: str, expected: bool) -> None:
    compiled = policy(POLICY % ("deny", "deny"))
    assert expected == compiled.may_run("s", tool)


@pytest.mark.parametrize(
    ("tool", "unknown", "on_error", "expected"),
    [
        ("not_in_policy", "allow", "deny", True),
        ("not_in_policy", "require_approval", "deny", True),
        # an evaluation error of the deny rule would hold the call for approval
        ("conditional_deny_then_deny", "deny", "require_approval", True),
        ("first_rule_denies", "deny", "require_approval", False),  # no expression, no error
    ],
)
def test_defaults_decide_tools_the_rules_leave_open(
    tool: str, unknown: str, on_error: str, expected: bool
) -> None:
    text = POLICY % (unknown, on_error)
    if "require_approval" in (unknown, on_error):
        text = text.replace("  on_error:", "  approval_workflow: ops\n  on_error:")
    assert expected == policy(text).may_run("s", tool)


@pytest.mark.parametrize(
    "tool",
    ["denied", "first_rule_denies", "literal_true_deny", "false_allow", "not_in_policy"],
)
def test_a_tool_that_may_not_run_is_denied_whatever_the_call(tool: str) -> None:
    compiled = policy(POLICY % ("deny", "deny"))
    for args in ({}, {"n": 1}, {"n": 5}):
        decision = compiled.decide(call(tool, args, server="s", justification="why"))
        assert Action.DENY == decision.action
