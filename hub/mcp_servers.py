"""Registering upstream MCP servers, and keeping the pool of upstream sessions in step.

    policy apply ─▶ ServerRegistry.adopt ─┐
    REST add / remove ─▶ McpServers ──────┼─▶ stored servers (``source``: policy │ api)
                                          │
    /mcp (every listing and call) ─▶ McpServers.names ─▶ the pool follows the stored servers
          once per policy version; start-up ─▶ McpServers.sync

:class:`ServerRegistry` is the storage half (the policy service uses it: a policy's
``mcp_servers`` become the stored ones, servers registered by hand are left alone);
:class:`McpServers` adds the pool (a small port, :class:`ServerPool`) and the audit. How a
stored server becomes a connection's configuration (``${NAME}`` references resolved through
the environment's allow-list) is injected as ``configure``: the edge knows its transports.

The pool holds the default account's servers only: another account never reaches them, even
through a server of the same name (docs/decisions/0059).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import msgspec

from hub.auditing import Auditor
from hub.builtin_tools.names import BUILTIN_SERVER
from hub.clock import Clock
from hub.errors import ConfigError, NotFoundError, ValidationError
from hub.identity import IdentityService
from hub.ids import new_id
from hub.policy.model import McpServerSpec
from hub.ports import Storage
from hub.records import McpServer

if TYPE_CHECKING:  # the policy service registers through this module's registry
    from hub.policy_versions import PolicyService

ConfigT = TypeVar("ConfigT")
ConfigT_contra = TypeVar("ConfigT_contra", contravariant=True)
POLICY_SOURCE = "policy"
API_SOURCE = "api"

log = logging.getLogger("preloop.mcp_servers")


class ServerPool(Protocol[ConfigT_contra]):
    """The live upstream sessions (server/mcp/upstream.py's ``UpstreamPool``)."""

    def names(self) -> list[str]: ...

    async def replace(self, config: ConfigT_contra) -> None:
        """Connect with ``config`` (a no-op when unchanged; reconnect when changed)."""

    async def remove(self, name: str) -> None: ...


class ServerRegistry:
    """The stored servers of each account: one way to register one, by hand or by policy."""

    def __init__(self, storage: Storage, clock: Clock) -> None:
        self._storage = storage
        self._clock = clock

    async def register(
        self, account_id: str, spec: McpServerSpec, *, source: str
    ) -> tuple[McpServer, McpServer | None]:
        """Store ``spec`` (replacing a server of that name); the stored server and the one
        it replaced. The name ``preloop`` is reserved for the built-in tools."""
        if spec.name == BUILTIN_SERVER:
            raise ValidationError(
                f"the server name {BUILTIN_SERVER!r} is reserved for Preloop's built-in tools"
            )
        existing = await self._storage.servers.get(account_id, spec.name)
        return await self._store(account_id, spec, source, existing), existing

    async def _store(
        self, account_id: str, spec: McpServerSpec, source: str, existing: McpServer | None
    ) -> McpServer:
        config = msgspec.to_builtins(spec)
        config.pop("name", None)
        config.pop("transport", None)
        now = self._clock.now()
        server = McpServer(
            id=existing.id if existing else new_id("srv"),
            account_id=account_id,
            name=spec.name,
            transport=str(spec.transport),
            config=config,
            source=source,
            created_at=existing.created_at if existing else now,
            updated_at=now,
        )
        await self._storage.servers.upsert(server)
        return server

    async def adopt(self, account_id: str, specs: Sequence[McpServerSpec]) -> None:
        """A policy's servers become the stored ones: those an earlier policy declared and
        this one does not are removed; a server registered by hand is never overwritten."""
        wanted = {s.name: s for s in specs}
        for existing in await self._storage.servers.list(account_id):
            if existing.source == POLICY_SOURCE and existing.name not in wanted:
                await self._storage.servers.remove(account_id, existing.name)
        for spec in wanted.values():
            existing_server = await self._storage.servers.get(account_id, spec.name)
            if existing_server is not None and existing_server.source != POLICY_SOURCE:
                continue  # registered by hand: the policy does not overwrite it
            await self._store(account_id, spec, POLICY_SOURCE, existing_server)

    async def remove(self, account_id: str, name: str) -> None:
        if await self._storage.servers.get(account_id, name) is None:
            raise NotFoundError(f"no MCP server {name!r}")
        await self._storage.servers.remove(account_id, name)

    async def list(self, account_id: str) -> Sequence[McpServer]:
        return await self._storage.servers.list(account_id)


class McpServers(Generic[ConfigT]):
    """Register and remove servers, and keep the pool following the stored ones."""

    def __init__(
        self,
        registry: ServerRegistry,
        *,
        auditor: Auditor,
        identity: IdentityService,
        policies: PolicyService,
        pool: ServerPool[ConfigT],
        configure: Callable[[McpServer], ConfigT],
    ) -> None:
        self._registry = registry
        self._auditor = auditor
        self._identity = identity
        self._policies = policies
        self._pool = pool
        self._configure = configure  # raises ConfigError or msgspec.ValidationError
        self._synced_version: int | None = None  # the policy version the pool follows
        self._sync_lock = asyncio.Lock()

    async def add(self, account_id: str, spec: McpServerSpec, *, actor: str) -> McpServer:
        """Register (or replace) a server by hand; the pool connects to it."""
        server, replaced = await self._registry.register(account_id, spec, source=API_SOURCE)
        await self._auditor.record(
            account_id,
            "server.added",
            actor,
            {"server": spec.name, "transport": server.transport, "replaced": bool(replaced)},
        )
        await self.sync()
        return server

    async def remove(self, account_id: str, name: str, *, actor: str) -> None:
        """Forget a server and disconnect from it."""
        await self._registry.remove(account_id, name)
        if name in self._pool.names():
            await self._pool.remove(name)
        await self._auditor.record(account_id, "server.removed", actor, {"server": name})

    async def sync(self) -> list[str]:
        """Make the pool match the default account's stored servers: add new ones,
        reconnect changed ones, drop removed ones (a no-op when nothing changed). Returns the
        problems: a server whose definition cannot be resolved is skipped, saying why."""
        account = await self._identity.default_account()
        problems: list[str] = []
        wanted: set[str] = set()
        for server in await self._registry.list(account.id):
            try:
                config = self._configure(server)
            except (ConfigError, msgspec.ValidationError) as exc:
                log.warning("MCP server %s not started: %s", server.name, exc)
                problems.append(f"MCP server {server.name} not started: {exc}")
                continue
            wanted.add(server.name)
            await self._pool.replace(config)
        for name in set(self._pool.names()) - wanted:
            await self._pool.remove(name)
        return problems

    async def names(self, account_id: str) -> list[str]:
        """The servers ``account_id``'s agents reach (none for another account than the
        default one), the pool first following a newly applied policy."""
        if account_id != (await self._identity.default_account()).id:
            return []
        await self._follow_policy(account_id)
        return sorted(self._pool.names())

    async def _follow_policy(self, account_id: str) -> None:
        """After a policy apply (here or on another replica), reconnect the pool to the
        servers it now declares."""
        active = await self._policies.active(account_id)
        version = active[0].version if active is not None else None
        if version == self._synced_version:
            return
        async with self._sync_lock:
            if version == self._synced_version:
                return
            for problem in await self.sync():
                log.warning("%s", problem)
            self._synced_version = version
