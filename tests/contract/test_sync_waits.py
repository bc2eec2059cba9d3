"""Sync waits: which process holds each call waiting for a synchronous approval, and which
of them are orphans (their process stopped renewing its lease)."""

from __future__ import annotations

import pytest

from hub.errors import ConflictError, NotFoundError
from hub.ports import Storage
from hub.records import ApprovalStatus, SyncWait

from .records import approval, at, new_account


def _wait(account_id: str, request_id: str, instance: str, created: float = 0) -> SyncWait:
    return SyncWait(
        account_id=account_id,
        request_id=request_id,
        instance_id=instance,
        created_at=at(created),
    )


async def _request(storage: Storage, account_id: str, **extra: object) -> str:
    request = approval(account_id, **extra)
    await storage.approvals.add(request)
    return request.id


async def test_waits_of_processes_whose_lease_ran_out_are_orphans(storage: Storage) -> None:
    account = await new_account(storage, "acme")
    first = await _request(storage, account)
    second = await _request(storage, account)
    third = await _request(storage, account, status=ApprovalStatus.APPROVED)
    waits = storage.sync_waits
    await waits.renew("inst_alive", at(100))
    await waits.renew("inst_dead", at(10))
    await waits.add(_wait(account, first, "inst_dead", 1))
    await waits.add(_wait(account, second, "inst_alive", 2))
    await waits.add(_wait(account, third, "inst_never", 3))  # never renewed: gone

    orphans = await waits.orphaned(at(70))

    assert [first, third] == [w.request_id for w in orphans]
    assert _wait(account, first, "inst_dead", 1) == orphans[0]
    assert [first] == [w.request_id for w in await waits.orphaned(at(70), limit=1)]
    await waits.renew("inst_dead", at(80))  # renewing moves the lease on
    assert [third] == [w.request_id for w in await waits.orphaned(at(70))]


async def test_of_concurrent_removals_one_removes(storage: Storage) -> None:
    account = await new_account(storage, "acme")
    request = await _request(storage, account)
    await storage.sync_waits.add(_wait(account, request, "inst_a"))

    assert await storage.sync_waits.remove(account, request) is True
    assert await storage.sync_waits.remove(account, request) is False
    assert [] == list(await storage.sync_waits.orphaned(at(1000)))


async def test_a_wait_needs_its_request_and_is_held_once(storage: Storage) -> None:
    account = await new_account(storage, "acme")
    other = await new_account(storage, "other")
    request = await _request(storage, account)

    with pytest.raises(NotFoundError):
        await storage.sync_waits.add(_wait(account, "apr_missing", "inst_a"))
    with pytest.raises(NotFoundError):
        await storage.sync_waits.add(_wait(other, request, "inst_a"))
    await storage.sync_waits.add(_wait(account, request, "inst_a"))
    with pytest.raises(ConflictError, match="already has a wait"):
        await storage.sync_waits.add(_wait(account, request, "inst_b"))
