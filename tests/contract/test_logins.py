"""Users' passwords and the access tokens logins issue: every backend keeps only hashes,
scoped to a user of the account, revocable one by one or all of a user's at once."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from hub.errors import ConflictError, NotFoundError, ValidationError
from hub.ports import Storage
from hub.records import AccessToken, Role, UserPassword

from .records import at, new_account, user


def password(account_id: str, user_id: str, **extra: object) -> UserPassword:
    fields: dict[str, object] = {
        "account_id": account_id,
        "user_id": user_id,
        "password_hash": "scrypt$ln=10,r=8,p=1$c2FsdA$aGFzaA",
        "role": Role.ADMIN,
        "updated_at": at(0),
        **extra,
    }
    return msgspec.convert(fields, UserPassword)


def token(account_id: str, user_id: str, n: int, **extra: object) -> AccessToken:
    issued = AccessToken(
        id=f"at_{n:016x}",
        account_id=account_id,
        user_id=user_id,
        role=Role.AGENT,
        token_hash=f"{n:064x}",
        created_at=at(0),
        expires_at=at(3600),
    )
    return msgspec.structs.replace(issued, **extra)


async def person(storage: Storage, email: str = "ann@example.com") -> tuple[str, str]:
    account_id = await new_account(storage)
    found = user(account_id, email)
    await storage.users.add(found)
    return account_id, found.id


async def test_a_password_is_set_replaced_and_read_back(storage: Storage) -> None:
    account_id, user_id = await person(storage)
    assert await storage.passwords.get(account_id, user_id) is None

    first = password(account_id, user_id)
    await storage.passwords.set(first)
    assert first == await storage.passwords.get(account_id, user_id)

    second = password(
        account_id, user_id, password_hash="scrypt$ln=11,r=8,p=1$b3RoZXI$aGFzaDI", role="viewer"
    )
    await storage.passwords.set(second)
    found = await storage.passwords.get(account_id, user_id)
    assert second == found
    assert found is not None
    assert Role.VIEWER is found.role


async def test_a_password_needs_the_user_in_the_account(storage: Storage) -> None:
    account_id, user_id = await person(storage)
    other = await new_account(storage)

    with pytest.raises(NotFoundError):
        await storage.passwords.set(password(account_id, "user_missing"))
    with pytest.raises(NotFoundError):
        await storage.passwords.set(password(other, user_id))
    assert await storage.passwords.get(other, user_id) is None


async def test_a_token_round_trips_and_is_found_by_id_alone(storage: Storage) -> None:
    account_id, user_id = await person(storage)
    issued = token(account_id, user_id, 1)
    await storage.access_tokens.add(issued)

    assert issued == await storage.access_tokens.get(issued.id)
    assert await storage.access_tokens.get("at_missing") is None


async def test_a_token_id_or_hash_is_never_issued_twice(storage: Storage) -> None:
    account_id, user_id = await person(storage)
    await storage.access_tokens.add(token(account_id, user_id, 1))

    with pytest.raises(ConflictError):
        await storage.access_tokens.add(token(account_id, user_id, 1, token_hash="f" * 64))
    same_hash = msgspec.structs.replace(token(account_id, user_id, 2), token_hash=f"{1:064x}")
    with pytest.raises(ConflictError):
        await storage.access_tokens.add(same_hash)


async def test_a_token_needs_its_user_in_the_account(storage: Storage) -> None:
    account_id, user_id = await person(storage)
    other = await new_account(storage)

    with pytest.raises(NotFoundError):
        await storage.access_tokens.add(token(account_id, "user_missing", 1))
    with pytest.raises(NotFoundError):
        await storage.access_tokens.add(token(other, user_id, 2))


async def test_revoking_keeps_the_first_time_and_stays_in_the_account(storage: Storage) -> None:
    account_id, user_id = await person(storage)
    other = await new_account(storage)
    issued = token(account_id, user_id, 1)
    await storage.access_tokens.add(issued)

    revoked = await storage.access_tokens.revoke(account_id, issued.id, at(10))
    again = await storage.access_tokens.revoke(account_id, issued.id, at(20))

    assert at(10) == revoked.revoked_at == again.revoked_at
    assert revoked == await storage.access_tokens.get(issued.id)
    with pytest.raises(NotFoundError):
        await storage.access_tokens.revoke(other, issued.id, at(5))
    with pytest.raises(NotFoundError):
        await storage.access_tokens.revoke(account_id, "at_missing", at(5))
    with pytest.raises(ValidationError):
        await storage.access_tokens.revoke(account_id, issued.id, datetime(2026, 1, 1))


async def test_revoking_a_user_revokes_only_their_live_tokens(storage: Storage) -> None:
    account_id, ann = await person(storage)
    bob = user(account_id, "bob@example.com")
    await storage.users.add(bob)
    earlier = token(account_id, ann, 1, revoked_at=at(5))
    for issued in (earlier, token(account_id, ann, 2), token(account_id, ann, 3)):
        await storage.access_tokens.add(issued)
    await storage.access_tokens.add(token(account_id, bob.id, 4))

    assert 2 == await storage.access_tokens.revoke_user(account_id, ann, at(30))
    assert 0 == await storage.access_tokens.revoke_user(account_id, ann, at(40))

    times = [
        (await storage.access_tokens.get(f"at_{n:016x}")).revoked_at  # type: ignore[union-attr]
        for n in (1, 2, 3, 4)
    ]
    assert [at(5), at(30), at(30), None] == times


async def test_expired_tokens_are_removed_oldest_first_up_to_the_limit(storage: Storage) -> None:
    account_id, user_id = await person(storage)
    for n, expires in ((1, 100), (2, 200), (3, 300), (4, 5000)):
        await storage.access_tokens.add(token(account_id, user_id, n, expires_at=at(expires)))

    assert 1 == await storage.access_tokens.remove_expired(at(1000), limit=1)
    assert 2 == await storage.access_tokens.remove_expired(at(1000))
    assert 0 == await storage.access_tokens.remove_expired(at(1000))

    left = [await storage.access_tokens.get(f"at_{n:016x}") for n in (1, 2, 3, 4)]
    assert [None, None, None, at(5000)] == [t and t.expires_at for t in left]
    with pytest.raises(ValidationError):
        await storage.access_tokens.remove_expired(at(0), limit=-1)


async def test_times_come_back_in_utc(storage: Storage) -> None:
    account_id, user_id = await person(storage)
    await storage.access_tokens.add(token(account_id, user_id, 1))
    await storage.passwords.set(password(account_id, user_id))

    issued = await storage.access_tokens.get(f"at_{1:016x}")
    stored = await storage.passwords.get(account_id, user_id)

    assert issued is not None
    assert stored is not None
    assert UTC == issued.expires_at.tzinfo == stored.updated_at.tzinfo
