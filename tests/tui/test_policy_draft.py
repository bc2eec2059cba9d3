"""The Policies screen's working copy: moves stay inside a tool, switches and condition edits
change only their rule, and the source is the canonical YAML the server validates."""

from __future__ import annotations

from hub.policy import load_policy
from tests.tui.test_policies_snapshots import ACTIVE
from tui.policy_draft import PolicyDraft, RulePath


def _ids(draft: PolicyDraft) -> list[str | None]:
    return [rule.expression for rule in draft.tool(0).conditions]


def test_a_fresh_draft_is_the_active_policy() -> None:
    draft = PolicyDraft(ACTIVE, 3)

    assert not draft.dirty
    assert 3 == draft.version
    assert draft.source() == draft.original


def test_a_rule_moves_within_its_tool_and_not_past_its_ends() -> None:
    draft = PolicyDraft(ACTIVE, 3)
    before = _ids(draft)

    assert RulePath(0, 1) == draft.move(RulePath(0, 0), 1)
    assert [before[1], before[0], before[2]] == _ids(draft)
    assert draft.dirty
    assert draft.move(RulePath(0, 0), -1) is None
    assert draft.move(RulePath(0, 2), 1) is None
    assert RulePath(0, 0) == draft.move(RulePath(0, 1), -1)
    assert not draft.dirty  # moved back: nothing to apply


def test_switching_a_rule_changes_only_its_enabled_flag() -> None:
    draft = PolicyDraft(ACTIVE, 3)

    assert draft.toggle(RulePath(0, 2)) is True
    assert draft.toggle(RulePath(0, 0)) is False
    assert [False, True, True] == [r.enabled for r in draft.tool(0).conditions]
    assert "enabled: false" in draft.source()
    reloaded = load_policy(draft.source()).document
    assert reloaded == draft.document


def test_a_condition_edit_is_kept_even_when_invalid_and_blank_removes_it() -> None:
    draft = PolicyDraft(ACTIVE, 3)

    draft.set_expression(RulePath(0, 1), 'args.branch == "main" &&')
    assert "&&" in draft.source()  # the server, not the draft, says it is invalid
    draft.set_expression(RulePath(0, 1), "  ")
    assert draft.rule(RulePath(0, 1)).expression is None
