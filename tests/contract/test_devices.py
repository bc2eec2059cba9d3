"""Paired devices and pairing tokens: lookup across accounts, revocation, push tokens, and
the one-time use of a pairing token."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.errors import ConflictError, NotFoundError
from hub.ids import new_id
from hub.ports import Storage
from hub.records import Device, PairingToken

from .records import at, new_account, user


async def _user(storage: Storage, account_id: str, email: str = "ann@example.com") -> str:
    person = user(account_id, email)
    await storage.users.add(person)
    return person.id


def device(account_id: str, user_id: str, *, created: float = 0, **extra: Any) -> Device:
    fields: dict[str, Any] = {
        "id": new_id("dev"),
        "account_id": account_id,
        "user_id": user_id,
        "name": "Ann's phone",
        "platform": "ios",
        "secret_hash": new_id("hash"),
        "created_at": at(created),
    }
    return Device(**(fields | extra))


def pairing(account_id: str, user_id: str, *, expires: float = 600, **extra: Any) -> PairingToken:
    fields: dict[str, Any] = {
        "id": new_id("pair"),
        "account_id": account_id,
        "user_id": user_id,
        "token_hash": new_id("hash"),
        "created_at": at(0),
        "expires_at": at(expires),
    }
    return PairingToken(**(fields | extra))


async def test_device_round_trips_and_is_found_without_its_account(storage: Storage) -> None:
    account_id = await new_account(storage)
    phone = device(account_id, await _user(storage, account_id), push_token="apns-123")
    await storage.devices.add(phone)

    assert phone == await storage.devices.get(phone.id)
    assert await storage.devices.get("dev_missing") is None


async def test_a_duplicate_id_or_secret_hash_is_a_conflict(storage: Storage) -> None:
    account_id = await new_account(storage)
    user_id = await _user(storage, account_id)
    phone = device(account_id, user_id)
    await storage.devices.add(phone)

    with pytest.raises(ConflictError):
        await storage.devices.add(device(account_id, user_id, id=phone.id))
    with pytest.raises(ConflictError):
        await storage.devices.add(device(account_id, user_id, secret_hash=phone.secret_hash))


async def test_a_device_of_a_missing_account_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFoundError):
        await storage.devices.add(device("acct_missing", "user_missing"))


async def test_list_is_per_account_in_creation_order_and_filters_by_user(
    storage: Storage,
) -> None:
    account_id, other = await new_account(storage), await new_account(storage)
    ann = await _user(storage, account_id, "ann@example.com")
    bob = await _user(storage, account_id, "bob@example.com")
    later = device(account_id, ann, created=20)
    first = device(account_id, bob, created=10)
    await storage.devices.add(later)
    await storage.devices.add(first)
    await storage.devices.add(device(other, await _user(storage, other)))

    assert [first.id, later.id] == [d.id for d in await storage.devices.list(account_id)]
    assert [later.id] == [d.id for d in await storage.devices.list(account_id, user_id=ann)]


async def test_revoke_keeps_the_earliest_time_and_is_scoped_by_account(storage: Storage) -> None:
    account_id, other = await new_account(storage), await new_account(storage)
    phone = device(account_id, await _user(storage, account_id))
    await storage.devices.add(phone)

    first = await storage.devices.revoke(account_id, phone.id, at(10))
    again = await storage.devices.revoke(account_id, phone.id, at(20))

    assert at(10) == first.revoked_at == again.revoked_at
    with pytest.raises(NotFoundError):
        await storage.devices.revoke(other, phone.id, at(30))


async def test_set_push_token_replaces_and_clears_it(storage: Storage) -> None:
    account_id = await new_account(storage)
    phone = device(account_id, await _user(storage, account_id))
    await storage.devices.add(phone)

    set_ = await storage.devices.set_push_token(account_id, phone.id, "fcm-abc")
    cleared = await storage.devices.set_push_token(account_id, phone.id, None)

    assert "fcm-abc" == set_.push_token
    assert cleared.push_token is None
    assert await storage.devices.get(phone.id) == cleared
    with pytest.raises(NotFoundError):
        await storage.devices.set_push_token(account_id, "dev_missing", "x")


async def test_pairing_token_round_trips(storage: Storage) -> None:
    account_id = await new_account(storage)
    token = pairing(account_id, await _user(storage, account_id))
    await storage.pairings.add(token)

    assert token == await storage.pairings.get(token.id)
    assert await storage.pairings.get("pair_missing") is None
    with pytest.raises(ConflictError):
        await storage.pairings.add(pairing(account_id, token.user_id, token_hash=token.token_hash))


async def test_a_pairing_token_is_used_once(storage: Storage) -> None:
    account_id = await new_account(storage)
    token = pairing(account_id, await _user(storage, account_id))
    await storage.pairings.add(token)

    used = await storage.pairings.use(token.id, at=at(5), device_id="dev_1")
    again = await storage.pairings.use(token.id, at=at(6), device_id="dev_2")

    assert used is not None
    assert (at(5), "dev_1") == (used.used_at, used.device_id)
    assert again is None
    assert used == await storage.pairings.get(token.id)


async def test_an_expired_pairing_token_cannot_be_used(storage: Storage) -> None:
    account_id = await new_account(storage)
    token = pairing(account_id, await _user(storage, account_id), expires=60)
    await storage.pairings.add(token)

    assert await storage.pairings.use(token.id, at=at(60), device_id="dev_1") is None
    found = await storage.pairings.get(token.id)
    assert found is not None
    assert found.used_at is None
    with pytest.raises(NotFoundError):
        await storage.pairings.use("pair_missing", at=at(1), device_id="dev_1")


async def test_of_concurrent_uses_exactly_one_wins(storage: Storage) -> None:
    account_id = await new_account(storage)
    token = pairing(account_id, await _user(storage, account_id))
    await storage.pairings.add(token)

    results = await asyncio.gather(
        *(storage.pairings.use(token.id, at=at(1), device_id=f"dev_{n}") for n in range(8))
    )

    winners = [r for r in results if r is not None]
    assert 1 == len(winners)
    stored = await storage.pairings.get(token.id)
    assert stored is not None
    assert winners[0].device_id == stored.device_id
