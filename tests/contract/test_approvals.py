"""Approval requests: storage, the compare-and-set transition, votes, the one-time claim,
the stored result, the expiry scheduler's query."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from hub.errors import ConflictError, NotFoundError, ValidationError
from hub.ports import Storage
from hub.records import ApprovalStatus, VoteChoice

from .records import approval, at, new_account, vote

PENDING, APPROVED, DENIED = ApprovalStatus.PENDING, ApprovalStatus.APPROVED, ApprovalStatus.DENIED


async def test_request_round_trips(storage: Storage) -> None:
    account_id = await new_account(storage)
    request = approval(
        account_id,
        justification="cleanup after the incident",
        rule="deny-deletes",
        reason="deletes need a human",
        required_approvals=2,
        expires_at=at(300),
        args={"path": "/srv/data", "force": True, "depth": 3, "tags": ["a", "b"], "x": None},
    )
    await storage.approvals.add(request)

    assert request == await storage.approvals.get(account_id, request.id)
    assert await storage.approvals.get(account_id, "apr_missing") is None
    with pytest.raises(ConflictError):
        await storage.approvals.add(request)
    with pytest.raises(NotFoundError):
        await storage.approvals.add(approval("acct_missing"))


async def test_list_is_newest_first_with_status_filter_and_limit(storage: Storage) -> None:
    account_id = await new_account(storage)
    requests = [approval(account_id, created=n) for n in range(5)]
    for request in requests:
        await storage.approvals.add(request)
    for request in requests[:2]:
        await storage.approvals.transition(
            account_id,
            request.id,
            expected=PENDING,
            new=DENIED,
            decided_at=at(10),
            decided_by="alice",
            comment=None,
        )

    newest_first = [r.id for r in reversed(requests)]
    assert newest_first == [r.id for r in await storage.approvals.list(account_id)]
    assert newest_first[:2] == [r.id for r in await storage.approvals.list(account_id, limit=2)]
    assert newest_first[:3] == [
        r.id for r in await storage.approvals.list(account_id, status=PENDING)
    ]
    assert newest_first[3:] == [
        r.id for r in await storage.approvals.list(account_id, status=DENIED)
    ]
    assert list(await storage.approvals.list(account_id, status=ApprovalStatus.EXPIRED)) == []
    assert list(await storage.approvals.list(account_id, limit=0)) == []
    with pytest.raises(ValidationError):
        await storage.approvals.list(account_id, limit=-1)


async def test_transition_moves_from_the_expected_status(storage: Storage) -> None:
    account_id = await new_account(storage)
    request = approval(account_id)
    await storage.approvals.add(request)

    decided = await storage.approvals.transition(
        account_id,
        request.id,
        expected=PENDING,
        new=APPROVED,
        decided_at=at(30),
        decided_by="user_alice",
        comment="looks fine",
    )

    assert decided is not None
    assert (APPROVED, at(30), "user_alice", "looks fine") == (
        decided.status,
        decided.decided_at,
        decided.decided_by,
        decided.comment,
    )
    assert decided == await storage.approvals.get(account_id, request.id)


async def test_transition_from_a_stale_status_returns_none(storage: Storage) -> None:
    account_id = await new_account(storage)
    request = approval(account_id)
    await storage.approvals.add(request)
    await storage.approvals.transition(
        account_id,
        request.id,
        expected=PENDING,
        new=DENIED,
        decided_at=at(1),
        decided_by="bob",
        comment=None,
    )

    late = await storage.approvals.transition(
        account_id,
        request.id,
        expected=PENDING,
        new=APPROVED,
        decided_at=at(2),
        decided_by="alice",
        comment=None,
    )

    assert late is None
    current = await storage.approvals.get(account_id, request.id)
    assert current is not None
    assert (current.status, current.decided_by) == (DENIED, "bob")


async def test_concurrent_transitions_let_exactly_one_win(storage: Storage) -> None:
    account_id = await new_account(storage)
    request = approval(account_id)
    await storage.approvals.add(request)
    deciders = [("slack", APPROVED), ("tui", DENIED), ("email", APPROVED), ("push", DENIED)]

    results = await asyncio.gather(
        *(
            storage.approvals.transition(
                account_id,
                request.id,
                expected=PENDING,
                new=new,
                decided_at=at(5),
                decided_by=who,
                comment=None,
            )
            for who, new in deciders
        )
    )

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0] == await storage.approvals.get(account_id, request.id)
    assert (winners[0].decided_by, winners[0].status) in deciders


async def test_transition_of_a_missing_or_foreign_request_is_not_found(storage: Storage) -> None:
    mine, theirs = await new_account(storage), await new_account(storage)
    request = approval(mine)
    await storage.approvals.add(request)

    for account_id, request_id in [(mine, "apr_missing"), (theirs, request.id)]:
        with pytest.raises(NotFoundError):
            await storage.approvals.transition(
                account_id,
                request_id,
                expected=PENDING,
                new=APPROVED,
                decided_at=at(1),
                decided_by="mallory",
                comment=None,
            )
    assert await storage.approvals.get(theirs, request.id) is None
    assert list(await storage.approvals.list(theirs)) == []
    assert request == await storage.approvals.get(mine, request.id)


async def test_votes_are_unique_per_approver_and_oldest_first(storage: Storage) -> None:
    account_id = await new_account(storage)
    request = approval(account_id)
    await storage.approvals.add(request)
    bob, alice = vote(request, "bob", created=2), vote(request, "alice", created=1)
    await storage.approvals.add_vote(bob)
    await storage.approvals.add_vote(alice)

    with pytest.raises(ConflictError):
        await storage.approvals.add_vote(vote(request, "bob", created=3))

    assert [alice, bob] == list(await storage.approvals.votes(account_id, request.id))


async def test_concurrent_votes_of_one_approver_count_once(storage: Storage) -> None:
    account_id = await new_account(storage)
    request = approval(account_id)
    await storage.approvals.add(request)

    results = await asyncio.gather(
        *(storage.approvals.add_vote(vote(request, "alice", created=n)) for n in range(4)),
        return_exceptions=True,
    )

    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, ConflictError) for r in results if r is not None)
    assert [v.approver for v in await storage.approvals.votes(account_id, request.id)] == ["alice"]


async def test_votes_need_the_request_in_that_account(storage: Storage) -> None:
    mine, theirs = await new_account(storage), await new_account(storage)
    request = approval(mine)
    await storage.approvals.add(request)
    await storage.approvals.add_vote(vote(request, "alice"))
    foreign = vote(approval(theirs, id=request.id), "mallory")

    with pytest.raises(NotFoundError):
        await storage.approvals.add_vote(foreign)
    with pytest.raises(NotFoundError):
        await storage.approvals.add_vote(vote(approval(mine), "alice"))

    assert list(await storage.approvals.votes(theirs, request.id)) == []
    assert [v.approver for v in await storage.approvals.votes(mine, request.id)] == ["alice"]


async def test_cast_vote_counts_and_decides_at_the_quorum(storage: Storage) -> None:
    account_id = await new_account(storage)
    request = approval(account_id, required_approvals=2)
    await storage.approvals.add(request)

    first = await storage.approvals.cast_vote(
        vote(request, "alice", created=1), required=2, decided_by="key_alice"
    )
    assert first.approvals == 1
    assert first.decided is None
    assert (await storage.approvals.get(account_id, request.id)) == request

    second = await storage.approvals.cast_vote(
        msgspec.structs.replace(vote(request, "bob", created=2), comment="fine"),
        required=2,
        decided_by="key_bob",
    )
    assert second.approvals == 2
    assert second.decided is not None
    assert (APPROVED, at(2), "key_bob", "fine") == (
        second.decided.status,
        second.decided.decided_at,
        second.decided.decided_by,
        second.decided.comment,
    )
    assert second.decided == await storage.approvals.get(account_id, request.id)
    assert ["alice", "bob"] == [
        v.approver for v in await storage.approvals.votes(account_id, request.id)
    ]


async def test_who_decided_round_trips_on_votes_and_decisions(storage: Storage) -> None:
    """The person's name and the credential are stored beside the person: on the vote, on
    the request a vote decides (from the vote), and on a transition."""
    account_id = await new_account(storage)
    request = approval(account_id)
    await storage.approvals.add(request)
    ana = msgspec.structs.replace(
        vote(request, "user_ana", created=3), approver_name="Ana", via="slack:U123"
    )

    outcome = await storage.approvals.cast_vote(ana, required=1, decided_by="user_ana")

    assert outcome.decided is not None
    assert ("user_ana", "Ana", "slack:U123") == (
        outcome.decided.decided_by,
        outcome.decided.decided_by_name,
        outcome.decided.decided_via,
    )
    assert outcome.decided == await storage.approvals.get(account_id, request.id)
    assert [ana] == list(await storage.approvals.votes(account_id, request.id))

    other = approval(account_id)
    await storage.approvals.add(other)
    ended = await storage.approvals.transition(
        account_id,
        other.id,
        expected=PENDING,
        new=DENIED,
        decided_at=at(40),
        decided_by="system",
        comment=None,
        decided_by_name="system",
        decided_via="scheduler",
    )
    assert ended is not None
    assert ("system", "system", "scheduler") == (
        ended.decided_by,
        ended.decided_by_name,
        ended.decided_via,
    )
    assert ended == await storage.approvals.get(account_id, other.id)


async def test_the_longest_name_and_credential_a_decider_can_have_are_stored(
    storage: Storage,
) -> None:
    """A user without a name is named by their email (up to 320 characters); a channel's
    credential is its prefix and an id of up to 200 (``mattermost:<id>``). PostgreSQL
    refused both beyond 200 characters, so such a person's vote failed."""
    account_id = await new_account(storage)
    request = approval(account_id)
    await storage.approvals.add(request)
    email = "a" * 64 + "@" + "b" * 250 + ".org"  # 319 characters, what the API accepts
    via = "mattermost:" + "m" * 200
    long = msgspec.structs.replace(vote(request, "user_long"), approver_name=email, via=via)

    outcome = await storage.approvals.cast_vote(long, required=1, decided_by="user_long")

    assert outcome.decided is not None
    assert (email, via) == (outcome.decided.decided_by_name, outcome.decided.decided_via)
    assert [long] == list(await storage.approvals.votes(account_id, request.id))
    other = approval(account_id)
    await storage.approvals.add(other)
    ended = await storage.approvals.transition(
        account_id,
        other.id,
        expected=PENDING,
        new=ApprovalStatus.CANCELLED,
        decided_at=at(40),
        decided_by="key_agent",
        comment=None,
        decided_by_name=email,
        decided_via=via,
    )
    assert ended is not None
    assert (email, via) == (ended.decided_by_name, ended.decided_via)


