"""Keys, users and teams."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.params import FromPath, JSONBody

from hub.allowlist import MAX_PATTERN_LENGTH, MAX_PATTERNS, PATTERN_SHAPE
from hub.errors import ConflictError, NotFoundError
from hub.identity import EMAIL_PATTERN, MAX_KEY_SECONDS, NAME_PATTERN
from hub.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from hub.records import ApiKey, Role, Team
from hub.wire import KeyCreated, KeyView, PasswordSet, TeamView, UserView, view_of
from server.api.deps import caller_of, hub_of
from server.api.fields import each, shaped
from server.auth import ADMIN, roles

Name = Annotated[str, shaped(NAME_PATTERN, min_length=1, max_length=100)]
Email = Annotated[str, shaped(EMAIL_PATTERN, min_length=3, max_length=320)]


class KeyCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    role: Role
    user_email: Email | None = None
    labels: dict[str, str] = {}
    # at most ten years; absent or null: the key never expires
    expires_in_seconds: Annotated[int, msgspec.Meta(ge=1, le=MAX_KEY_SECONDS)] | None = None
    # The tool allow-list: glob patterns over <server>__<tool>; empty means every tool.
    tools: Annotated[
        list[str], each(PATTERN_SHAPE, max_items=MAX_PATTERNS, max_length=MAX_PATTERN_LENGTH)
    ] = []


class UserCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Email
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""


class UserLink(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Identities to link; an empty string unlinks that channel, an absent one is kept."""

    slack: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    mattermost: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    email: Annotated[str, shaped(f"^$|{EMAIL_PATTERN}", max_length=320)] | None = None

    def given(self) -> dict[str, str]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not None}


class PasswordChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A user's new password (12 to 1024 characters) and the role their logins get (absent:
    the role they had, else viewer)."""

    password: Annotated[
        str, msgspec.Meta(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
    ]
    role: Role | None = None


class TeamCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    members: Annotated[list[str], each(EMAIL_PATTERN, max_length=320)] = []


def key_view(key: ApiKey, now: datetime) -> KeyView:
    status = "revoked" if key.revoked_at else ("active" if key.usable_at(now) else "expired")
    return KeyView(
        id=key.id,
        name=key.name,
        role=key.role,
        user_id=key.user_id,
        labels=dict(key.labels),
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        status=status,
        tools=list(key.tools),
    )


class KeyController(Controller):
    path = "/keys"
    tags = ["keys"]

    @post("/", opt=roles(ADMIN, raises=(NotFoundError,)))
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[KeyCreate]
    ) -> KeyCreated:
        """Create an API key. The key text is in the answer once and never again."""
        hub, caller = hub_of(request), caller_of(request)
        created = await hub.identity.create_key(
            caller.account_id,
            name=data.name,
            role=data.role,
            actor=caller.key_id,
            user_email=data.user_email,
            labels=data.labels,
            expires_in_seconds=data.expires_in_seconds,
            tools=data.tools,
        )
        return KeyCreated(key=key_view(created.key, hub.clock.now()), secret=created.secret)

    @get("/", opt=roles(ADMIN))
    async def list_keys(self, request: Request[Any, Any, Any]) -> list[KeyView]:
        """Every key of the account (without secrets)."""
        hub = hub_of(request)
        now = hub.clock.now()
        return [
            key_view(k, now) for k in await hub.identity.list_keys(caller_of(request).account_id)
        ]

    @post("/{key_id:str}/revoke", opt=roles(ADMIN), status_code=200)
    async def revoke(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> KeyView:
        """Revoke a key: it stops working at once."""
        hub, caller = hub_of(request), caller_of(request)
        key = await hub.identity.revoke_key(caller.account_id, key_id, actor=caller.key_id)
        return key_view(key, hub.clock.now())


class UserController(Controller):
    path = "/users"
    tags = ["users"]

    @post("/", opt=roles(ADMIN, raises=(ConflictError,)))
    async def add(self, request: Request[Any, Any, Any], data: JSONBody[UserCreate]) -> UserView:
        """Add a person who can approve requests or own keys."""
        caller = caller_of(request)
        user = await hub_of(request).identity.add_user(
            caller.account_id, email=data.email, name=data.name, actor=caller.key_id
        )
        return view_of(user, UserView)

    @get("/", opt=roles(ADMIN))
    async def list_users(self, request: Request[Any, Any, Any]) -> list[UserView]:
        found = await hub_of(request).identity.list_users(caller_of(request).account_id)
        return [view_of(u, UserView) for u in found]

    @post("/{user:str}/link", opt=roles(ADMIN), status_code=200)
    async def link(
        self, request: Request[Any, Any, Any], user: FromPath[str], data: JSONBody[UserLink]
    ) -> UserView:
        """Link a user's channel identities (``user`` is an email or a user id)."""
        caller = caller_of(request)
        linked = await hub_of(request).identity.link_user(
            caller.account_id, user, data.given(), actor=caller.key_id
        )
        return view_of(linked, UserView)

    @put("/{user:str}/password", opt=roles(ADMIN), status_code=200)
    async def set_password(
        self, request: Request[Any, Any, Any], user: FromPath[str], data: JSONBody[PasswordChange]
    ) -> PasswordSet:
        """Set a user's password (``user`` is an email or a user id) and the role their
        logins get; their access tokens stop working. The password is stored as a scrypt
        hash and never shown."""
        caller = caller_of(request)
        found, stored = await hub_of(request).logins.set_password(
            caller.account_id, user, data.password, role=data.role, actor=caller.key_id
        )
        return PasswordSet(
            user_id=found.id, email=found.email, role=stored.role, updated_at=stored.updated_at
        )


class TeamController(Controller):
    path = "/teams"
    tags = ["teams"]

    @post("/", opt=roles(ADMIN, raises=(ConflictError, NotFoundError)))
    async def add(self, request: Request[Any, Any, Any], data: JSONBody[TeamCreate]) -> TeamView:
        """Add a team of users (by email)."""
        caller = caller_of(request)
        team = await hub_of(request).identity.add_team(
            caller.account_id, name=data.name, members=data.members, actor=caller.key_id
        )
        return TeamView(
            id=team.id,
            name=team.name,
            members=[m.lower() for m in data.members],
            created_at=team.created_at,
        )

    @get("/", opt=roles(ADMIN))
    async def list_teams(self, request: Request[Any, Any, Any]) -> list[TeamView]:
        hub = hub_of(request)
        account = caller_of(request).account_id
        emails = {u.id: u.email for u in await hub.identity.list_users(account)}
        return [_team_view(t, emails) for t in await hub.identity.list_teams(account)]


def _team_view(team: Team, emails: dict[str, str]) -> TeamView:
    return TeamView(
        id=team.id,
        name=team.name,
        members=[emails.get(m, m) for m in team.members],
        created_at=team.created_at,
    )
