"""Registering MCP servers and keeping the pool in step (hub/mcp_servers.py): one service for
policy apply, the REST API and the MCP endpoint."""

from __future__ import annotations

import msgspec
import pytest

from hub.auditing import Auditor
from hub.clock import FrozenClock
from hub.errors import ConfigError, NotFoundError
from hub.identity import IdentityService
from hub.mcp_servers import McpServers, ServerRegistry
from hub.memory import InMemoryStorage
from hub.policy.model import McpServerSpec, Transport
from hub.policy_versions import PolicyService
from hub.records import McpServer

POLICY = """
version: "1.0"
metadata: {name: servers}
mcp_servers:
  - {name: git, transport: stdio, command: git-mcp}
%s
tools: []
"""


class FakePool:
    """The pool's membership, as a list of what it was told."""

    def __init__(self) -> None:
        self.configs: dict[str, str] = {}
        self.told: list[str] = []

    def names(self) -> list[str]:
        return list(self.configs)

    async def replace(self, config: str) -> None:
        name = config.split(":")[0]
        if self.configs.get(name) != config:
            self.told.append(f"replace {config}")
        self.configs[name] = config

    async def remove(self, name: str) -> None:
        self.told.append(f"remove {name}")
        del self.configs[name]


def configure(server: McpServer) -> str:
    """A connection's configuration; ``${...}`` cannot be resolved (like a missing env)."""
    command = str(server.config.get("command") or server.config.get("url"))
    if command.startswith("${"):
        raise ConfigError(f"{command} is not allowed")
    return f"{server.name}:{command}"


class Parts(msgspec.Struct):
    servers: McpServers[str]
    policies: PolicyService
    pool: FakePool
    storage: InMemoryStorage
    account: str


async def parts() -> Parts:
    storage, clock = InMemoryStorage(), FrozenClock()
    auditor = Auditor(storage.audit, clock)
    identity = IdentityService(storage, clock, auditor)
    registry = ServerRegistry(storage, clock)
    policies = PolicyService(storage, clock, auditor, servers=registry)
    pool = FakePool()
    servers = McpServers(
        registry,
        auditor=auditor,
        identity=identity,
        policies=policies,
        pool=pool,
        configure=configure,
    )
    account = (await identity.default_account()).id
    return Parts(servers=servers, policies=policies, pool=pool, storage=storage, account=account)


def spec(name: str, command: str) -> McpServerSpec:
    return McpServerSpec(name=name, transport=Transport.STDIO, command=command)


async def test_the_endpoint_follows_a_newly_applied_policy_once() -> None:
    p = await parts()
    await p.policies.apply(p.account, POLICY % "", actor="t")

    assert ["git"] == await p.servers.names(p.account)
    assert ["git"] == await p.servers.names(p.account)
    assert ["replace git:git-mcp"] == p.pool.told  # once per policy version

    more = "  - {name: web, transport: streamable-http, url: 'http://127.0.0.1:9/mcp'}"
    await p.policies.apply(p.account, POLICY % more, actor="t")
    assert ["git", "web"] == await p.servers.names(p.account)


async def test_another_account_reaches_no_server() -> None:
    p = await parts()
    await p.policies.apply(p.account, POLICY % "", actor="t")
    assert [] == await p.servers.names("acct_other")
    assert [] == p.pool.told


async def test_a_server_added_by_hand_survives_policy_applies_and_is_audited() -> None:
    p = await parts()
    await p.servers.add(p.account, spec("git", "my-git"), actor="k1")

    await p.policies.apply(p.account, POLICY % "", actor="t")  # declares git too

    stored = await p.storage.servers.get(p.account, "git")
    assert stored is not None
    assert ("api", {"command": "my-git"}) == (stored.source, _command(stored))
    assert {"git": "git:my-git"} == p.pool.configs
    [added] = [e for e in await p.storage.audit.all(p.account) if e.kind == "server.added"]
    assert {"server": "git", "transport": "stdio", "replaced": False} == added.data


async def test_a_policy_server_dropped_by_the_next_policy_is_removed() -> None:
    p = await parts()
    await p.policies.apply(p.account, POLICY % "", actor="t")
    await p.servers.names(p.account)
    await p.policies.apply(
        p.account,
        POLICY.replace(
            "git, transport: stdio, command: git-mcp", "hg, transport: stdio, command: hg-mcp"
        )
        % "",
        actor="t",
    )

    assert ["hg"] == await p.servers.names(p.account)
    assert ["replace git:git-mcp", "replace hg:hg-mcp", "remove git"] == p.pool.told


async def test_a_server_that_cannot_be_configured_is_skipped_with_a_problem() -> None:
    p = await parts()
    await p.servers.add(p.account, spec("ok", "ok-mcp"), actor="k1")
    await p.servers.add(p.account, spec("bad", "${SECRET}"), actor="k1")

    problems = await p.servers.sync()

    assert ["MCP server bad not started: ${SECRET} is not allowed"] == problems
    assert ["ok"] == p.pool.names()


async def test_remove_disconnects_and_audits_and_unknown_is_not_found() -> None:
    p = await parts()
    await p.servers.add(p.account, spec("git", "git-mcp"), actor="k1")

    await p.servers.remove(p.account, "git", actor="k1")

    assert [] == p.pool.names()
    assert await p.storage.servers.get(p.account, "git") is None
    assert "server.removed" in [e.kind for e in await p.storage.audit.all(p.account)]
    with pytest.raises(NotFoundError, match="no MCP server 'git'"):
        await p.servers.remove(p.account, "git", actor="k1")


def _command(server: McpServer) -> dict[str, str]:
    return {"command": str(server.config.get("command"))}
