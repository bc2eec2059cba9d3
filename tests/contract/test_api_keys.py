"""API keys: lookup across accounts, revocation, last use."""

from __future__ import annotations

import pytest

from hub.errors import ConflictError, NotFoundError
from hub.ports import Storage
from hub.records import Role

from .records import api_key, at, new_account


async def test_key_round_trips_with_labels_and_optional_times(storage: Storage) -> None:
    account_id = await new_account(storage)
    key = api_key(
        account_id,
        role=Role.APPROVER,
        user_id="user_1",
        labels={"team": "ops", "env": "prod"},
        expires_at=at(3600),
    )
    await storage.api_keys.add(key)

    found = await storage.api_keys.get(key.id)

    assert key == found
    assert found is not None
    assert Role.APPROVER is found.role
    assert await storage.api_keys.get("key_missing") is None


async def test_key_tool_allow_list_round_trips_and_defaults_to_empty(storage: Storage) -> None:
    account_id = await new_account(storage)
    limited = api_key(account_id, tools=("github__*", "db__query", "*__read_?"))
    unlimited = api_key(account_id, created=10)
    await storage.api_keys.add(limited)
    await storage.api_keys.add(unlimited)

    found = await storage.api_keys.get(limited.id)

    assert limited == found
    assert found is not None
    assert ("github__*", "db__query", "*__read_?") == found.tools
    assert [("github__*", "db__query", "*__read_?"), ()] == [
        k.tools for k in await storage.api_keys.list(account_id)
    ]
    revoked = await storage.api_keys.revoke(account_id, limited.id, at(10))
    assert limited.tools == revoked.tools


async def test_get_finds_a_key_without_knowing_its_account(storage: Storage) -> None:
    first, second = await new_account(storage), await new_account(storage)
    theirs = api_key(second)
    await storage.api_keys.add(api_key(first))
    await storage.api_keys.add(theirs)

    assert theirs == await storage.api_keys.get(theirs.id)


async def test_keys_list_in_creation_order_per_account(storage: Storage) -> None:
    mine, theirs = await new_account(storage), await new_account(storage)
    late, early = api_key(mine, created=20), api_key(mine, created=10)
    for key in (late, early, api_key(theirs)):
        await storage.api_keys.add(key)

    assert [early.id, late.id] == [k.id for k in await storage.api_keys.list(mine)]


@pytest.mark.parametrize("clash", ["id", "key_hash"])
async def test_duplicate_key_conflicts(storage: Storage, clash: str) -> None:
    account_id = await new_account(storage)
    key = api_key(account_id)
    await storage.api_keys.add(key)

    with pytest.raises(ConflictError):
        await storage.api_keys.add(api_key(account_id, **{clash: getattr(key, clash)}))
    assert [key] == list(await storage.api_keys.list(account_id))


async def test_key_of_unknown_account_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFoundError):
        await storage.api_keys.add(api_key("acct_missing"))


async def test_revoke_is_idempotent_and_keeps_the_earliest_time(storage: Storage) -> None:
    account_id = await new_account(storage)
    key = api_key(account_id)
    await storage.api_keys.add(key)

    first = await storage.api_keys.revoke(account_id, key.id, at(100))
    again = await storage.api_keys.revoke(account_id, key.id, at(200))
    earlier = await storage.api_keys.revoke(account_id, key.id, at(50))

    assert at(100) == first.revoked_at
    assert at(100) == again.revoked_at
    assert at(50) == earlier.revoked_at
    assert earlier == await storage.api_keys.get(key.id)
    assert not earlier.usable_at(at(60))


async def test_revoke_needs_the_key_in_that_account(storage: Storage) -> None:
    mine, theirs = await new_account(storage), await new_account(storage)
    key = api_key(mine)
    await storage.api_keys.add(key)

    with pytest.raises(NotFoundError):
        await storage.api_keys.revoke(theirs, key.id, at(1))
    with pytest.raises(NotFoundError):
        await storage.api_keys.revoke(mine, "key_missing", at(1))
    found = await storage.api_keys.get(key.id)
    assert found is not None
    assert found.revoked_at is None


async def test_touch_records_the_last_use(storage: Storage) -> None:
    account_id = await new_account(storage)
    key = api_key(account_id)
    await storage.api_keys.add(key)

    await storage.api_keys.touch(key.id, at(5))
    await storage.api_keys.touch(key.id, at(9))

    found = await storage.api_keys.get(key.id)
    assert found is not None
    assert at(9) == found.last_used_at
    with pytest.raises(NotFoundError):
        await storage.api_keys.touch("key_missing", at(1))
