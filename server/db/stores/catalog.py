"""Upstream MCP servers and the tools seen on them, in SQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select

from hub.errors import NotFoundError
from hub.records import McpServer, ToolRecord
from server.db import tables as t
from server.db.stores._base import SqlStore, to_values


class SqlMcpServerStore(SqlStore):
    async def upsert(self, server: McpServer) -> None:
        stmt = self._db.upsert(
            t.mcp_servers,
            to_values(server),
            key=("account_id", "name"),
            keep=("id", "created_at"),
        )
        async with self._db.write(
            conflict=f"MCP server id {server.id!r} exists",
            missing=f"account {server.account_id!r} does not exist",
        ) as conn:
            await conn.execute(stmt)

    async def get(self, account_id: str, name: str) -> McpServer | None:
        c = t.mcp_servers.c
        stmt = select(t.mcp_servers).where(c.account_id == account_id, c.name == name)
        return await self._first(stmt, McpServer)

    async def list(self, account_id: str) -> Sequence[McpServer]:
        c = t.mcp_servers.c
        stmt = select(t.mcp_servers).where(c.account_id == account_id).order_by(c.name)
        return await self._all(stmt, McpServer)

    async def remove(self, account_id: str, name: str) -> None:
        c = t.mcp_servers.c
        stmt = delete(t.mcp_servers).where(c.account_id == account_id, c.name == name)
        async with self._db.write() as conn:
            if (await conn.execute(stmt)).rowcount == 0:
                raise NotFoundError(f"MCP server {name!r} does not exist")


class SqlToolStore(SqlStore):
    async def upsert(self, tool: ToolRecord) -> None:
        stmt = self._db.upsert(
            t.tools,
            to_values(tool),
            key=("account_id", "server_name", "name"),
            keep=("id", "first_seen_at"),
        )
        async with self._db.write(
            conflict=f"tool id {tool.id!r} exists",
            missing=f"account {tool.account_id!r} does not exist",
        ) as conn:
            await conn.execute(stmt)

    async def get(self, account_id: str, server_name: str, name: str) -> ToolRecord | None:
        c = t.tools.c
        stmt = select(t.tools).where(
            c.account_id == account_id, c.server_name == server_name, c.name == name
        )
        return await self._first(stmt, ToolRecord)

    async def list(self, account_id: str, server_name: str | None = None) -> Sequence[ToolRecord]:
        c = t.tools.c
        stmt = select(t.tools).where(c.account_id == account_id)
        if server_name is not None:
            stmt = stmt.where(c.server_name == server_name)
        return await self._all(stmt.order_by(c.server_name, c.name), ToolRecord)

    async def remove_server(self, account_id: str, server_name: str) -> None:
        c = t.tools.c
        stmt = delete(t.tools).where(c.account_id == account_id, c.server_name == server_name)
        async with self._db.write() as conn:
            await conn.execute(stmt)
