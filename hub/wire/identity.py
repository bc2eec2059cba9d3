"""Who is calling, API keys, users and teams as the REST API answers them."""

from __future__ import annotations

from datetime import datetime

import msgspec

from hub.records import Role


class Whoami(msgspec.Struct, frozen=True, kw_only=True):
    """The key a request was made with (``GET /api/v1/whoami``)."""

    key_id: str
    account_id: str = ""
    role: Role
    name: str = ""
    user_id: str | None = None
    labels: dict[str, str] = {}
    tools: tuple[str, ...] = ()  # the key's tool allow-list; empty: every tool
    via: str = ""  # the credential, when not the key itself


class KeyView(msgspec.Struct, frozen=True, kw_only=True):
    """A key as shown: never the hash, never the key."""

    id: str
    name: str
    role: Role
    user_id: str | None
    labels: dict[str, str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    status: str  # active | expired | revoked
    tools: list[str]  # the tool allow-list; empty: every tool


class KeyCreated(msgspec.Struct, frozen=True, kw_only=True):
    key: KeyView
    secret: str  # shown once


class UserView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    email: str
    name: str = ""
    created_at: datetime
    # channel -> this person's id on it (``preloop users link``), e.g. {"slack": "U123"}
    identities: dict[str, str] = {}


class AccessTokenIssued(msgspec.Struct, frozen=True, kw_only=True):
    """A password login's answer (``POST /api/v1/auth/token``), as OAuth2 clients expect it:
    the token text is in it once and never again."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - OAuth2's token type, not a secret
    expires_in: int  # seconds


class PasswordSet(msgspec.Struct, frozen=True, kw_only=True):
    """A user's password was set (``PUT /api/v1/users/{user}/password``): never the hash."""

    user_id: str
    email: str
    role: Role  # what the user's logins get
    updated_at: datetime
    tokens_revoked: bool = True  # the user's access tokens stopped working


class TeamView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    members: list[str]  # emails
    created_at: datetime
