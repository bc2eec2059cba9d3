"""Held calls: the sealed arguments of a call held for asynchronous approval, one per request."""

from __future__ import annotations

import pytest

from hub.errors import ConflictError, NotFoundError
from hub.ports import Storage
from hub.records import HeldCall

from .records import approval, at, new_account


def _held(account_id: str, request_id: str, sealed: str = "c2VhbGVk") -> HeldCall:
    return HeldCall(
        account_id=account_id,
        request_id=request_id,
        key_id="local1",
        sealed=sealed,
        created_at=at(5),
    )


async def test_a_held_call_is_kept_read_back_and_forgotten(storage: Storage) -> None:
    account = await new_account(storage, "acme")
    request = approval(account)
    await storage.approvals.add(request)
    held = _held(account, request.id)

    await storage.held_calls.add(held)

    assert held == await storage.held_calls.get(account, request.id)
    await storage.held_calls.remove(account, request.id)
    assert await storage.held_calls.get(account, request.id) is None
    await storage.held_calls.remove(account, request.id)  # nothing to forget: no error


async def test_a_request_holds_one_call_and_the_first_stays(storage: Storage) -> None:
    account = await new_account(storage, "acme")
    request = approval(account)
    await storage.approvals.add(request)
    await storage.held_calls.add(_held(account, request.id, "Zmlyc3Q="))

    with pytest.raises(ConflictError, match="already holds a call"):
        await storage.held_calls.add(_held(account, request.id, "c2Vjb25k"))

    kept = await storage.held_calls.get(account, request.id)
    assert kept is not None
    assert "Zmlyc3Q=" == kept.sealed


async def test_a_held_call_needs_its_request_in_the_same_account(storage: Storage) -> None:
    account = await new_account(storage, "acme")
    other = await new_account(storage, "other")
    request = approval(account)
    await storage.approvals.add(request)

    with pytest.raises(NotFoundError):
        await storage.held_calls.add(_held(account, "apr_missing"))
    with pytest.raises(NotFoundError):
        await storage.held_calls.add(_held(other, request.id))
    await storage.held_calls.add(_held(account, request.id))
    assert await storage.held_calls.get(other, request.id) is None
