"""Decisions: lookup, rule order, defaults, unknown tools, evaluation errors, justification."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.policy import (
    Action,
    CompiledPolicy,
    Decision,
    JustificationMode,
    Principal,
    generate_policy,
    load_policy,
    load_policy_file,
)
from tests.unit.policy.policy_helpers import NOON, call, policy

POLICIES = Path(__file__).resolve().parents[3] / "policies"


@pytest.fixture(scope="module")
def spec_example() -> CompiledPolicy:
    return load_policy_file(POLICIES / "production-safeguards.yaml")


# -- the product description's example -----------------------------------------------------


def test_spec_example_production_deploy_requires_deploy_approval(
    spec_example: CompiledPolicy,
) -> None:
    decision = spec_example.decide(
        call("bash", {"command": "kubectl deploy production"}, justification="release 1.4")
    )

    assert decision.action is Action.REQUIRE_APPROVAL
    assert decision.workflow == "deploy-approval"
    assert decision.rule == "bash#1"
    assert decision.rule_description == "Production deployments require approval"
    assert decision.justification_mode is JustificationMode.REQUIRED
    assert decision.error is None
    assert decision.policy_digest == spec_example.digest
    assert "deploy-approval" in decision.message


@pytest.mark.parametrize(
    "command", ["ls -la", "./deploy.sh staging", "echo production", "git status"]
)
def test_spec_example_other_bash_commands_are_allowed(
    spec_example: CompiledPolicy, command: str
) -> None:
    decision = spec_example.decide(call("bash", {"command": command}, justification="why"))

    assert decision.action is Action.ALLOW
    assert decision.rule == "defaults.action"
    assert decision.workflow is None
    assert decision.message == ""


@pytest.mark.parametrize("justification", [None, "", "   \n"])
def test_spec_example_missing_justification_is_denied_with_a_message(
    spec_example: CompiledPolicy, justification: str | None
) -> None:
    decision = spec_example.decide(
        call("bash", {"command": "deploy production"}, justification=justification)
    )

    assert decision.action is Action.DENY
    assert decision.rule == "tools.bash.justification"
    assert "`justification` argument" in decision.message
    assert decision.justification_mode is JustificationMode.REQUIRED


# -- rule order ------------------------------------------------------------------------------

ORDERED = """
version: "1.0"
metadata: {name: ordered}
defaults:
  action: deny
  unknown_tools: deny
approval_workflows:
  - name: review
  - name: rule-workflow
tools:
  - name: shell
    approval_workflow: review
    conditions:
      - id: no-rm
        expression: "args.command.startsWith('rm')"
        action: deny
        message: "rm is not allowed"
      - expression: "args.command.contains('push')"
        action: require_approval
        description: pushes are reviewed
      - expression: "args.command.contains('prod')"
        action: require_approval
        approval_workflow: rule-workflow
      - expression: "args.command.startsWith('r') || args.command.startsWith('l')"
        action: allow
  - name: read
    action: allow
  - name: noop
"""


@pytest.fixture(scope="module")
def ordered() -> CompiledPolicy:
    return policy(ORDERED)


@pytest.mark.parametrize(
    ("command", "action", "rule", "workflow"),
    [
        ("rm -rf build", Action.DENY, "no-rm", None),
        ("rm push prod", Action.DENY, "no-rm", None),  # the first match wins
        ("git push prod", Action.REQUIRE_APPROVAL, "shell#2", "review"),
        ("deploy prod", Action.REQUIRE_APPROVAL, "shell#3", "rule-workflow"),
        ("ls", Action.ALLOW, "shell#4", None),
        ("whoami", Action.DENY, "defaults.action", None),
    ],
)
def test_first_matching_rule_wins(
    ordered: CompiledPolicy, command: str, action: Action, rule: str, workflow: str | None
) -> None:
    decision = ordered.decide(call("shell", {"command": command}))

    assert (decision.action, decision.rule, decision.workflow) == (action, rule, workflow)


def test_a_deny_rule_message_is_shown_to_the_agent(ordered: CompiledPolicy) -> None:
    decision = ordered.decide(call("shell", {"command": "rm x"}))

    assert decision.message == "rm is not allowed"
    assert "rule 'no-rm'" in decision.explanation


def test_a_rule_without_message_gets_a_default_one(ordered: CompiledPolicy) -> None:
    decision = ordered.decide(call("shell", {"command": "git push"}))

    assert decision.message == (
        "This call needs human approval (workflow 'review', rule 'shell#2'): pushes are reviewed."
    )


def test_tool_action_applies_when_it_has_no_rules(ordered: CompiledPolicy) -> None:
    decision = ordered.decide(call("read", {"path": "/x"}))

    assert (decision.action, decision.rule) == (Action.ALLOW, "tools.read.action")
    assert decision.explanation == ("tool 'read' has no rules; the tool's action allow applies")


def test_defaults_action_applies_to_a_listed_tool_without_action(ordered: CompiledPolicy) -> None:
    decision = ordered.decide(call("noop"))

    assert (decision.action, decision.rule) == (Action.DENY, "defaults.action")


def test_a_rule_without_expression_always_matches() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata: {name: a}
        approval_workflows: [{name: wf}]
        tools:
          - name: t
            conditions:
              - expression: "args.x == 1"
                action: allow
              - action: require_approval
                approval_workflow: wf
        """
    )

    decision = loaded.decide(call("t", {"x": 2}))

    assert (decision.action, decision.rule, decision.workflow) == (
        Action.REQUIRE_APPROVAL,
        "t#2",
        "wf",
    )
    assert "it has no condition" in decision.explanation


