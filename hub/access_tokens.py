"""Access tokens: the short-lived bearer a password login issues, ``plat_<16 hex>_<secret>``.

Like API keys (hub/keys.py) and runtime tokens (hub/model_gateway/runtime.py), only the
SHA-256 of the token text is stored (the secret part carries 256 bits, so a slow KDF adds
nothing) and the id in the clear makes authentication one indexed lookup. A token acts as its
user with the role it was issued with, in the user's account, until it expires, is revoked
(logout, a new password) or its user is gone (docs/decisions/0092).

``AccessTokens.caller`` is what ``IdentityService.authenticate`` asks for a ``plat_`` bearer,
so a token works wherever an API key does: REST, ``/mcp``, the WebSocket, the model gateway.
Tokens and users read from storage are reused for ``cache_seconds``, as API keys are
(decision 0005): a logout here drops the token at once; one on another replica is honoured
within that time.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable

from hub.cache import DEFAULT_SECONDS, Recent
from hub.clock import Clock
from hub.errors import AuthenticationError
from hub.keys import Caller, hash_key, same_secret
from hub.ports import Storage
from hub.records import AccessToken, User

PREFIX = "plat"
ID_PREFIX = "at_"
_HEX16 = re.compile(r"^[0-9a-f]{16}$")


def is_access_token(text: str) -> bool:
    return text.startswith(PREFIX + "_")


def new_token_text() -> tuple[str, str]:
    """A new token's id (``at_<hex>``) and its text, which exists only in the answer."""
    hex_id = secrets.token_hex(8)
    return ID_PREFIX + hex_id, f"{PREFIX}_{hex_id}_{secrets.token_urlsafe(32)}"


def token_id_of(text: str) -> str | None:
    """``at_<hex>`` from ``plat_<hex>_<secret>``, or ``None`` when the text is not shaped so."""
    parts = text.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not _HEX16.match(parts[1]) or not parts[2]:
        return None
    return ID_PREFIX + parts[1]


class AccessTokens:
    """Who an access token's bearer is."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        *,
        cache_seconds: float = DEFAULT_SECONDS,
        cache_timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._tokens: Recent[str, AccessToken] = Recent(cache_seconds, timer=cache_timer)
        self._users: Recent[tuple[str, str], User] = Recent(cache_seconds, timer=cache_timer)

    async def caller(self, presented: str) -> Caller:
        token_id = token_id_of(presented)
        token = await self._token(token_id) if token_id else None
        if token is None or not same_secret(hash_key(presented), token.token_hash):
            raise AuthenticationError("invalid access token")
        if token.revoked_at is not None:
            raise AuthenticationError(
                f"access token {token.id} was revoked; log in again (POST /api/v1/auth/token)"
            )
        if self._clock.now() >= token.expires_at:
            raise AuthenticationError(
                f"access token {token.id} expired at {token.expires_at.isoformat()}; log in "
                "again (POST /api/v1/auth/token)"
            )
        user = await self._user(token.account_id, token.user_id)
        if user is None:
            raise AuthenticationError(f"access token {token.id}: its user no longer exists")
        return Caller(
            key_id=token.id,
            account_id=token.account_id,
            role=token.role,
            name=user.email,
            user_id=user.id,
            via=f"token:{token.id}",
        )

    def drop(self, token_id: str) -> None:
        """Forget a token read before (it was revoked here)."""
        self._tokens.drop(token_id)

    def drop_user(self, account_id: str, user_id: str) -> None:
        """Forget a user and every token read before (their tokens were revoked here)."""
        self._users.drop((account_id, user_id))
        self._tokens.clear()

    async def _token(self, token_id: str) -> AccessToken | None:
        return await self._tokens.load_found(
            token_id, lambda: self._storage.access_tokens.get(token_id)
        )

    async def _user(self, account_id: str, user_id: str) -> User | None:
        return await self._users.load_found(
            (account_id, user_id), lambda: self._storage.users.get(account_id, user_id)
        )
