"""Accounts, users, teams and API keys: the use cases, independent of any framework."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import msgspec

from hub.access_tokens import ID_PREFIX as TOKEN_ID_PREFIX
from hub.access_tokens import AccessTokens, is_access_token
from hub.allowlist import check_patterns
from hub.auditing import Auditor
from hub.cache import DEFAULT_LIMIT, DEFAULT_SECONDS, Missing, Recent
from hub.clock import Clock
from hub.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from hub.ids import new_id
from hub.keys import Caller, hash_key, key_id_of, make_key_text, new_key_id, same_secret
from hub.ports import AccessTokenStore, ApiKeyStore, Storage
from hub.records import Account, ApiKey, Role, Team, User

DEFAULT_ACCOUNT = "default"
BOOTSTRAP_KEY_ID = "bootstrap-admin"
MIN_ADMIN_KEY_LENGTH = 32
MAX_KEY_SECONDS = 10 * 366 * 86400  # a key expires within ten years, or never
# The channels a person links an identity on (``preloop users link``).
LINKABLE_CHANNELS = ("slack", "mattermost", "email")
_PART = r"[^@\s\x1c-\x1f\x85]+"  # no @, no space (hub/patterns.py)
EMAIL_PATTERN = rf"^{_PART}@{_PART}\.{_PART}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._\-]{0,99}$"  # keys and teams
_EMAIL = re.compile(EMAIL_PATTERN)
_NAME = re.compile(NAME_PATTERN)


class CreatedKey(msgspec.Struct, frozen=True, kw_only=True):
    """A new key: ``secret`` is the only time the key text exists outside the caller."""

    key: ApiKey
    secret: str


class KeyOwners:
    """Whose each API key is: the user it was made for, or ``None`` (a key of no user); an
    access token (``at_...``, read from ``tokens``) is its user's.

    A key's owner is set when the key is created and never changes (no store operation
    reassigns a key, and key ids are random, never reused), so an owner once read is kept as
    long as the process runs, the oldest of ``limit`` going first. The self-approval check
    (``hub.approvals``) asks who owns the key that made a call at every decision; this way it
    reads that key once per process instead. Only the owner is kept: nothing that says whether
    a key may be used (revocation, expiry, role) is, so no revocation waits on this cache; an
    approver's own key is trusted through ``IdentityService.authenticate`` and its bounded
    cache (``PRELOOP_SERVER_CACHE_SECONDS``, docs/decisions/0005). A key not found is not
    kept."""

    def __init__(
        self,
        keys: ApiKeyStore,
        *,
        tokens: AccessTokenStore | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self._keys = keys
        self._tokens = tokens
        self._owners: Recent[str, str | None] = Recent(float("inf"), limit=limit)

    async def owner(self, key_id: str) -> str | None:
        known = self._owners.get(key_id)
        if not isinstance(known, Missing):
            return known
        if key_id.startswith(TOKEN_ID_PREFIX) and self._tokens is not None:
            token = await self._tokens.get(key_id)
            owner = None if token is None else token.user_id
        else:
            key = await self._keys.get(key_id)
            owner = None if key is None else key.user_id
        if owner is None:
            return None
        self._owners.put(key_id, owner)
        return owner


class IdentityService:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        auditor: Auditor,
        *,
        bootstrap_admin_key: str = "",
        cache_seconds: float = DEFAULT_SECONDS,
        cache_timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if bootstrap_admin_key and len(bootstrap_admin_key) < MIN_ADMIN_KEY_LENGTH:
            raise ValidationError(
                f"PRELOOP_ADMIN_KEY must be at least {MIN_ADMIN_KEY_LENGTH} characters"
            )
        self._storage = storage
        self._clock = clock
        self._auditor = auditor
        self._bootstrap = bootstrap_admin_key
        self._default_account: Account | None = None
        # Keys as last read, by id (hub/cache.py): revocation here drops the entry at once;
        # a revocation on another replica is honoured within ``cache_seconds``.
        self._keys: Recent[str, ApiKey] = Recent(cache_seconds, timer=cache_timer)
        # Access tokens from password logins (hub/logins.py), cached the same way.
        self.tokens = AccessTokens(
            storage, clock, cache_seconds=cache_seconds, cache_timer=cache_timer
        )

    # --- accounts -------------------------------------------------------------------------
    async def default_account(self) -> Account:
        if self._default_account is None:
            account = await self._storage.accounts.get_by_name(DEFAULT_ACCOUNT)
            if account is None:
                account = Account(
                    id=new_id("acct"), name=DEFAULT_ACCOUNT, created_at=self._clock.now()
                )
                try:
                    await self._storage.accounts.add(account)
                except ConflictError:  # another replica created it first
                    account = await self._storage.accounts.get_by_name(DEFAULT_ACCOUNT)
                    assert account is not None
            self._default_account = account
        return self._default_account

    # --- authentication -------------------------------------------------------------------
    async def authenticate(self, presented: str) -> Caller:
        """The caller behind a bearer key or a login's access token (``plat_...``), or
        ``AuthenticationError`` saying what is wrong."""
        presented = presented.strip()
        if not presented:
            raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
        if self._bootstrap and same_secret(presented, self._bootstrap):
            account = await self.default_account()
            return Caller(
                key_id=BOOTSTRAP_KEY_ID,
                account_id=account.id,
                role=Role.ADMIN,
                name="PRELOOP_ADMIN_KEY",
            )
        if is_access_token(presented):
            return await self.tokens.caller(presented)
        key_id = key_id_of(presented)
        key = await self._key(key_id) if key_id else None
        if key is None or not same_secret(hash_key(presented), key.key_hash):
            raise AuthenticationError("invalid API key")
        now = self._clock.now()
        if key.revoked_at is not None:
            raise AuthenticationError(f"API key {key.id} was revoked")
        if not key.usable_at(now):
            raise AuthenticationError(f"API key {key.id} has expired")
        return Caller(
            key_id=key.id,
            account_id=key.account_id,
            role=key.role,
            name=key.name,
            user_id=key.user_id,
            labels=dict(key.labels),
            tools=key.tools,
        )

    async def _key(self, key_id: str) -> ApiKey | None:
        return await self._keys.load_found(key_id, lambda: self._storage.api_keys.get(key_id))

    # --- keys -----------------------------------------------------------------------------
    async def create_key(
        self,
        account_id: str,
        *,
        name: str,
        role: Role,
        actor: str,
        user_email: str | None = None,
        labels: dict[str, str] | None = None,
        expires_in_seconds: int | None = None,
        tools: Sequence[str] = (),
    ) -> CreatedKey:
        """A new key. ``tools`` is its tool allow-list (glob patterns, hub/allowlist.py)."""
        _check_name(name, "key name")
        allowed_tools = check_patterns(tools)
        user_id = None
        if user_email:
            user = await self._storage.users.get_by_email(account_id, user_email)
            if user is None:
                raise NotFoundError(f"no user with email {user_email!r}")
            user_id = user.id
        if expires_in_seconds is not None and not 0 < expires_in_seconds <= MAX_KEY_SECONDS:
            raise ValidationError(
                f"expires_in_seconds must be between 1 and {MAX_KEY_SECONDS} (ten years); "
                "leave it out for a key that never expires"
            )
        now = self._clock.now()
        key_id = new_key_id()
        secret = make_key_text(key_id)
        key = ApiKey(
            id=key_id,
            account_id=account_id,
            name=name,
            role=role,
            key_hash=hash_key(secret),
            user_id=user_id,
            labels=dict(labels or {}),
            created_at=now,
            expires_at=now + timedelta(seconds=expires_in_seconds) if expires_in_seconds else None,
            tools=allowed_tools,
        )
        await self._storage.api_keys.add(key)
        details: dict[str, Any] = {"key_id": key.id, "name": name, "role": role.value}
        if allowed_tools:
            details["tools"] = list(allowed_tools)
        await self._auditor.record(account_id, "key.created", actor, details)
        return CreatedKey(key=key, secret=secret)

    async def list_keys(self, account_id: str) -> Sequence[ApiKey]:
        return await self._storage.api_keys.list(account_id)

    async def revoke_key(self, account_id: str, key_id: str, *, actor: str) -> ApiKey:
        key = await self._storage.api_keys.get(key_id)
        if key is None or key.account_id != account_id:
            raise NotFoundError(f"no API key {key_id!r}")
        revoked = await self._storage.api_keys.revoke(account_id, key_id, self._clock.now())
        self._keys.drop(key_id)
        await self._auditor.record(account_id, "key.revoked", actor, {"key_id": key_id})
        return revoked

    # --- users and teams ------------------------------------------------------------------
    async def add_user(self, account_id: str, *, email: str, name: str, actor: str) -> User:
        if not _EMAIL.match(email):
            raise ValidationError(f"not an email address: {email!r}")
        user = User(
            id=new_id("user"),
            account_id=account_id,
            email=email.lower(),
            name=name,
            created_at=self._clock.now(),
        )
        try:
            await self._storage.users.add(user)
        except ConflictError as exc:
            raise ConflictError(f"a user with email {email!r} exists") from exc
        await self._auditor.record(
            account_id, "user.added", actor, {"user_id": user.id, "email": user.email}
        )
        return user

    async def list_users(self, account_id: str) -> Sequence[User]:
        return await self._storage.users.list(account_id)

    async def find_user(self, account_id: str, user: str) -> User:
        """A user by email or id."""
        found = await self._storage.users.get_by_email(account_id, user.lower())
        if found is None:
            found = await self._storage.users.get(account_id, user)
        if found is None:
            raise NotFoundError(f"no user {user!r} (give an email or a user id)")
        return found

    async def caller_for_user(self, account_id: str, user_id: str, *, via: str) -> Caller:
        """The user acting in person through a channel (an email link, a chat button): their
        strongest deciding role among their usable keys, ``via`` the channel's credential
        (``slack:<id>``, ``email:<link id>``…). ``PermissionDeniedError`` when they hold none
        (a user without an approver or admin key decides nothing)."""
        user = await self._storage.users.get(account_id, user_id)
        if user is None:
            raise PermissionDeniedError("this person is no longer a user of the account")
        now = self._clock.now()
        roles = {
            k.role
            for k in await self._storage.api_keys.list(account_id)
            if k.user_id == user.id and k.usable_at(now)
        }
        role = next((r for r in (Role.ADMIN, Role.APPROVER) if r in roles), None)
        if role is None:
            raise PermissionDeniedError(
                f"{user.email} holds no usable approver or admin key, so may not decide"
            )
        return Caller(
            key_id=user.id,
            account_id=account_id,
            role=role,
            name=user.email,
            user_id=user.id,
            via=via,
        )

    async def link_user(
        self, account_id: str, user: str, identities: Mapping[str, str], *, actor: str
    ) -> User:
        """Link (or, with an empty value, unlink) a user's channel identities: the id a
        channel knows the person by. Identities not named keep their value."""
        unknown = sorted(set(identities) - set(LINKABLE_CHANNELS))
        if unknown:
            raise ValidationError(
                f"cannot link {', '.join(unknown)}; channels: {', '.join(LINKABLE_CHANNELS)}"
            )
        email = identities.get("email")
        if email and not _EMAIL.match(email):
            raise ValidationError(f"not an email address: {email!r}")
        found = await self.find_user(account_id, user)
        merged = dict(found.identities)
        for channel, value in identities.items():
            value = value.strip()
            if value:
                merged[channel] = value.lower() if channel == "email" else value
            else:
                merged.pop(channel, None)
        linked = await self._storage.users.set_identities(account_id, found.id, merged)
        await self._auditor.record(
            account_id,
            "user.linked",
            actor,
            {"user_id": found.id, "identities": dict(identities)},
        )
        return linked

    async def add_team(
        self, account_id: str, *, name: str, members: Sequence[str], actor: str
    ) -> Team:
        _check_name(name, "team name")
        member_ids: list[str] = []
        for email in members:
            user = await self._storage.users.get_by_email(account_id, email.lower())
            if user is None:
                raise NotFoundError(f"no user with email {email!r}; add it with 'users add'")
            member_ids.append(user.id)
        team = Team(
            id=new_id("team"),
            account_id=account_id,
            name=name,
            members=tuple(member_ids),
            created_at=self._clock.now(),
        )
        try:
            await self._storage.teams.add(team)
        except ConflictError as exc:
            raise ConflictError(f"a team named {name!r} exists") from exc
        await self._auditor.record(
            account_id, "team.added", actor, {"team": name, "members": list(members)}
        )
        return team

    async def list_teams(self, account_id: str) -> Sequence[Team]:
        return await self._storage.teams.list(account_id)


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name):
        raise ValidationError(
            f"invalid {what} {name!r}: 1-100 letters, digits, spaces, '.', '_' or '-'"
        )