async def test_cast_vote_deny_decides_at_once(storage: Storage) -> None:
    account_id = await new_account(storage)
    request = approval(account_id, required_approvals=3)
    await storage.approvals.add(request)
    no = msgspec.structs.replace(vote(request, "carol", created=4), choice=VoteChoice.DENY)

    outcome = await storage.approvals.cast_vote(no, required=3, decided_by="key_carol")

    assert outcome.approvals == 0
    assert outcome.decided is not None
    assert (DENIED, None) == (outcome.decided.status, outcome.decided.comment)


async def test_cast_vote_stores_nothing_on_a_conflict(storage: Storage) -> None:
    account_id = await new_account(storage)
    request = approval(account_id, required_approvals=2)
    await storage.approvals.add(request)
    await storage.approvals.cast_vote(vote(request, "alice"), required=2, decided_by="k1")

    with pytest.raises(ConflictError):  # the same approver again
        await storage.approvals.cast_vote(vote(request, "alice"), required=2, decided_by="k1")
    await storage.approvals.cast_vote(vote(request, "bob"), required=2, decided_by="k2")
    with pytest.raises(ConflictError):  # decided: a late vote is refused and not kept
        await storage.approvals.cast_vote(vote(request, "carol"), required=2, decided_by="k3")
    with pytest.raises(NotFoundError):
        await storage.approvals.cast_vote(
            vote(approval(account_id), "alice"), required=1, decided_by="k1"
        )

    assert ["alice", "bob"] == sorted(
        v.approver for v in await storage.approvals.votes(account_id, request.id)
    )


