"""Upstream MCP servers over HTTP: list with health, register by hand, remove; their tools,
refreshed from the upstream, and accepting a changed tool's definition."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, JSONBody

from hub.catalog import definition_diff, is_blocked
from hub.errors import NotFoundError, ValidationError
from hub.policy.model import McpServerSpec, Transport
from hub.records import McpServer, ToolRecord
from hub.wire import AcceptedTool, ServerHealth, ServerView, ToolView
from server.api.deps import caller_of, hub_of
from server.auth import ADMIN, READ, roles
from server.hub_services import Hub


class ServerBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A server registered by hand: the fields of a policy's ``mcp_servers`` entry."""

    name: str
    transport: str = "stdio"
    description: str = ""
    command: str | None = None
    args: list[str] = []
    env: dict[str, str] = {}
    url: str | None = None
    headers: dict[str, str] = {}


def _tool_view(record: ToolRecord) -> ToolView:
    return ToolView(
        name=record.name,
        description=record.description,
        blocked=is_blocked(record),
        definition_hash=record.definition_hash,
        pinned_hash=record.pinned_hash,
        updated_at=record.updated_at,
        diff=definition_diff(record) if is_blocked(record) else "",
    )


def _server_view(hub: Hub, server: McpServer) -> ServerView:
    config = server.config
    health = None
    if server.name in hub.pool.names():
        found = hub.pool.health(server.name)
        health = ServerHealth(
            state=found.state, last_error=found.last_error, restarts=found.restarts
        )
    return ServerView(
        name=server.name,
        transport=server.transport,
        source=server.source,
        command=config.get("command"),
        args=[str(a) for a in config.get("args") or ()],
        url=config.get("url"),
        env_keys=sorted(config.get("env") or {}),
        header_keys=sorted(config.get("headers") or {}),
        health=health,
        updated_at=server.updated_at,
    )


def _spec_of(data: ServerBody) -> McpServerSpec:
    """The body as a policy server definition, checked as the policy loader checks one."""
    try:
        spec = msgspec.convert(msgspec.to_builtins(data), McpServerSpec)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"invalid MCP server: {exc}") from exc
    if spec.transport is Transport.STDIO:
        if not spec.command:
            raise ValidationError("a stdio server needs 'command'")
        if spec.url or spec.headers:
            raise ValidationError("'url' and 'headers' do not apply to a stdio server")
    else:
        if not spec.url:
            raise ValidationError(f"a {spec.transport.value} server needs 'url'")
        if not spec.url.startswith(("http://", "https://", "${")):
            raise ValidationError("the url must start with http:// or https://")
        if spec.command or spec.args or spec.env:
            raise ValidationError(
                f"'command', 'args' and 'env' do not apply to a {spec.transport.value} server"
            )
    return spec


async def _stored(hub: Hub, account_id: str, name: str) -> McpServer:
    found = await hub.storage.servers.get(account_id, name)
    if found is None:
        raise NotFoundError(f"no MCP server {name!r}")
    return found


class ServerController(Controller):
    path = "/servers"
    tags = ["servers"]

    @get("/", opt=roles(READ))
    async def list_servers(self, request: Request[Any, Any, Any]) -> list[ServerView]:
        """Every upstream MCP server with its connection health (env/header keys only)."""
        hub = hub_of(request)
        servers = await hub.storage.servers.list(caller_of(request).account_id)
        return [_server_view(hub, server) for server in servers]

    @post("/", opt=roles(ADMIN), status_code=200)
    async def add(self, request: Request[Any, Any, Any], data: JSONBody[ServerBody]) -> ServerView:
        """Register (or replace) a server by hand; the pool connects to it."""
        hub, caller = hub_of(request), caller_of(request)
        server = await hub.mcp_servers.add(caller.account_id, _spec_of(data), actor=caller.key_id)
        return _server_view(hub, server)

    @delete("/{name:str}", opt=roles(ADMIN), status_code=204)
    async def remove(self, request: Request[Any, Any, Any], name: FromPath[str]) -> None:
        """Forget a server and disconnect from it."""
        caller = caller_of(request)
        await hub_of(request).mcp_servers.remove(caller.account_id, name, actor=caller.key_id)

    @get("/{name:str}/tools", opt=roles(READ))
    async def tools(self, request: Request[Any, Any, Any], name: FromPath[str]) -> list[ToolView]:
        """The tools last seen on the server; ``blocked`` when a change awaits acceptance."""
        hub, account = hub_of(request), caller_of(request).account_id
        return [_tool_view(t) for t in await hub.catalog.list(account, name)]

    @post("/{name:str}/refresh", opt=roles(ADMIN), status_code=200)
    async def refresh(self, request: Request[Any, Any, Any], name: FromPath[str]) -> list[ToolView]:
        """Ask the upstream for its tools now and record them (pinning new ones)."""
        hub, account = hub_of(request), caller_of(request).account_id
        await _stored(hub, account, name)
        await hub.pool.wait_ready(name)
        definitions = await hub.pool.list_tools(name)
        await hub.catalog.sync(account, name, definitions)
        return [_tool_view(t) for t in await hub.catalog.list(account, name)]

    @post("/{name:str}/tools/{tool:str}/accept", opt=roles(ADMIN), status_code=200)
    async def accept(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        tool: FromPath[str],
    ) -> AcceptedTool:
        """Pin the tool's current definition; returns the diff that was accepted."""
        caller = caller_of(request)
        record, diff = await hub_of(request).catalog.accept(
            caller.account_id, name, tool, actor=caller.key_id
        )
        return AcceptedTool(tool=_tool_view(record), diff=diff)