def test_default_workflow_is_used_when_neither_rule_nor_tool_names_one() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata: {name: a}
        defaults: {approval_workflow: fallback, unknown_tools: require_approval}
        approval_workflows: [{name: fallback}]
        tools:
          - name: t
            conditions: [{expression: "true", action: require_approval}]
        """
    )

    assert loaded.decide(call("t")).workflow == "fallback"
    unknown = loaded.decide(call("other"))
    assert (unknown.action, unknown.rule, unknown.workflow) == (
        Action.REQUIRE_APPROVAL,
        "defaults.unknown_tools",
        "fallback",
    )


# -- unknown tools ---------------------------------------------------------------------------


def test_unknown_tools_are_denied_by_default() -> None:
    loaded = policy('version: "1.0"\nmetadata: {name: a}\n')

    decision = loaded.decide(call("anything", server="srv"))

    assert decision.action is Action.DENY
    assert decision.rule == "defaults.unknown_tools"
    assert "not in the policy" in decision.explanation
    assert "server 'srv'" in decision.explanation


def test_unknown_tools_can_be_allowed_explicitly() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata: {name: a}
        defaults: {unknown_tools: allow}
        """
    )

    assert loaded.decide(call("anything")).action is Action.ALLOW


def test_tool_names_match_exactly() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata: {name: a}
        tools: [{name: bash, action: allow}]
        """
    )

    assert loaded.decide(call("bash")).action is Action.ALLOW
    for other in ("Bash", "bash ", "bas", "bash2"):
        assert loaded.decide(call(other)).rule == "defaults.unknown_tools"


# -- servers ---------------------------------------------------------------------------------

SERVERS = """
version: "1.0"
metadata: {name: servers}
tools:
  - name: query
    action: allow
  - name: query
    server: prod-db
    action: deny
  - name: only-on-gh
    server: gh
    action: allow
"""


def test_server_specific_tool_wins_over_the_server_less_one() -> None:
    loaded = policy(SERVERS)

    assert loaded.decide(call("query", server="prod-db")).rule == "tools.prod-db/query.action"
    assert loaded.decide(call("query", server="prod-db")).action is Action.DENY


def test_server_less_tool_matches_on_any_server() -> None:
    loaded = policy(SERVERS)

    for server in ("", "dev-db", "anything"):
        decision = loaded.decide(call("query", server=server))
        assert (decision.action, decision.rule) == (Action.ALLOW, "tools.query.action")


def test_server_specific_tool_does_not_match_other_servers() -> None:
    loaded = policy(SERVERS)

    assert loaded.decide(call("only-on-gh", server="gh")).action is Action.ALLOW
    assert loaded.decide(call("only-on-gh", server="gitlab")).rule == "defaults.unknown_tools"
    assert loaded.decide(call("only-on-gh")).rule == "defaults.unknown_tools"


def test_rule_ids_of_server_specific_tools_name_the_server() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - name: q
            server: db
            conditions: [{expression: "true", action: deny}]
        """
    )

    assert loaded.decide(call("q", server="db")).rule == "db/q#1"


# -- evaluation errors -----------------------------------------------------------------------

ERRORS = """
version: "1.0"
metadata: {name: errors}
defaults:
  on_error: {on_error}
  approval_workflow: errors
approval_workflows: [{name: errors}]
tools:
  - name: t
    conditions:
      - expression: "args.x == 'a'"
        action: allow
      - expression: "true"
        action: allow
"""


@pytest.mark.parametrize(
    ("on_error", "action", "workflow"),
    [("deny", Action.DENY, None), ("require_approval", Action.REQUIRE_APPROVAL, "errors")],
)
def test_a_missing_field_never_allows_and_never_skips_to_the_next_rule(
    on_error: str, action: Action, workflow: str | None
) -> None:
    loaded = policy(ERRORS.replace("{on_error}", on_error))

    decision = loaded.decide(call("t", {"y": 1}))

    assert decision.action is action
    assert decision.workflow == workflow
    assert decision.rule == "t#1"
    assert decision.error == "no such key: 'x'"
    assert "could not be evaluated: no such key: 'x'" in decision.explanation
    assert f"defaults.on_error {on_error}" in decision.explanation


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("args.x", "expression returned str, not a bool"),
        ("args.n + 1", "expression returned int, not a bool"),
        ("args.n == 'one'", "no matching overload (wrong types for this operator or function)"),
        ("args.n / 0 == 1", "modulus or divide by zero"),
        ("args.missing && args.also_missing", "no such key: 'missing'"),
        ("null", "expression returned null, not a bool"),
    ],
)
def test_evaluation_errors_deny_with_the_error(expression: str, error: str) -> None:
    loaded = policy(
        f"""
        version: "1.0"
        metadata: {{name: a}}
        tools:
          - name: t
            conditions: [{{expression: "{expression}", action: allow}}]
            action: allow
        """
    )

    decision = loaded.decide(call("t", {"x": "a", "n": 1}))

    assert (decision.action, decision.error) == (Action.DENY, error)


