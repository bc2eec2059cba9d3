"""The approvals queue's rules, without Textual: order, marking, races, countdowns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.events import ApprovalDecided, ApprovalRequested, ApprovalVoted
from hub.records import ApprovalRequest, ApprovalStatus, ApprovalVote, VoteChoice
from tui.queue import ApprovalQueue, countdown, outcome, quorum

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def request(rid: str, minutes: int = 0, **fields: object) -> ApprovalRequest:
    base: dict[str, object] = {
        "id": rid,
        "account_id": "acct",
        "principal_key_id": "agentkey",
        "server": "demo",
        "tool": "echo",
        "args_digest": "d",
        "policy_version": 1,
        "workflow": "on-call",
        "created_at": T0 + timedelta(minutes=minutes),
        "expires_at": T0 + timedelta(minutes=minutes + 10),
    }
    return ApprovalRequest(**{**base, **fields})  # type: ignore[arg-type]


def decided(rid: str, status: str = "approved", by: str = "ada") -> ApprovalDecided:
    return ApprovalDecided(
        account_id="acct", at=T0, request_id=rid, status=status, decided_by=by, comment=None
    )


def test_newest_first() -> None:
    queue = ApprovalQueue()
    queue.load([request("apr_old", 0), request("apr_new", 5), request("apr_mid", 2)])
    assert ["apr_new", "apr_mid", "apr_old"] == [i.request.id for i in queue.items()]


def test_a_request_event_asks_for_the_record_and_a_decision_marks_it() -> None:
    queue = ApprovalQueue()
    event = ApprovalRequested(
        account_id="acct", at=T0, request_id="apr_1", tool="echo", server="demo", workflow="w"
    )
    assert "apr_1" == queue.apply(event)
    queue.put(request("apr_1"))
    assert queue.apply(decided("apr_1", "denied", "bo")) is None
    item = queue.get("apr_1")
    assert item is not None
    assert "denied by bo" == outcome(item)


def test_an_older_pending_answer_never_undoes_a_known_decision() -> None:
    queue = ApprovalQueue()
    queue.put(request("apr_1"))
    queue.apply(decided("apr_1"))
    queue.put(request("apr_1"))  # a fetch that started before the decision
    queue.load([request("apr_1")])  # a list that did too
    item = queue.get("apr_1")
    assert item is not None
    assert "approved by ada" == outcome(item)


def test_a_decision_seen_before_the_record_is_applied_when_it_arrives() -> None:
    queue = ApprovalQueue()
    assert queue.apply(decided("apr_1")) is None
    queue.put(request("apr_1"))
    item = queue.get("apr_1")
    assert item is not None
    assert ApprovalStatus.APPROVED == item.request.status


def test_reload_drops_decided_and_reports_what_vanished() -> None:
    queue = ApprovalQueue()
    queue.load([request("apr_1"), request("apr_2")])
    queue.apply(decided("apr_1"))
    assert ["apr_2"] == queue.load([])  # apr_2 was decided while we were not looking
    assert "apr_1" not in queue
    assert "apr_2" in queue


def test_quorum_from_votes_and_events_never_goes_backwards() -> None:
    queue = ApprovalQueue()
    queue.put(request("apr_1", required_approvals=2))
    voted = ApprovalVoted(
        account_id="acct", at=T0, request_id="apr_1", approver="ada", choice="approve",
        approvals=1, required=2,
    )  # fmt: skip
    assert "apr_1" == queue.apply(voted)
    item = queue.get("apr_1")
    assert item is not None
    assert "1/2" == quorum(item)
    queue.put(request("apr_1", required_approvals=2), votes=[])  # older answer
    assert "1/2" == quorum(item)
    vote = ApprovalVote(
        request_id="apr_1", account_id="acct", approver="ada", choice=VoteChoice.APPROVE,
        created_at=T0,
    )  # fmt: skip
    queue.put(request("apr_1", required_approvals=2), votes=[vote])
    assert ["ada"] == [v.approver for v in item.votes]


def test_countdown() -> None:
    assert "no limit" == countdown(None, T0)
    assert "expired" == countdown(T0, T0)
    assert "45s" == countdown(T0 + timedelta(seconds=45), T0)
    assert "4m05s" == countdown(T0 + timedelta(seconds=245), T0)
    assert "1h02m" == countdown(T0 + timedelta(minutes=62, seconds=9), T0)
