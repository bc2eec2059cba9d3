"""Password logins: users' passwords, and the access tokens a login exchanges one for.

``set_password`` stores a user's password as a scrypt hash (hub/passwords.py) with the role
its logins get; ``login`` checks a username (the user's email, or their name when no other
user has it) and password and issues an access token (hub/access_tokens.py) that works
wherever an API key does until it expires or is revoked (``logout``, a new password).
Decisions 0092 (passwords and tokens) and 0093 (failed logins).

A login answers the same ``invalid username or password`` whether the user is unknown, has
no password or gave a wrong one, and takes as long: an unknown user's password is checked
against a dummy hash of the same cost. Hashing runs off the event loop (``asyncio.to_thread``),
at most ``HASH_SLOTS`` at a time so a burst of logins cannot take every core or the memory
scrypt needs. Failed logins are limited per username and per client address
(hub/login_limits.py) and audited; a password never reaches the audit log or an error.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import msgspec

from hub.access_tokens import ID_PREFIX, new_token_text
from hub.auditing import Auditor
from hub.clock import Clock
from hub.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
)
from hub.identity import IdentityService
from hub.keys import Caller, hash_key
from hub.login_limits import LoginLimiter
from hub.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    ScryptCost,
    hash_password,
    needs_rehash,
    verify_password,
)
from hub.ports import Storage
from hub.records import AccessToken, Role, User, UserPassword

log = logging.getLogger("preloop.logins")

MAX_USERNAME_LENGTH = 320  # an email
HASH_SLOTS = 2
DEFAULT_ROLE = Role.VIEWER  # a first password without a role: the least that can log in
INVALID_LOGIN = "invalid username or password"
CLEANUP_AFTER = timedelta(days=1)  # expired tokens are deleted this long after expiry


class IssuedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A new access token; ``text`` exists only here, once."""

    token: AccessToken
    text: str
    expires_in: int