def test_short_circuit_false_and_missing_is_not_an_error() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - name: t
            conditions:
              - expression: "has(args.force) && args.force == true"
                action: deny
            action: allow
        """
    )

    assert loaded.decide(call("t", {})).action is Action.ALLOW
    assert loaded.decide(call("t", {"force": True})).action is Action.DENY


def test_args_that_cel_cannot_represent_are_an_evaluation_error() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata: {name: a}
        tools:
          - name: t
            conditions: [{expression: "true", action: allow}]
        """
    )

    decision = loaded.decide(call("t", {"blob": object()}))

    assert decision.action is Action.DENY
    assert decision.error is not None
    assert decision.error.startswith("value not representable in CEL")


# -- what CEL sees ---------------------------------------------------------------------------


def _one_rule(expression: str) -> CompiledPolicy:
    return policy(
        f"""
        version: "1.0"
        metadata: {{name: a}}
        tools:
          - name: t
            conditions: [{{expression: {expression!r}, action: allow}}]
            action: deny
        """
    )


@pytest.mark.parametrize(
    "expression",
    [
        "tool.name == 't' && tool.server == 'srv'",
        "principal.key_id == 'k1' && principal.user == 'ann' && principal.agent == 'claude'",
        "principal.role == 'agent' && principal.labels['team'] == 'payments'",
        "context.session == 's1' && context.flow == 'f1'",
        "context.time == timestamp('2026-01-01T12:00:00Z')",
        "context.time.getHours() == 12 && context.time.getDayOfWeek() == 4",
        "justification == 'because'",
        "args.n == 3 && args.items.size() == 2 && 'b' in args.items",
    ],
)
def test_activation_variables(expression: str) -> None:
    loaded = _one_rule(expression)
    principal = Principal(
        key_id="k1", user="ann", agent="claude", role="agent", labels={"team": "payments"}
    )

    decision = loaded.decide(
        call(
            "t",
            {"n": 3, "items": ["a", "b"]},
            server="srv",
            justification="because",
            principal=principal,
            session="s1",
            flow="f1",
        )
    )

    assert (decision.action, decision.error) == (Action.ALLOW, None)


def test_justification_is_an_empty_string_when_absent() -> None:
    loaded = _one_rule("justification == ''")

    assert loaded.decide(call("t")).action is Action.ALLOW


def test_naive_times_are_taken_as_utc() -> None:
    loaded = _one_rule("context.time == timestamp('2026-01-01T12:00:00Z')")

    decision = loaded.decide(call("t", time=datetime(2026, 1, 1, 12, 0)))

    assert decision.action is Action.ALLOW


def test_optional_justification_does_not_block() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata: {name: a}
        tools: [{name: t, justification: optional, action: allow}]
        """
    )

    decision = loaded.decide(call("t"))

    assert decision.action is Action.ALLOW
    assert decision.justification_mode is JustificationMode.OPTIONAL


# -- the index -------------------------------------------------------------------------------


def test_a_10000_tool_policy_decides_first_and_last_tool_correctly() -> None:
    loaded = load_policy(generate_policy(10_000, 5), filename="big.yaml")
    from hub.policy.bench import bench_call

    first = loaded.decide(bench_call(0))
    last = loaded.decide(bench_call(9_999))

    assert len(loaded.document.tools) == 10_000
    assert (first.action, first.rule) == (Action.ALLOW, "srv-0/tool_00000#5")
    assert (last.action, last.rule) == (Action.ALLOW, "tool_09999#5")
    assert loaded.decide(call("tool_10000")).rule == "defaults.unknown_tools"
    assert loaded.lookup("", "tool_05001") is not None
    assert loaded.lookup("", "tool_05000") is None  # that one is tied to a server
    assert loaded.lookup("srv-0", "tool_05000") is not None


def test_decisions_are_frozen_structs(ordered: CompiledPolicy) -> None:
    decision = ordered.decide(call("read"))

    assert isinstance(decision, Decision)
    with pytest.raises(AttributeError):
        decision.action = Action.DENY  # type: ignore[misc]


def test_decide_does_not_depend_on_wall_clock() -> None:
    loaded = _one_rule("context.time > timestamp('2030-01-01T00:00:00Z')")

    assert loaded.decide(call("t", time=NOON)).action is Action.DENY
    later = datetime(2031, 1, 1, tzinfo=UTC)
    assert loaded.decide(call("t", time=later)).action is Action.ALLOW