async def test_concurrent_cast_votes_never_miss_the_quorum(storage: Storage) -> None:
    account_id = await new_account(storage)
    request = approval(account_id, required_approvals=2)
    await storage.approvals.add(request)

    results = await asyncio.gather(
        *(
            storage.approvals.cast_vote(vote(request, who), required=2, decided_by=f"key_{who}")
            for who in ("alice", "bob", "carol")
        ),
        return_exceptions=True,
    )

    outcomes = [r for r in results if not isinstance(r, BaseException)]
    assert all(isinstance(r, ConflictError) for r in results if isinstance(r, BaseException))
    assert [1, 2] == sorted(o.approvals for o in outcomes)
    decided = [o.decided for o in outcomes if o.decided is not None]
    assert len(decided) == 1
    assert decided[0] == await storage.approvals.get(account_id, request.id)
    assert decided[0].status is APPROVED
    assert len(await storage.approvals.votes(account_id, request.id)) == 2


async def test_concurrent_mixed_cast_votes_decide_exactly_once(storage: Storage) -> None:
    """Approves and denies at once on a quorum-1 request: one vote decides, the others are
    refused and not recorded (so no deny vote stays on an approved request)."""
    account_id = await new_account(storage)
    request = approval(account_id)
    await storage.approvals.add(request)
    votes = [
        msgspec.structs.replace(vote(request, f"approver-{n}", created=n), choice=choice)
        for n, choice in enumerate([VoteChoice.APPROVE, VoteChoice.DENY] * 4)
    ]

    results = await asyncio.gather(
        *(storage.approvals.cast_vote(v, required=1, decided_by=v.approver) for v in votes),
        return_exceptions=True,
    )

    outcomes = [r for r in results if not isinstance(r, BaseException)]
    assert all(isinstance(r, ConflictError) for r in results if isinstance(r, BaseException))
    assert len(outcomes) == 1
    decided = outcomes[0].decided
    assert decided is not None
    assert decided == await storage.approvals.get(account_id, request.id)
    recorded = await storage.approvals.votes(account_id, request.id)
    assert [decided.decided_by] == [v.approver for v in recorded]