class LoginService:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        auditor: Auditor,
        identity: IdentityService,
        limiter: LoginLimiter,
        *,
        token_seconds: int = 3600,
        cost: ScryptCost | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._auditor = auditor
        self._identity = identity
        self._limiter = limiter
        self._token_seconds = token_seconds
        self._cost = cost or ScryptCost()
        self._slots = asyncio.Semaphore(HASH_SLOTS)
        self._dummy: str | None = None  # a hash to check unknown users' passwords against

    @property
    def token_seconds(self) -> int:
        return self._token_seconds

    # --- passwords ------------------------------------------------------------------------
    async def set_password(
        self, account_id: str, user: str, password: str, *, role: Role | None, actor: str
    ) -> tuple[User, UserPassword]:
        """Set ``user``'s (an email or a user id) password, and the role its logins get
        (``None``: the role it had, else viewer). The user's access tokens are revoked."""
        self.check_password(password)
        found = await self._identity.find_user(account_id, user)
        before = await self._storage.passwords.get(account_id, found.id)
        role = role or (before.role if before is not None else DEFAULT_ROLE)
        stored = UserPassword(
            account_id=account_id,
            user_id=found.id,
            password_hash=await self._hash(password),
            role=role,
            updated_at=self._clock.now(),
        )
        await self._storage.passwords.set(stored)
        revoked = await self._storage.access_tokens.revoke_user(
            account_id, found.id, self._clock.now()
        )
        self._identity.tokens.drop_user(account_id, found.id)
        await self._auditor.record(
            account_id,
            "user.password_set",
            actor,
            {"user_id": found.id, "role": role.value, "tokens_revoked": revoked},
        )
        return found, stored

    def check_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValidationError(
                f"password: at least {MIN_PASSWORD_LENGTH} characters", field="password"
            )
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValidationError(
                f"password: at most {MAX_PASSWORD_LENGTH} characters", field="password"
            )

    # --- logins ---------------------------------------------------------------------------
    async def login(self, username: str, password: str, *, address: str = "") -> IssuedToken:
        """An access token for the user whose email (or unique name) is ``username``;
        ``address`` is the client's (for the per-address limit and the audit).
        ``AuthenticationError`` with one message whatever failed; ``RateLimitedError`` after
        too many failures."""
        username = username.strip().lower()
        if len(username) > MAX_USERNAME_LENGTH:  # blank: no such user, a failed login
            raise ValidationError(
                f"username: the user's email, 1-{MAX_USERNAME_LENGTH} characters",
                field="username",
            )
        if not password or len(password) > MAX_PASSWORD_LENGTH:  # any length once set
            raise ValidationError(f"password: 1-{MAX_PASSWORD_LENGTH} characters", field="password")
        account = await self._identity.default_account()
        try:
            self._limiter.check(username, address)
        except RateLimitedError:
            log.warning("login refused: too many failures (user %r, address %r)", username, address)
            raise
        dummy = await self._dummy_hash()  # made by the first login, whoever logs in
        user = await self._user(account.id, username)
        stored = await self._storage.passwords.get(account.id, user.id) if user else None
        if stored is None:
            await self._verify(password, dummy)  # as long as a real check
            reason = "unknown user" if user is None else "no password set"
        elif not await self._verify(password, stored.password_hash):
            reason = "wrong password"
        else:
            assert user is not None
            return await self._issue(user, stored, password, address)
        await self._failed(account.id, username, address, reason)
        raise AuthenticationError(INVALID_LOGIN)

    async def _user(self, account_id: str, username: str) -> User | None:
        """The user whose email is ``username``, else the one user whose name it is (ignoring
        case); ``None`` when there is none, or several share the name."""
        user = await self._storage.users.get_by_email(account_id, username)
        if user is not None or not username:
            return user
        named = [
            u for u in await self._storage.users.list(account_id) if u.name.lower() == username
        ]
        return named[0] if len(named) == 1 else None

    async def logout(self, caller: Caller) -> AccessToken:
        """Revoke the access token ``caller`` authenticated with."""
        if not caller.key_id.startswith(ID_PREFIX):
            raise PermissionDeniedError(
                "only an access token from a login can be logged out; revoke an API key with "
                "'preloop keys revoke'"
            )
        token = await self._storage.access_tokens.revoke(
            caller.account_id, caller.key_id, self._clock.now()
        )
        self._identity.tokens.drop(token.id)
        await self._auditor.record(
            caller.account_id,
            "auth.logout",
            caller.user_id or caller.key_id,
            {"token_id": token.id},
        )
        return token

    async def _issue(
        self, user: User, stored: UserPassword, password: str, address: str
    ) -> IssuedToken:
        self._limiter.succeeded(user.email)
        if needs_rehash(stored.password_hash, self._cost):  # the cost was raised since
            rehashed = msgspec.structs.replace(stored, password_hash=await self._hash(password))
            await self._storage.passwords.set(rehashed)
        now = self._clock.now()
        token_id, text = new_token_text()
        token = AccessToken(
            id=token_id,
            account_id=user.account_id,
            user_id=user.id,
            role=stored.role,
            token_hash=hash_key(text),
            created_at=now,
            expires_at=now + timedelta(seconds=self._token_seconds),
        )
        await self._storage.access_tokens.add(token)
        await self._auditor.record(
            user.account_id,
            "auth.login",
            user.id,
            {
                "user_id": user.id,
                "email": user.email,
                "token_id": token.id,
                "role": token.role.value,
                "address": address,
                "expires_at": token.expires_at.isoformat(),
            },
        )
        await self._storage.access_tokens.remove_expired(now - CLEANUP_AFTER, limit=100)
        return IssuedToken(token=token, text=text, expires_in=self._token_seconds)

    async def _failed(self, account_id: str, username: str, address: str, reason: str) -> None:
        self._limiter.failed(username, address)
        locked = True
        try:
            self._limiter.check(username, address)
            locked = False
        except RateLimitedError:
            pass
        await self._auditor.record(
            account_id,
            "auth.login_failed",
            "anonymous",
            {"username": username, "address": address, "reason": reason, "locked": locked},
        )

    async def _hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(hash_password, password, self._cost)

    async def _verify(self, password: str, stored: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(verify_password, password, stored)

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = await self._hash("not a password anyone has")
        return self._dummy
