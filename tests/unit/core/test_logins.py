"""Password logins: scrypt hashes, the failed-login limits, and the access tokens a login
issues (hub/passwords.py, hub/login_limits.py, hub/logins.py, hub/access_tokens.py)."""

from __future__ import annotations

import msgspec
import pytest

from hub.access_tokens import token_id_of
from hub.auditing import Auditor
from hub.clock import FrozenClock
from hub.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
)
from hub.identity import IdentityService, KeyOwners
from hub.login_limits import LoginLimiter
from hub.logins import INVALID_LOGIN, LoginService
from hub.memory import InMemoryStorage
from hub.passwords import ScryptCost, hash_password, needs_rehash, verify_password
from hub.records import Role

CHEAP = ScryptCost(log_n=10)
SECRET = "correct horse battery staple"


# --- hashes ---------------------------------------------------------------------------------
def test_a_hash_carries_its_cost_and_a_random_salt() -> None:
    first, second = hash_password(SECRET, CHEAP), hash_password(SECRET, CHEAP)

    assert first.startswith("scrypt$ln=10,r=8,p=1$")
    assert first != second  # salted
    assert SECRET not in first
    assert verify_password(SECRET, first)
    assert verify_password(SECRET, second)
    assert not verify_password(SECRET + "!", first)
    assert not verify_password("", first)


def test_a_hash_made_at_another_cost_still_verifies_and_asks_for_a_rehash() -> None:
    old = hash_password(SECRET, ScryptCost(log_n=11))

    assert verify_password(SECRET, old)
    assert needs_rehash(old, CHEAP)
    assert not needs_rehash(hash_password(SECRET, CHEAP), CHEAP)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "bcrypt$2b$12$abc",
        "scrypt$ln=30,r=8,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",  # a cost nobody may ask for
        "scrypt$ln=10,r=8,p=1$$aGFzaA",
        "scrypt$ln=10,r=8,p=1$c2FsdA$!!",
    ],
)
def test_a_hash_this_module_cannot_read_matches_nothing(stored: str) -> None:
    assert not verify_password(SECRET, stored)
    assert needs_rehash(stored, CHEAP)


# --- limits ---------------------------------------------------------------------------------
def test_a_username_is_limited_then_recovers_when_its_failures_age_out() -> None:
    clock = FrozenClock()
    limiter = LoginLimiter(clock, per_username=3, per_address=100, window_seconds=60)
    for seconds in (0, 10, 20):
        clock.advance(seconds and 10)
        limiter.check("ann@example.com", "10.0.0.1")
        limiter.failed("ann@example.com", "10.0.0.1")

    with pytest.raises(RateLimitedError) as refused:
        limiter.check("ann@example.com", "10.0.0.2")
    assert 40 == refused.value.retry_after  # the first failure (t=0) leaves at t=60; now t=20
    limiter.check("bob@example.com", "10.0.0.1")  # another username is not limited

    clock.advance(39)
    with pytest.raises(RateLimitedError):
        limiter.check("ann@example.com", "10.0.0.1")
    clock.advance(1)
    limiter.check("ann@example.com", "10.0.0.1")


def test_an_address_is_limited_across_usernames_and_a_success_clears_only_the_username() -> None:
    clock = FrozenClock()
    limiter = LoginLimiter(clock, per_username=2, per_address=3, window_seconds=60)
    limiter.failed("ann@example.com", "10.0.0.1")
    limiter.failed("ann@example.com", "10.0.0.1")
    limiter.succeeded("ann@example.com")
    limiter.check("ann@example.com", "10.0.0.9")
    limiter.failed("bob@example.com", "10.0.0.1")

    with pytest.raises(RateLimitedError):
        limiter.check("carol@example.com", "10.0.0.1")
    limiter.check("carol@example.com", "10.0.0.2")


def test_the_limiter_keeps_a_bounded_number_of_keys() -> None:
    limiter = LoginLimiter(
        FrozenClock(), per_username=1, per_address=1000, window_seconds=60, max_keys=10
    )
    for n in range(100):
        limiter.failed(f"user{n}@example.com", "")

    limiter.check("user0@example.com", "")  # forgotten: the oldest went first
    with pytest.raises(RateLimitedError):
        limiter.check("user99@example.com", "")


