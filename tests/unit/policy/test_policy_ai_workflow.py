"""``approval_type: ai`` workflows: defaults, the loader's problems, the export round-trip."""

from __future__ import annotations

from hub.policy import export_policy
from hub.policy.model import AiFallback, ApprovalType
from tests.unit.policy.policy_helpers import policy, problems

AI = """
version: "1.0"
metadata: {name: t}
approval_workflows:
  - name: reviewed
    approval_type: ai
    channels: [slack]
    ai:
      model: claude-haiku-4-5
      confidence_threshold: 0.9
      fallback: deny
      instructions: |
        Production deploys need a ticket number.
      max_tokens: 200
  - name: short
    approval_type: ai
    ai: {model: gpt-4o-mini}
  - name: people
    approvers: ["role:admin"]
tools:
  - {name: bash, action: require_approval, approval_workflow: reviewed}
"""


def test_an_ai_workflow_loads_with_its_settings_and_defaults() -> None:
    workflows = {w.name: w for w in policy(AI).document.approval_workflows}
    reviewed, short, people = workflows["reviewed"], workflows["short"], workflows["people"]
    assert reviewed.approval_type is ApprovalType.AI
    assert reviewed.ai is not None
    assert reviewed.ai.model == "claude-haiku-4-5"
    assert (reviewed.ai.confidence_threshold, reviewed.ai.fallback) == (0.9, AiFallback.DENY)
    assert reviewed.ai.instructions == "Production deploys need a ticket number.\n"
    assert reviewed.ai.max_tokens == 200
    assert short.ai is not None
    assert (short.ai.confidence_threshold, short.ai.fallback) == (0.8, AiFallback.ESCALATE)
    assert (short.ai.instructions, short.ai.max_tokens) == ("", None)
    assert (people.approval_type, people.ai) == (ApprovalType.HUMAN, None)


def test_the_export_keeps_the_ai_settings_and_round_trips() -> None:
    loaded = policy(AI)
    text = export_policy(loaded.document)
    assert "approval_type: ai" in text
    assert "model: claude-haiku-4-5" in text
    assert "confidence_threshold: 0.9" in text
    assert "fallback: deny" in text
    again = policy(text)
    assert again.document == loaded.document
    assert again.digest == loaded.digest


def test_ai_workflow_problems_are_clear() -> None:
    found = problems(
        """
        version: "1.0"
        metadata: {name: t}
        approval_workflows:
          - name: no-block
            approval_type: ai
          - name: no-model
            approval_type: ai
            ai: {confidence_threshold: 0.5}
          - name: too-sure
            approval_type: ai
            ai: {model: m, confidence_threshold: 1.5}
          - name: not-ai
            ai: {model: m}
          - name: bad-fallback
            approval_type: ai
            ai: {model: m, fallback: maybe}
          - name: bad-type
            approval_type: robot
        """
    )
    messages = [f"{p.key}: {p.message}" for p in found]
    assert messages == [
        "approval_workflows[0].ai: approval_type ai needs an ai block with at least a model "
        "(ai: {model: ...})",
        "approval_workflows[1].ai: missing required key 'model'",
        "approval_workflows[2].ai.confidence_threshold: expected a number <= 1.0",
        "approval_workflows[3].approval_type: an ai block is given but approval_type is "
        "human: set approval_type: ai (or remove the ai block)",
        "approval_workflows[4].ai.fallback: invalid value 'maybe': expected one of escalate, "
        "deny, approve",
        "approval_workflows[5].approval_type: invalid value 'robot': expected one of human, ai",
    ]
