"""Accounts, users, teams and API keys in SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import case, delete, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import NotFoundError
from hub.records import Account, ApiKey, Team, User
from server.db import tables as t
from server.db.stores._base import SqlStore, to_record, to_values
from server.db.tables import UtcDateTime


def _no_account(account_id: str) -> str:
    return f"account {account_id!r} does not exist"


class SqlAccountStore(SqlStore):
    async def add(self, account: Account) -> None:
        conflict = f"account {account.id!r} or name {account.name!r} exists"
        async with self._db.write(conflict=conflict) as conn:
            await conn.execute(insert(t.accounts).values(to_values(account)))

    async def get(self, account_id: str) -> Account | None:
        return await self._first(select(t.accounts).where(t.accounts.c.id == account_id), Account)

    async def get_by_name(self, name: str) -> Account | None:
        return await self._first(select(t.accounts).where(t.accounts.c.name == name), Account)

    async def list(self) -> Sequence[Account]:
        c = t.accounts.c
        return await self._all(select(t.accounts).order_by(c.created_at, c.id), Account)


class SqlUserStore(SqlStore):
    async def add(self, user: User) -> None:
        conflict = f"user {user.id!r} or email {user.email!r} exists"
        async with self._db.write(conflict=conflict, missing=_no_account(user.account_id)) as conn:
            await conn.execute(insert(t.users).values(to_values(user)))
            await _index_identities(conn, user.account_id, user.id, user.identities)

    async def get(self, account_id: str, user_id: str) -> User | None:
        c = t.users.c
        stmt = select(t.users).where(c.account_id == account_id, c.id == user_id)
        return await self._first(stmt, User)

    async def get_by_email(self, account_id: str, email: str) -> User | None:
        c = t.users.c
        stmt = select(t.users).where(c.account_id == account_id, c.email == email)
        return await self._first(stmt, User)

    async def get_by_identity(self, account_id: str, channel: str, external_id: str) -> User | None:
        c, linked = t.users.c, t.user_identities.c
        stmt = (
            select(t.users)
            .join(t.user_identities, linked.user_id == c.id)
            .where(
                linked.account_id == account_id,
                linked.channel == channel,
                linked.external_id == external_id,
            )
            .order_by(c.email)
            .limit(1)
        )
        return await self._first(stmt, User)

    async def list(self, account_id: str) -> Sequence[User]:
        c = t.users.c
        return await self._all(
            select(t.users).where(c.account_id == account_id).order_by(c.email), User
        )

    async def set_identities(
        self, account_id: str, user_id: str, identities: Mapping[str, str]
    ) -> User:
        c = t.users.c
        stmt = (
            update(t.users)
            .where(c.account_id == account_id, c.id == user_id)
            .values(identities=dict(identities))
            .returning(*c)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).first()
            if row is not None:
                linked = t.user_identities.c
                await conn.execute(delete(t.user_identities).where(linked.user_id == user_id))
                await _index_identities(conn, account_id, user_id, identities)
        if row is None:
            raise NotFoundError(f"user {user_id!r} does not exist")
        return to_record(row, User)


async def _index_identities(
    conn: AsyncConnection, account_id: str, user_id: str, identities: Mapping[str, str]
) -> None:
    """The rows of ``t.user_identities`` for a user's identities (none for an empty id)."""
    rows = [
        {"user_id": user_id, "channel": channel, "account_id": account_id, "external_id": value}
        for channel, value in identities.items()
        if value
    ]
    if rows:
        await conn.execute(insert(t.user_identities), rows)


class SqlUsedLinkStore(SqlStore):
    async def use(self, account_id: str, link_id: str, at: datetime) -> bool:
        values = {"id": link_id, "account_id": account_id, "used_at": at}
        stmt = self._db.insert_missing(t.used_links, values, key=("id",))
        async with self._db.write(missing=_no_account(account_id)) as conn:
            result = await conn.execute(stmt)
        return bool(getattr(result, "rowcount", 0) == 1)


class SqlTeamStore(SqlStore):
    async def add(self, team: Team) -> None:
        conflict = f"team {team.id!r} or name {team.name!r} exists"
        async with self._db.write(conflict=conflict, missing=_no_account(team.account_id)) as conn:
            await conn.execute(insert(t.teams).values(to_values(team)))

    async def get_by_name(self, account_id: str, name: str) -> Team | None:
        c = t.teams.c
        stmt = select(t.teams).where(c.account_id == account_id, c.name == name)
        return await self._first(stmt, Team)

    async def set_members(self, account_id: str, name: str, members: Sequence[str]) -> Team:
        c = t.teams.c
        stmt = (
            update(t.teams)
            .where(c.account_id == account_id, c.name == name)
            .values(members=list(members))
            .returning(*c)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFoundError(f"team {name!r} does not exist")
        return to_record(row, Team)

    async def list(self, account_id: str) -> Sequence[Team]:
        c = t.teams.c
        return await self._all(
            select(t.teams).where(c.account_id == account_id).order_by(c.name), Team
        )


class SqlApiKeyStore(SqlStore):
    async def add(self, key: ApiKey) -> None:
        conflict = f"API key {key.id!r} or its hash exists"
        async with self._db.write(conflict=conflict, missing=_no_account(key.account_id)) as conn:
            await conn.execute(insert(t.api_keys).values(to_values(key)))

    async def get(self, key_id: str) -> ApiKey | None:
        return await self._first(select(t.api_keys).where(t.api_keys.c.id == key_id), ApiKey)

    async def list(self, account_id: str) -> Sequence[ApiKey]:
        c = t.api_keys.c
        stmt = select(t.api_keys).where(c.account_id == account_id).order_by(c.created_at, c.id)
        return await self._all(stmt, ApiKey)

    async def revoke(self, account_id: str, key_id: str, at: datetime) -> ApiKey:
        c = t.api_keys.c
        at_value = literal(at, UtcDateTime())
        earliest = case(
            (c.revoked_at.is_(None) | (c.revoked_at > at_value), at_value), else_=c.revoked_at
        )
        stmt = (
            update(t.api_keys)
            .where(c.account_id == account_id, c.id == key_id)
            .values(revoked_at=earliest)
            .returning(*c)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFoundError(f"API key {key_id!r} does not exist")
        return to_record(row, ApiKey)

    async def touch(self, key_id: str, at: datetime) -> None:
        stmt = update(t.api_keys).where(t.api_keys.c.id == key_id).values(last_used_at=at)
        async with self._db.write() as conn:
            if (await conn.execute(stmt)).rowcount == 0:
                raise NotFoundError(f"API key {key_id!r} does not exist")