# --- the service ----------------------------------------------------------------------------
class Logins(msgspec.Struct):
    storage: InMemoryStorage
    clock: FrozenClock
    identity: IdentityService
    service: LoginService
    account_id: str


@pytest.fixture
async def logins() -> Logins:
    storage, clock = InMemoryStorage(), FrozenClock()
    auditor = Auditor(storage.audit, clock)
    identity = IdentityService(storage, clock, auditor, cache_seconds=0)
    limiter = LoginLimiter(clock, per_username=3, per_address=10, window_seconds=300)
    service = LoginService(
        storage, clock, auditor, identity, limiter, token_seconds=600, cost=CHEAP
    )
    account = await identity.default_account()
    await identity.add_user(account.id, email="ann@example.com", name="Ann", actor="test")
    await service.set_password(account.id, "ann@example.com", SECRET, role=None, actor="test")
    return Logins(storage, clock, identity, service, account.id)


async def kinds(logins: Logins) -> list[str]:
    return [e.kind for e in await logins.storage.audit.all(logins.account_id)]


async def test_a_login_issues_a_token_that_acts_as_the_user_with_their_role(
    logins: Logins,
) -> None:
    await logins.service.set_password(
        logins.account_id, "ann@example.com", SECRET, role=Role.APPROVER, actor="test"
    )
    issued = await logins.service.login("  Ann@Example.com ", SECRET, address="10.0.0.1")

    caller = await logins.identity.authenticate(issued.text)

    assert issued.text.startswith("plat_")
    assert 600 == issued.expires_in
    assert (issued.token.id, Role.APPROVER, "ann@example.com") == (
        caller.key_id,
        caller.role,
        caller.name,
    )
    assert caller.user_id == issued.token.user_id
    assert f"token:{issued.token.id}" == caller.credential
    assert issued.token.id == token_id_of(issued.text)
    stored = await logins.storage.access_tokens.get(issued.token.id)
    assert stored is not None
    assert issued.text not in msgspec.json.encode(stored).decode()


async def test_a_first_password_without_a_role_logs_in_as_viewer(logins: Logins) -> None:
    issued = await logins.service.login("ann@example.com", SECRET)

    assert Role.VIEWER == (await logins.identity.authenticate(issued.text)).role


async def test_an_unknown_user_a_wrong_password_and_no_password_get_one_answer(
    logins: Logins,
) -> None:
    await logins.identity.add_user(
        logins.account_id, email="bob@example.com", name="", actor="test"
    )
    answers = []
    for username, password in (
        ("nobody@example.com", SECRET),
        ("ann@example.com", SECRET + "x"),
        ("bob@example.com", SECRET),
        ("", SECRET),
    ):
        with pytest.raises(AuthenticationError) as failed:
            await logins.service.login(username, password, address=f"10.0.0.{len(answers)}")
        answers.append(str(failed.value))

    assert [INVALID_LOGIN] * 4 == answers
    events = [e for e in await logins.storage.audit.all(logins.account_id) if "login" in e.kind]
    assert [
        ("auth.login_failed", "unknown user"),
        ("auth.login_failed", "wrong password"),
        ("auth.login_failed", "no password set"),
        ("auth.login_failed", "unknown user"),
    ] == [(e.kind, e.data["reason"]) for e in events]
    assert all(SECRET not in msgspec.json.encode(e).decode() for e in events)


async def test_failed_logins_trip_the_limit_which_recovers(logins: Logins) -> None:
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await logins.service.login("ann@example.com", "wrong password!!", address="a")
    with pytest.raises(RateLimitedError) as limited:
        await logins.service.login("ann@example.com", SECRET, address="b")  # even the right one
    assert 300 == limited.value.retry_after

    failures = [
        e.data["locked"]
        for e in await logins.storage.audit.all(logins.account_id)
        if e.kind == "auth.login_failed"
    ]
    assert [False, False, True] == failures  # the refused attempt itself is not recorded

    logins.clock.advance(300)
    issued = await logins.service.login("ann@example.com", SECRET, address="b")
    assert issued.text


