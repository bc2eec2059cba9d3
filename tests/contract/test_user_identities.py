"""Finding the user behind a channel identity (``UserStore.get_by_identity``): the lookup a
Slack, Mattermost or email click starts from (docs/decisions/0076)."""

from __future__ import annotations

from hub.ports import Storage

from .records import new_account, user


async def test_a_linked_identity_finds_its_user_on_its_channel_only(storage: Storage) -> None:
    account = await new_account(storage, "acme")
    other = await new_account(storage, "other")
    ada, bo = user(account, "ada@example.com"), user(account, "bo@example.com")
    await storage.users.add(ada)
    await storage.users.add(bo)
    linked = await storage.users.set_identities(
        account, ada.id, {"slack": "U123", "mattermost": "mm-ada"}
    )

    assert linked == await storage.users.get_by_identity(account, "slack", "U123")
    assert linked == await storage.users.get_by_identity(account, "mattermost", "mm-ada")
    assert await storage.users.get_by_identity(account, "mattermost", "U123") is None
    assert await storage.users.get_by_identity(account, "slack", "U999") is None
    assert await storage.users.get_by_identity(other, "slack", "U123") is None
    assert await storage.users.get_by_identity(account, "slack", "") is None


async def test_relinking_moves_the_identity_and_unlinking_drops_it(storage: Storage) -> None:
    account = await new_account(storage, "acme")
    ada = user(account, "ada@example.com")
    await storage.users.add(ada)
    await storage.users.set_identities(account, ada.id, {"slack": "U123", "email": "a@x.io"})

    moved = await storage.users.set_identities(account, ada.id, {"slack": "U999"})

    assert await storage.users.get_by_identity(account, "slack", "U123") is None
    assert await storage.users.get_by_identity(account, "email", "a@x.io") is None
    assert moved == await storage.users.get_by_identity(account, "slack", "U999")
    await storage.users.set_identities(account, ada.id, {})
    assert await storage.users.get_by_identity(account, "slack", "U999") is None


async def test_identities_a_user_is_added_with_are_found(storage: Storage) -> None:
    account = await new_account(storage, "acme")
    ada = user(account, "ada@example.com", identities={"slack": "U123"})
    await storage.users.add(ada)

    assert ada == await storage.users.get_by_identity(account, "slack", "U123")


async def test_an_identity_two_users_linked_finds_the_first_by_email(storage: Storage) -> None:
    # Linking does not refuse a second user (it never did); the lookup answers as the scan it
    # replaces did: the first user by email.
    account = await new_account(storage, "acme")
    zed, ada = user(account, "zed@example.com"), user(account, "ada@example.com")
    for person in (zed, ada):
        await storage.users.add(person)
        await storage.users.set_identities(account, person.id, {"slack": "USHARED"})

    found = await storage.users.get_by_identity(account, "slack", "USHARED")

    assert found is not None
    assert ada.id == found.id
