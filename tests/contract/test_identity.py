"""Accounts, users and teams."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from hub.errors import ConflictError, NotFoundError, ValidationError
from hub.ports import Storage
from hub.records import Account

from .records import T0, new_account, team, user


async def test_account_round_trips_and_is_found_by_id_and_name(storage: Storage) -> None:
    account = Account(id="acct_1", name="acme", created_at=T0)
    await storage.accounts.add(account)

    assert account == await storage.accounts.get("acct_1")
    assert account == await storage.accounts.get_by_name("acme")
    assert await storage.accounts.get("acct_missing") is None
    assert await storage.accounts.get_by_name("missing") is None


async def test_accounts_list_in_creation_order(storage: Storage) -> None:
    later = await new_account(storage, "later", created=20)
    first = await new_account(storage, "first", created=10)

    assert [first, later] == [a.id for a in await storage.accounts.list()]


@pytest.mark.parametrize("clash", ["id", "name"])
async def test_duplicate_account_conflicts(storage: Storage, clash: str) -> None:
    await storage.accounts.add(Account(id="acct_1", name="acme", created_at=T0))
    again = Account(
        id="acct_1" if clash == "id" else "acct_2",
        name="acme" if clash == "name" else "other",
        created_at=T0,
    )

    with pytest.raises(ConflictError):
        await storage.accounts.add(again)
    assert [a.id for a in await storage.accounts.list()] == ["acct_1"]


async def test_datetimes_come_back_aware_in_utc(storage: Storage) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    await storage.accounts.add(Account(id="acct_tz", name="tz", created_at=created))

    found = await storage.accounts.get("acct_tz")

    assert found is not None
    assert created == found.created_at
    assert timedelta(0) == found.created_at.utcoffset()
    assert datetime(2026, 3, 1, 12, 30, 15, 123456) == found.created_at.replace(tzinfo=None)


async def test_naive_datetimes_are_refused(storage: Storage) -> None:
    with pytest.raises(ValidationError):
        await storage.accounts.add(Account(id="a", name="a", created_at=datetime(2026, 1, 1)))
    assert await storage.accounts.get("a") is None


async def test_user_round_trips_and_is_found_by_email(storage: Storage) -> None:
    account_id = await new_account(storage)
    alice = user(account_id, "alice@example.com", name="Alice")
    await storage.users.add(alice)

    assert alice == await storage.users.get(account_id, alice.id)
    assert alice == await storage.users.get_by_email(account_id, "alice@example.com")
    assert await storage.users.get(account_id, "user_missing") is None
    assert await storage.users.get_by_email(account_id, "bob@example.com") is None


async def test_users_list_by_email(storage: Storage) -> None:
    account_id = await new_account(storage)
    for email in ["carol@x.io", "alice@x.io", "bob@x.io"]:
        await storage.users.add(user(account_id, email))

    assert [u.email for u in await storage.users.list(account_id)] == [
        "alice@x.io",
        "bob@x.io",
        "carol@x.io",
    ]


async def test_email_is_unique_per_account_only(storage: Storage) -> None:
    first, second = await new_account(storage), await new_account(storage)
    await storage.users.add(user(first, "alice@x.io"))

    with pytest.raises(ConflictError):
        await storage.users.add(user(first, "alice@x.io"))
    await storage.users.add(user(second, "alice@x.io"))

    assert len(await storage.users.list(first)) == 1
    assert len(await storage.users.list(second)) == 1


async def test_user_id_is_unique(storage: Storage) -> None:
    account_id = await new_account(storage)
    alice = user(account_id, "alice@x.io")
    await storage.users.add(alice)

    with pytest.raises(ConflictError):
        await storage.users.add(user(account_id, "other@x.io", id=alice.id))


async def test_user_of_unknown_account_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFoundError):
        await storage.users.add(user("acct_missing", "alice@x.io"))


async def test_users_of_one_account_are_invisible_to_another(storage: Storage) -> None:
    mine, theirs = await new_account(storage), await new_account(storage)
    alice = user(mine, "alice@x.io")
    await storage.users.add(alice)

    assert await storage.users.get(theirs, alice.id) is None
    assert await storage.users.get_by_email(theirs, "alice@x.io") is None
    assert list(await storage.users.list(theirs)) == []


async def test_team_members_round_trip_and_are_replaced(storage: Storage) -> None:
    account_id = await new_account(storage)
    oncall = team(account_id, "oncall", ("user_a", "user_b"))
    await storage.teams.add(oncall)

    assert oncall == await storage.teams.get_by_name(account_id, "oncall")
    changed = await storage.teams.set_members(account_id, "oncall", ["user_c"])

    assert changed.members == ("user_c",)
    assert changed == await storage.teams.get_by_name(account_id, "oncall")
    assert oncall.id == changed.id


async def test_team_rules(storage: Storage) -> None:
    mine, theirs = await new_account(storage), await new_account(storage)
    for name in ["ops", "dev"]:
        await storage.teams.add(team(mine, name))

    with pytest.raises(ConflictError):
        await storage.teams.add(team(mine, "ops"))
    with pytest.raises(NotFoundError):
        await storage.teams.set_members(mine, "missing", [])
    with pytest.raises(NotFoundError):
        await storage.teams.set_members(theirs, "ops", ["intruder"])
    with pytest.raises(NotFoundError):
        await storage.teams.add(team("acct_missing", "ops"))

    assert [t.name for t in await storage.teams.list(mine)] == ["dev", "ops"]
    assert list(await storage.teams.list(theirs)) == []
    assert await storage.teams.get_by_name(theirs, "ops") is None
    assert all(t.members == () for t in await storage.teams.list(mine))


async def test_user_identities_are_set_replaced_and_listed(storage: Storage) -> None:
    account = await new_account(storage, "acme")
    ada = user(account, "ada@example.com")
    await storage.users.add(ada)
    assert {} == (await storage.users.get(account, ada.id)).identities  # type: ignore[union-attr]

    linked = await storage.users.set_identities(
        account, ada.id, {"slack": "U123", "email": "ada@home.example"}
    )
    again = await storage.users.set_identities(account, ada.id, {"slack": "U999"})

    assert {"slack": "U123", "email": "ada@home.example"} == linked.identities
    assert {"slack": "U999"} == again.identities
    assert [again] == list(await storage.users.list(account))
    assert again == await storage.users.get_by_email(account, "ada@example.com")


async def test_identities_of_a_missing_or_foreign_user_are_not_found(storage: Storage) -> None:
    account = await new_account(storage, "acme")
    other = await new_account(storage, "other")
    ada = user(account, "ada@example.com")
    await storage.users.add(ada)

    with pytest.raises(NotFoundError):
        await storage.users.set_identities(account, "user_missing", {"slack": "U1"})
    with pytest.raises(NotFoundError):
        await storage.users.set_identities(other, ada.id, {"slack": "U1"})
    assert {} == (await storage.users.get(account, ada.id)).identities  # type: ignore[union-attr]


async def test_a_link_is_used_once(storage: Storage) -> None:
    account = await new_account(storage, "acme")

    first = await storage.used_links.use(account, "lnk_1", T0)
    second = await storage.used_links.use(account, "lnk_1", T0)
    other = await storage.used_links.use(account, "lnk_2", T0)

    assert (True, False, True) == (first, second, other)


async def test_using_a_link_of_a_missing_account_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFoundError):
        await storage.used_links.use("acct_missing", "lnk_1", T0)


async def test_concurrent_uses_of_one_link_have_one_winner(storage: Storage) -> None:
    account = await new_account(storage, "acme")

    results = await asyncio.gather(
        *(storage.used_links.use(account, "lnk_1", T0) for _ in range(8))
    )

    assert 1 == results.count(True)