async def test_a_token_stops_at_expiry_logout_a_new_password_and_without_its_user(
    logins: Logins,
) -> None:
    first = await logins.service.login("ann@example.com", SECRET)
    logins.clock.advance(600)
    with pytest.raises(AuthenticationError, match="expired"):
        await logins.identity.authenticate(first.text)

    second = await logins.service.login("ann@example.com", SECRET)
    caller = await logins.identity.authenticate(second.text)
    await logins.service.logout(caller)
    with pytest.raises(AuthenticationError, match="revoked"):
        await logins.identity.authenticate(second.text)

    third = await logins.service.login("ann@example.com", SECRET)
    await logins.service.set_password(
        logins.account_id, "ann@example.com", SECRET + "2", role=None, actor="test"
    )
    with pytest.raises(AuthenticationError, match="revoked"):
        await logins.identity.authenticate(third.text)

    fourth = await logins.service.login("ann@example.com", SECRET + "2")
    del logins.storage.users._s.users[fourth.token.user_id]  # no user removal exists yet
    with pytest.raises(AuthenticationError, match="no longer exists"):
        await logins.identity.authenticate(fourth.text)

    assert "auth.logout" in await kinds(logins)


async def test_a_forged_or_misshapen_token_is_refused(logins: Logins) -> None:
    issued = await logins.service.login("ann@example.com", SECRET)

    for forged in (issued.text[:-2] + "xx", "plat_0123456789abcdef_x", "plat_nope", "plat_"):
        with pytest.raises(AuthenticationError, match="invalid access token"):
            await logins.identity.authenticate(forged)


async def test_an_api_key_cannot_be_logged_out(logins: Logins) -> None:
    created = await logins.identity.create_key(
        logins.account_id, name="k", role=Role.ADMIN, actor="test"
    )
    caller = await logins.identity.authenticate(created.secret)

    with pytest.raises(PermissionDeniedError, match="keys revoke"):
        await logins.service.logout(caller)


async def test_passwords_have_a_minimum_and_a_maximum_length(logins: Logins) -> None:
    for bad in ("short", "x" * 1025):
        with pytest.raises(ValidationError) as refused:
            await logins.service.set_password(
                logins.account_id, "ann@example.com", bad, role=None, actor="test"
            )
        assert "password" == refused.value.field


async def test_a_login_stores_an_older_hash_again_at_the_current_cost(logins: Logins) -> None:
    user = await logins.identity.find_user(logins.account_id, "ann@example.com")
    stored = await logins.storage.passwords.get(logins.account_id, user.id)
    assert stored is not None
    older = msgspec.structs.replace(
        stored, password_hash=hash_password(SECRET, ScryptCost(log_n=11))
    )
    await logins.storage.passwords.set(older)

    await logins.service.login("ann@example.com", SECRET)

    again = await logins.storage.passwords.get(logins.account_id, user.id)
    assert again is not None
    assert again.password_hash.startswith("scrypt$ln=10,")
    assert verify_password(SECRET, again.password_hash)


async def test_the_user_behind_a_token_is_known_to_the_self_approval_check(
    logins: Logins,
) -> None:
    issued = await logins.service.login("ann@example.com", SECRET)
    owners = KeyOwners(logins.storage.api_keys, tokens=logins.storage.access_tokens)

    assert issued.token.user_id == await owners.owner(issued.token.id)
    assert await owners.owner("at_0000000000000000") is None


async def test_the_username_is_the_email_or_a_name_no_other_user_has(logins: Logins) -> None:
    add = logins.identity.add_user
    await add(logins.account_id, email="bo@example.com", name="your-username", actor="t")
    await add(logins.account_id, email="cy@example.com", name="Twin", actor="t")
    await add(logins.account_id, email="di@example.com", name="twin", actor="t")
    for email in ("bo@example.com", "cy@example.com"):
        await logins.service.set_password(logins.account_id, email, SECRET, role=None, actor="t")

    by_name = await logins.service.login("your-username", SECRET)
    assert "bo@example.com" == (await logins.identity.authenticate(by_name.text)).name
    by_email = await logins.service.login("Ann@example.com", SECRET)
    assert "ann@example.com" == (await logins.identity.authenticate(by_email.text)).name
    with pytest.raises(AuthenticationError, match=INVALID_LOGIN):
        await logins.service.login("twin", SECRET)  # two users have the name
    assert (await logins.service.login("ANN", SECRET)).token.user_id == by_email.token.user_id
