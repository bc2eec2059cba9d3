"""Users' passwords and the access tokens logins issue, in SQL (only hashes of either)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import NotFoundError
from hub.records import AccessToken, UserPassword
from hub.store_rules import aware_utc, check_limit
from server.db import tables as t
from server.db.stores._base import SqlStore, to_values
from server.db.stores._tokens import revoke_token


async def _require_user(conn: AsyncConnection, account_id: str, user_id: str) -> None:
    c = t.users.c
    found = select(c.id).where(c.id == user_id, c.account_id == account_id)
    if (await conn.execute(found)).first() is None:
        raise NotFoundError(f"user {user_id!r} does not exist")


class SqlPasswordStore(SqlStore):
    async def set(self, password: UserPassword) -> None:
        stmt = self._db.upsert(
            t.user_passwords, to_values(password), key=("user_id",), keep=("account_id",)
        )
        async with self._db.write(
            missing=f"account {password.account_id!r} does not exist"
        ) as conn:
            await _require_user(conn, password.account_id, password.user_id)
            await conn.execute(stmt)

    async def get(self, account_id: str, user_id: str) -> UserPassword | None:
        c = t.user_passwords.c
        stmt = select(t.user_passwords).where(c.account_id == account_id, c.user_id == user_id)
        return await self._first(stmt, UserPassword)


class SqlAccessTokenStore(SqlStore):
    async def add(self, token: AccessToken) -> None:
        async with self._db.write(
            conflict=f"access token {token.id!r} or its hash exists",
            missing=f"account {token.account_id!r} does not exist",
        ) as conn:
            await _require_user(conn, token.account_id, token.user_id)
            await conn.execute(insert(t.access_tokens).values(to_values(token)))

    async def get(self, token_id: str) -> AccessToken | None:
        stmt = select(t.access_tokens).where(t.access_tokens.c.id == token_id)
        return await self._first(stmt, AccessToken)

    async def revoke(self, account_id: str, token_id: str, at: datetime) -> AccessToken:
        return await revoke_token(
            self._db, t.access_tokens, AccessToken, account_id, token_id, at, "access token"
        )

    async def revoke_user(self, account_id: str, user_id: str, at: datetime) -> int:
        c = t.access_tokens.c
        stmt = (
            update(t.access_tokens)
            .where(c.account_id == account_id, c.user_id == user_id, c.revoked_at.is_(None))
            .values(revoked_at=aware_utc(at, "revoked_at"))
        )
        async with self._db.write() as conn:
            return (await conn.execute(stmt)).rowcount

    async def remove_expired(self, before: datetime, *, limit: int = 1000) -> int:
        check_limit(limit)
        c = t.access_tokens.c
        oldest = (
            select(c.id)
            .where(c.expires_at < aware_utc(before, "before"))
            .order_by(c.expires_at, c.id)
            .limit(limit)
        )
        stmt = delete(t.access_tokens).where(c.id.in_(oldest))
        async with self._db.write() as conn:
            return (await conn.execute(stmt)).rowcount