async def _approved(storage: Storage, **extra: Any) -> tuple[str, str]:
    """A new account holding one approved request: (account_id, request_id)."""
    account_id = await new_account(storage)
    request = approval(account_id, **extra)
    await storage.approvals.add(request)
    decided = await storage.approvals.transition(
        account_id,
        request.id,
        expected=PENDING,
        new=APPROVED,
        decided_at=at(10),
        decided_by="user_alice",
        comment=None,
    )
    assert decided is not None
    return account_id, request.id


async def test_snapshot_claim_and_result_round_trip(storage: Storage) -> None:
    account_id = await new_account(storage)
    plain = approval(account_id)
    full = approval(
        account_id,
        approvers=("user:alice@example.com", "team:sre", "role:approver"),
        claimed_at=at(60),
        result={"content": [{"type": "text", "text": "done"}], "isError": False, "n": 2.5},
    )
    await storage.approvals.add(plain)
    await storage.approvals.add(full)

    stored_plain = await storage.approvals.get(account_id, plain.id)
    assert stored_plain is not None
    assert ((), None, None) == (
        stored_plain.approvers,
        stored_plain.claimed_at,
        stored_plain.result,
    )
    assert full == await storage.approvals.get(account_id, full.id)
    assert {full.id, plain.id} == {r.id for r in await storage.approvals.list(account_id)}


async def test_decisions_keep_the_approvers_snapshot(storage: Storage) -> None:
    snapshot = ("user:alice@example.com", "team:sre")
    account_id, request_id = await _approved(storage, approvers=snapshot)

    current = await storage.approvals.get(account_id, request_id)

    assert current is not None
    assert snapshot == current.approvers


async def test_claim_wins_once_on_an_approved_request(storage: Storage) -> None:
    account_id, request_id = await _approved(storage)

    claimed = await storage.approvals.claim(account_id, request_id, at(20))
    again = await storage.approvals.claim(account_id, request_id, at(21))

    assert claimed is not None
    assert (APPROVED, at(20), None) == (claimed.status, claimed.claimed_at, claimed.result)
    assert claimed == await storage.approvals.get(account_id, request_id)
    assert again is None
    current = await storage.approvals.get(account_id, request_id)
    assert current is not None
    assert at(20) == current.claimed_at


async def test_claim_converts_the_time_to_utc(storage: Storage) -> None:
    account_id, request_id = await _approved(storage)
    paris = timezone(timedelta(hours=1))

    claimed = await storage.approvals.claim(account_id, request_id, at(20).astimezone(paris))

    assert claimed is not None
    assert claimed.claimed_at is not None
    assert (at(20), UTC) == (claimed.claimed_at, claimed.claimed_at.tzinfo)
    with pytest.raises(ValidationError):
        await storage.approvals.claim(account_id, request_id, datetime(2026, 1, 1))


