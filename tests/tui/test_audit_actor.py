"""The Audit screen's Principal column and the detail's "By": the name an event recorded for
its actor, never the name of somebody else the event mentions (decision 0054)."""

from __future__ import annotations

from datetime import UTC, datetime

from tui.feed import ActivityEvent
from tui.screens.audit import actor_name

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _event(kind: str, actor: str, **data: object) -> ActivityEvent:
    return ActivityEvent(seq=1, kind=kind, actor=actor, at=NOW, data=dict(data))


def test_a_vote_and_a_decision_show_the_deciders_name() -> None:
    voted = _event("approval.voted", "usr_ana", approver_name="Ana", via="slack:U1")
    decided = _event("approval.decided", "usr_ana", decided_by_name="Ana", via="slack:U1")
    assert ("Ana", "Ana") == (actor_name(voted), actor_name(decided))


def test_a_tool_call_shows_the_agent_not_who_approved_it() -> None:
    # The call's record names who decided its approval; its actor is the agent's key.
    call = _event(
        "tool.call",
        "key_agent",
        decided_by="usr_ana",
        decided_by_name="Ana",
        decided_via="key:key_ana",
        approval_status="approved",
    )
    assert "key_agent" == actor_name(call)


def test_an_old_event_without_names_shows_the_id() -> None:
    assert "key_x" == actor_name(_event("approval.decided", "key_x", decided_by_name=None))
