"""The gateway's custody records in SQL: providers, ``local_encrypted`` secrets, flow
executions and runtime tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select, update

from hub.errors import NotFoundError
from hub.model_gateway.records import FlowExecution, Provider, RuntimeToken, StoredSecret
from hub.store_rules import check_limit
from server.db import tables as t
from server.db.stores._base import SqlStore, to_record, to_values
from server.db.stores._tokens import revoke_token


class SqlProviderStore(SqlStore):
    async def add(self, provider: Provider) -> None:
        async with self._db.write(
            conflict=f"provider {provider.name!r} or id {provider.id!r} exists",
            missing=f"account {provider.account_id!r} does not exist",
        ) as conn:
            await conn.execute(insert(t.providers).values(to_values(provider)))

    async def get(self, account_id: str, name: str) -> Provider | None:
        c = t.providers.c
        stmt = select(t.providers).where(c.account_id == account_id, c.name == name)
        return await self._first(stmt, Provider)

    async def list(self, account_id: str) -> Sequence[Provider]:
        c = t.providers.c
        stmt = select(t.providers).where(c.account_id == account_id).order_by(c.name)
        return await self._all(stmt, Provider)

    async def update(self, provider: Provider) -> Provider:
        c = t.providers.c
        values = to_values(provider)
        for kept in ("id", "account_id", "name", "created_at"):
            values.pop(kept)
        stmt = (
            update(t.providers)
            .where(c.account_id == provider.account_id, c.name == provider.name)
            .values(values)
            .returning(*c)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFoundError(f"provider {provider.name!r} does not exist")
        return to_record(row, Provider)

    async def remove(self, account_id: str, name: str) -> None:
        c = t.providers.c
        stmt = delete(t.providers).where(c.account_id == account_id, c.name == name)
        async with self._db.write() as conn:
            if (await conn.execute(stmt)).rowcount == 0:
                raise NotFoundError(f"provider {name!r} does not exist")


class SqlSecretStore(SqlStore):
    async def put(self, secret: StoredSecret) -> None:
        stmt = self._db.upsert(
            t.secrets, to_values(secret), key=("account_id", "name"), keep=("created_at",)
        )
        async with self._db.write(missing=f"account {secret.account_id!r} does not exist") as conn:
            await conn.execute(stmt)

    async def get(self, account_id: str, name: str) -> StoredSecret | None:
        c = t.secrets.c
        stmt = select(t.secrets).where(c.account_id == account_id, c.name == name)
        return await self._first(stmt, StoredSecret)

    async def list(self, account_id: str | None = None) -> Sequence[StoredSecret]:
        c = t.secrets.c
        stmt = select(t.secrets)
        if account_id is not None:
            stmt = stmt.where(c.account_id == account_id)
        return await self._all(stmt.order_by(c.account_id, c.name), StoredSecret)

    async def swap(self, expected: StoredSecret, new: StoredSecret) -> bool:
        c = t.secrets.c
        stmt = (
            update(t.secrets)
            .where(
                c.account_id == expected.account_id,
                c.name == expected.name,
                c.ciphertext == expected.ciphertext,
            )
            .values(ciphertext=new.ciphertext, key_id=new.key_id, updated_at=new.updated_at)
        )
        async with self._db.write() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def remove(self, account_id: str, name: str) -> None:
        c = t.secrets.c
        stmt = delete(t.secrets).where(c.account_id == account_id, c.name == name)
        async with self._db.write() as conn:
            if (await conn.execute(stmt)).rowcount == 0:
                raise NotFoundError(f"secret {name!r} does not exist")


class SqlFlowExecutionStore(SqlStore):
    async def add(self, execution: FlowExecution) -> None:
        async with self._db.write(
            conflict=f"flow execution {execution.id!r} exists",
            missing=f"account {execution.account_id!r} does not exist",
        ) as conn:
            await conn.execute(insert(t.flow_executions).values(to_values(execution)))

    async def get(self, account_id: str, execution_id: str) -> FlowExecution | None:
        c = t.flow_executions.c
        stmt = select(t.flow_executions).where(c.account_id == account_id, c.id == execution_id)
        return await self._first(stmt, FlowExecution)

    async def list(
        self, account_id: str, *, flow: str | None = None, limit: int = 100
    ) -> Sequence[FlowExecution]:
        check_limit(limit)
        c = t.flow_executions.c
        stmt = select(t.flow_executions).where(c.account_id == account_id)
        if flow is not None:
            stmt = stmt.where(c.flow == flow)
        stmt = stmt.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        return await self._all(stmt, FlowExecution)


class SqlRuntimeTokenStore(SqlStore):
    async def add(self, token: RuntimeToken) -> None:
        c = t.flow_executions.c
        owner = select(c.id).where(c.id == token.execution_id, c.account_id == token.account_id)
        async with self._db.write(
            conflict=f"runtime token {token.id!r} or its hash exists",
            missing=f"account {token.account_id!r} does not exist",
        ) as conn:
            if (await conn.execute(owner)).first() is None:
                raise NotFoundError(f"flow execution {token.execution_id!r} does not exist")
            await conn.execute(insert(t.runtime_tokens).values(to_values(token)))

    async def get(self, token_id: str) -> RuntimeToken | None:
        stmt = select(t.runtime_tokens).where(t.runtime_tokens.c.id == token_id)
        return await self._first(stmt, RuntimeToken)

    async def list(self, account_id: str, execution_id: str) -> Sequence[RuntimeToken]:
        c = t.runtime_tokens.c
        stmt = (
            select(t.runtime_tokens)
            .where(c.account_id == account_id, c.execution_id == execution_id)
            .order_by(c.created_at, c.id)
        )
        return await self._all(stmt, RuntimeToken)

    async def revoke(self, account_id: str, token_id: str, at: datetime) -> RuntimeToken:
        return await revoke_token(
            self._db, t.runtime_tokens, RuntimeToken, account_id, token_id, at, "runtime token"
        )
