"""``enabled: false`` on a rule: skipped by the engine, still validated, kept in the export.

The dashboard's Policies screen switches rules off and on this way, so the flag must survive
load → export → load, and a disabled rule must neither match nor move the others' ids."""

from __future__ import annotations

from hub.policy import Action, export_policy, load_policy
from tests.unit.policy.policy_helpers import call, located, policy, problems

SOURCE = """
    version: "1.0"
    metadata: {name: switches}
    defaults: {action: allow}
    tools:
      - name: bash
        conditions:
          - expression: 'args.command.startsWith("rm")'
            action: deny
            enabled: %s
          - action: require_approval
            approval_workflow: ops
            enabled: %s
    approval_workflows:
      - name: ops
        approvers: ["role:admin"]
"""


def test_rules_are_enabled_by_default_and_match() -> None:
    loaded = policy(
        """
        version: "1.0"
        metadata: {name: x}
        tools:
          - name: bash
            conditions:
              - action: deny
        """
    )
    assert loaded.document.tools[0].conditions[0].enabled is True
    assert loaded.decide(call("bash", {"command": "ls"})).action is Action.DENY


def test_a_disabled_rule_is_skipped_and_the_next_rule_decides() -> None:
    loaded = policy(SOURCE % ("false", "true"))

    decision = loaded.decide(call("bash", {"command": "rm -rf /"}))

    assert decision.action is Action.REQUIRE_APPROVAL
    assert decision.rule == "bash#2"  # the second rule keeps its position and id


def test_with_every_rule_disabled_the_fallback_decides() -> None:
    loaded = policy(SOURCE % ("false", "false"))

    decision = loaded.decide(call("bash", {"command": "rm -rf /"}))

    assert decision.action is Action.ALLOW
    assert decision.rule == "defaults.action"
    assert decision.explanation.startswith("tool 'bash' has no enabled rules")


def test_enabled_rules_still_decide_as_before() -> None:
    loaded = policy(SOURCE % ("true", "true"))

    assert loaded.decide(call("bash", {"command": "rm -rf /"})).rule == "bash#1"
    assert loaded.decide(call("bash", {"command": "ls"})).rule == "bash#2"


def test_a_disabled_rule_is_still_validated() -> None:
    broken = (SOURCE % ("false", "true")).replace("startsWith", "nosuchfunction(")

    found = problems(broken)

    assert [key for _, key in located(found)] == ["tools[0].conditions[0].expression"]


def test_enabled_must_be_a_bool() -> None:
    found = problems(SOURCE % ('"no"', "true"))

    assert [key for _, key in located(found)] == ["tools[0].conditions[0].enabled"]


def test_export_keeps_enabled_false_and_omits_the_default() -> None:
    loaded = policy(SOURCE % ("false", "true"))

    text = export_policy(loaded.document)

    assert text.count("enabled:") == 1
    assert "    enabled: false\n" in text
    again = load_policy(text)
    assert again.document == loaded.document
    assert again.decide(call("bash", {"command": "rm x"})).rule == "bash#2"


def test_a_disabled_catch_all_does_not_hide_the_rules_after_it() -> None:
    moved = """
        version: "1.0"
        metadata: {name: x}
        tools:
          - name: bash
            conditions:
              - action: deny
                enabled: %s
              - expression: 'args.command == "ls"'
                action: allow
        """

    assert [key for _, key in located(problems(moved % "true"))] == ["tools[0].conditions[1]"]
    loaded = policy(moved % "false")
    assert loaded.decide(call("bash", {"command": "ls"})).rule == "bash#2"
    assert loaded.decide(call("bash", {"command": "rm"})).rule == "defaults.action"
