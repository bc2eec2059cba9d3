"""Upstream MCP servers and their tools."""

from __future__ import annotations

import pytest

from hub.errors import ConflictError, NotFoundError
from hub.ports import Storage

from .records import T0, at, new_account, server, tool


async def test_server_config_round_trips_as_json(storage: Storage) -> None:
    account_id = await new_account(storage)
    files = server(
        account_id,
        "files",
        transport="streamable-http",
        config={
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": "secret:files-token"},
            "retries": 3,
            "timeout": 2.5,
            "tls": None,
            "verify": False,
            "unicode": "grüße ✓",
            "nested": [{"a": [1, 2, {"b": None}]}],
            "pair": (1, 2),
        },
    )
    await storage.servers.upsert(files)

    found = await storage.servers.get(account_id, "files")

    assert found is not None
    assert found.config["pair"] == [1, 2]  # JSON has no tuples
    assert {**files.config, "pair": [1, 2]} == found.config
    assert files.id == found.id
    assert await storage.servers.get(account_id, "missing") is None


async def test_upsert_replaces_by_name_keeping_id_and_creation(storage: Storage) -> None:
    account_id = await new_account(storage)
    first = server(account_id, "files")
    await storage.servers.upsert(first)
    replacement = server(
        account_id,
        "files",
        transport="sse",
        config={"url": "http://x"},
        created_at=at(99),
        updated_at=at(100),
        source="policy",
    )

    await storage.servers.upsert(replacement)

    found = await storage.servers.get(account_id, "files")
    assert found is not None
    assert (first.id, T0) == (found.id, found.created_at)
    assert ("sse", {"url": "http://x"}, "policy", at(100)) == (
        found.transport,
        found.config,
        found.source,
        found.updated_at,
    )
    assert [found] == list(await storage.servers.list(account_id))


async def test_server_rules(storage: Storage) -> None:
    mine, theirs = await new_account(storage), await new_account(storage)
    taken = server(mine, "zeta")
    for name_server in (taken, server(mine, "alpha")):
        await storage.servers.upsert(name_server)

    with pytest.raises(ConflictError):
        await storage.servers.upsert(server(mine, "other", id=taken.id))
    with pytest.raises(NotFoundError):
        await storage.servers.upsert(server("acct_missing", "x"))
    with pytest.raises(NotFoundError):
        await storage.servers.remove(theirs, "zeta")

    assert [s.name for s in await storage.servers.list(mine)] == ["alpha", "zeta"]
    assert list(await storage.servers.list(theirs)) == []
    assert await storage.servers.get(theirs, "zeta") is None

    await storage.servers.remove(mine, "zeta")
    assert [s.name for s in await storage.servers.list(mine)] == ["alpha"]
    with pytest.raises(NotFoundError):
        await storage.servers.remove(mine, "zeta")


async def test_tool_round_trips_and_upsert_keeps_first_seen(storage: Storage) -> None:
    account_id = await new_account(storage)
    first = tool(account_id, "files", "read")
    await storage.tools.upsert(first)
    assert first == await storage.tools.get(account_id, "files", "read")

    changed = tool(
        account_id,
        "files",
        "read",
        description="now also deletes",
        input_schema={"type": "object"},
        definition_hash="d2",
        first_seen_at=at(50),
        updated_at=at(50),
        definition={"name": "read", "inputSchema": {"type": "object"}, "annotations": {}},
        pinned_definition={"name": "read", "description": "read does things"},
    )
    await storage.tools.upsert(changed)

    found = await storage.tools.get(account_id, "files", "read")
    assert found is not None
    assert (first.id, T0) == (found.id, found.first_seen_at)
    assert ("now also deletes", "d2", "d1", at(50)) == (
        found.description,
        found.definition_hash,
        found.pinned_hash,
        found.updated_at,
    )
    assert (changed.definition, changed.pinned_definition) == (
        found.definition,
        found.pinned_definition,
    )
    assert await storage.tools.get(account_id, "files", "write") is None


async def test_tools_list_by_server_then_name_and_filter(storage: Storage) -> None:
    mine, theirs = await new_account(storage), await new_account(storage)
    for server_name, name in [("web", "fetch"), ("files", "write"), ("files", "read")]:
        await storage.tools.upsert(tool(mine, server_name, name))
    await storage.tools.upsert(tool(theirs, "files", "read"))

    everything = [(t.server_name, t.name) for t in await storage.tools.list(mine)]
    files_only = [t.name for t in await storage.tools.list(mine, "files")]

    assert everything == [("files", "read"), ("files", "write"), ("web", "fetch")]
    assert files_only == ["read", "write"]
    assert len(await storage.tools.list(theirs)) == 1


async def test_remove_server_drops_its_tools_only(storage: Storage) -> None:
    mine, theirs = await new_account(storage), await new_account(storage)
    for server_name, name in [("files", "read"), ("files", "write"), ("web", "fetch")]:
        await storage.tools.upsert(tool(mine, server_name, name))
    await storage.tools.upsert(tool(theirs, "files", "read"))

    await storage.tools.remove_server(mine, "files")
    await storage.tools.remove_server(mine, "never-there")

    assert [(t.server_name, t.name) for t in await storage.tools.list(mine)] == [("web", "fetch")]
    assert [t.name for t in await storage.tools.list(theirs, "files")] == ["read"]


async def test_tool_rules(storage: Storage) -> None:
    account_id = await new_account(storage)
    taken = tool(account_id, "files", "read")
    await storage.tools.upsert(taken)

    with pytest.raises(ConflictError):
        await storage.tools.upsert(tool(account_id, "files", "write", id=taken.id))
    with pytest.raises(NotFoundError):
        await storage.tools.upsert(tool("acct_missing", "files", "read"))
    assert [taken] == list(await storage.tools.list(account_id))
