"""Policy versions and the workflows of the active policy, in SQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select

from hub.errors import NotFoundError, ValidationError
from hub.records import PolicyVersion, WorkflowRecord
from server.db import tables as t
from server.db.stores._base import SqlStore, to_values


class SqlPolicyStore(SqlStore):
    async def add(self, version: PolicyVersion) -> None:
        async with self._db.write(
            conflict=f"policy version {version.version} exists",
            missing=f"account {version.account_id!r} does not exist",
        ) as conn:
            await conn.execute(insert(t.policy_versions).values(to_values(version)))

    async def latest(self, account_id: str) -> PolicyVersion | None:
        c = t.policy_versions.c
        stmt = (
            select(t.policy_versions)
            .where(c.account_id == account_id)
            .order_by(c.version.desc())
            .limit(1)
        )
        return await self._first(stmt, PolicyVersion)

    async def get(self, account_id: str, version: int) -> PolicyVersion | None:
        c = t.policy_versions.c
        stmt = select(t.policy_versions).where(c.account_id == account_id, c.version == version)
        return await self._first(stmt, PolicyVersion)

    async def list(self, account_id: str) -> Sequence[PolicyVersion]:
        c = t.policy_versions.c
        stmt = select(t.policy_versions).where(c.account_id == account_id)
        return await self._all(stmt.order_by(c.version.desc()), PolicyVersion)


class SqlWorkflowStore(SqlStore):
    async def replace_all(self, account_id: str, workflows: Sequence[WorkflowRecord]) -> None:
        if any(w.account_id != account_id for w in workflows):
            raise ValidationError(f"every workflow must belong to account {account_id!r}")
        missing = f"account {account_id!r} does not exist"
        async with self._db.write(conflict="two workflows share a name", missing=missing) as conn:
            # Lock the account row so concurrent replacements queue instead of interleaving
            # their DELETE and INSERT (READ COMMITTED on PostgreSQL). NO KEY UPDATE leaves
            # foreign-key checks of other tables' inserts unblocked. SQLite: BEGIN IMMEDIATE.
            account = select(t.accounts.c.id).where(t.accounts.c.id == account_id)
            if await conn.scalar(account.with_for_update(key_share=True)) is None:
                raise NotFoundError(missing)
            await conn.execute(delete(t.workflows).where(t.workflows.c.account_id == account_id))
            if workflows:
                await conn.execute(insert(t.workflows), [to_values(w) for w in workflows])

    async def get(self, account_id: str, name: str) -> WorkflowRecord | None:
        c = t.workflows.c
        stmt = select(t.workflows).where(c.account_id == account_id, c.name == name)
        return await self._first(stmt, WorkflowRecord)

    async def list(self, account_id: str) -> Sequence[WorkflowRecord]:
        c = t.workflows.c
        stmt = select(t.workflows).where(c.account_id == account_id).order_by(c.name)
        return await self._all(stmt, WorkflowRecord)
