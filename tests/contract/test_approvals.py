"""Approval requests: storage, the compare-and-set transition, votes."""

from __future__ import annotations

import asyncio

import pytest

from hub.errors import ConflictError, NotFoundError, ValidationError
from hub.ports import Storage
from hub.records import ApprovalStatus

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