@pytest.mark.parametrize("status", [PENDING, DENIED, ApprovalStatus.EXPIRED])
async def test_claim_needs_an_approved_request(storage: Storage, status: ApprovalStatus) -> None:
    account_id = await new_account(storage)
    request = approval(account_id)
    await storage.approvals.add(request)
    if status != PENDING:
        await storage.approvals.transition(
            account_id,
            request.id,
            expected=PENDING,
            new=status,
            decided_at=at(10),
            decided_by="system",
            comment=None,
        )

    assert await storage.approvals.claim(account_id, request.id, at(20)) is None
    current = await storage.approvals.get(account_id, request.id)
    assert current is not None
    assert (status, None) == (current.status, current.claimed_at)


async def test_concurrent_claims_let_exactly_one_win(storage: Storage) -> None:
    account_id, request_id = await _approved(storage)

    results = await asyncio.gather(
        *(storage.approvals.claim(account_id, request_id, at(20 + n)) for n in range(6))
    )

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0] == await storage.approvals.get(account_id, request_id)
    assert winners[0].claimed_at in [at(20 + n) for n in range(6)]


async def test_claim_of_a_missing_or_foreign_request_is_not_found(storage: Storage) -> None:
    account_id, request_id = await _approved(storage)
    theirs = await new_account(storage)

    for account, request in [(account_id, "apr_missing"), (theirs, request_id)]:
        with pytest.raises(NotFoundError):
            await storage.approvals.claim(account, request, at(20))

    current = await storage.approvals.get(account_id, request_id)
    assert current is not None
    assert current.claimed_at is None


async def test_store_result_once_after_the_claim(storage: Storage) -> None:
    account_id, request_id = await _approved(storage)
    await storage.approvals.claim(account_id, request_id, at(20))
    result = {"content": [{"type": "text", "text": "deleted 3 files"}], "isError": False}

    stored = await storage.approvals.store_result(account_id, request_id, result)

    assert (result, at(20)) == (stored.result, stored.claimed_at)
    assert stored == await storage.approvals.get(account_id, request_id)
    with pytest.raises(ConflictError):
        await storage.approvals.store_result(account_id, request_id, {"other": True})
    current = await storage.approvals.get(account_id, request_id)
    assert current is not None
    assert result == current.result


async def test_an_empty_result_counts_as_stored(storage: Storage) -> None:
    account_id, request_id = await _approved(storage)
    await storage.approvals.claim(account_id, request_id, at(20))

    stored = await storage.approvals.store_result(account_id, request_id, {})

    assert {} == stored.result
    with pytest.raises(ConflictError):
        await storage.approvals.store_result(account_id, request_id, {"late": 1})


async def test_store_result_needs_a_claim(storage: Storage) -> None:
    account_id, approved_id = await _approved(storage)
    pending = approval(account_id)
    await storage.approvals.add(pending)

    for request_id in (approved_id, pending.id):
        with pytest.raises(ConflictError):
            await storage.approvals.store_result(account_id, request_id, {"ok": True})
        current = await storage.approvals.get(account_id, request_id)
        assert current is not None
        assert current.result is None


async def test_store_result_of_a_missing_or_foreign_request_is_not_found(
    storage: Storage,
) -> None:
    account_id, request_id = await _approved(storage)
    await storage.approvals.claim(account_id, request_id, at(20))
    theirs = await new_account(storage)

    for account, request in [(account_id, "apr_missing"), (theirs, request_id)]:
        with pytest.raises(NotFoundError):
            await storage.approvals.store_result(account, request, {"ok": True})

    current = await storage.approvals.get(account_id, request_id)
    assert current is not None
    assert current.result is None


async def test_concurrent_results_store_exactly_one(storage: Storage) -> None:
    account_id, request_id = await _approved(storage)
    await storage.approvals.claim(account_id, request_id, at(20))

    results = await asyncio.gather(
        *(storage.approvals.store_result(account_id, request_id, {"n": n}) for n in range(4)),
        return_exceptions=True,
    )

    stored = [r for r in results if not isinstance(r, BaseException)]
    assert len(stored) == 1
    assert all(isinstance(r, ConflictError) for r in results if isinstance(r, BaseException))
    current = await storage.approvals.get(account_id, request_id)
    assert current is not None
    assert stored[0].result == current.result


async def test_due_lists_expired_pending_requests_of_every_account_oldest_first(
    storage: Storage,
) -> None:
    first, second = await new_account(storage), await new_account(storage)
    late = approval(first, expires_at=at(300))
    early = approval(second, expires_at=at(100))
    middle = approval(first, expires_at=at(200))
    tie = [approval(second, id=f"apr_tie_{n}", expires_at=at(250)) for n in (2, 1)]
    at_the_bound = approval(first, expires_at=at(400))
    later = approval(second, expires_at=at(500))
    never = approval(first)  # no expiry
    decided = approval(second, expires_at=at(50))
    for request in (late, early, middle, *tie, at_the_bound, later, never, decided):
        await storage.approvals.add(request)
    await storage.approvals.transition(
        second,
        decided.id,
        expected=PENDING,
        new=DENIED,
        decided_at=at(60),
        decided_by="bob",
        comment=None,
    )

    due = await storage.approvals.due(at(400))

    expected = [early.id, middle.id, "apr_tie_1", "apr_tie_2", late.id]
    assert expected == [r.id for r in due]
    assert early == due[0]
    assert expected[:2] == [r.id for r in await storage.approvals.due(at(400), limit=2)]
    assert list(await storage.approvals.due(at(400), limit=0)) == []
    assert list(await storage.approvals.due(at(100))) == []
    assert [early.id] == [r.id for r in await storage.approvals.due(at(100.5))]


async def test_due_checks_its_arguments(storage: Storage) -> None:
    with pytest.raises(ValidationError):
        await storage.approvals.due(at(0), limit=-1)
    with pytest.raises(ValidationError):
        await storage.approvals.due(datetime(2026, 1, 1))


async def test_escalation_due_lists_pending_unescalated_requests_oldest_first(
    storage: Storage,
) -> None:
    first, second = await new_account(storage), await new_account(storage)
    late = approval(first, escalate_at=at(300))
    early = approval(second, escalate_at=at(100))
    at_the_bound = approval(first, escalate_at=at(400))
    never = approval(first)  # no escalation
    done = approval(second, escalate_at=at(50))
    already = approval(first, escalate_at=at(60))
    for request in (late, early, at_the_bound, never, done, already):
        await storage.approvals.add(request)
    await storage.approvals.transition(
        second,
        done.id,
        expected=PENDING,
        new=DENIED,
        decided_at=at(60),
        decided_by="bob",
        comment=None,
    )
    assert await storage.approvals.escalate(first, already.id, at=at(70), approvers=())

    due = await storage.approvals.escalation_due(at(400))

    assert [early.id, late.id] == [r.id for r in due]
    assert early == due[0]
    assert [early.id] == [r.id for r in await storage.approvals.escalation_due(at(400), limit=1)]


async def test_escalate_is_a_compare_and_set_that_stores_the_snapshot(storage: Storage) -> None:
    account_id = await new_account(storage)
    request = approval(
        account_id,
        approvers=("user:ana@example.com",),
        on_timeout="expire",
        escalate_at=at(60),
        escalation_approvers=("team:leads",),
    )
    await storage.approvals.add(request)
    assert await storage.approvals.get(account_id, request.id) == request

    won = await storage.approvals.escalate(
        account_id, request.id, at=at(61), approvers=("user:ana@example.com", "team:leads")
    )

    assert won is not None
    assert (won.escalated_at, won.approvers) == (at(61), ("user:ana@example.com", "team:leads"))
    assert await storage.approvals.get(account_id, request.id) == won
    assert await storage.approvals.escalate(account_id, request.id, at=at(62), approvers=()) is None
    with pytest.raises(NotFoundError):
        await storage.approvals.escalate(account_id, "apr_missing", at=at(62), approvers=())


async def test_a_decided_request_is_never_escalated(storage: Storage) -> None:
    account_id = await new_account(storage)
    request = approval(account_id, escalate_at=at(60))
    await storage.approvals.add(request)
    await storage.approvals.transition(
        account_id,
        request.id,
        expected=PENDING,
        new=DENIED,
        decided_at=at(10),
        decided_by="bob",
        comment=None,
    )
    assert await storage.approvals.escalate(account_id, request.id, at=at(61), approvers=()) is None
