"""The tool catalogue and tool pinning: a defence against "rug pull" tool poisoning.

The first time Preloop sees a tool, the hash of its definition (description, input and output
schema, annotations, title) is pinned. When an upstream later serves a different definition,
the change is audited once and the tool is refused, with a message saying why, until an
administrator accepts it (``preloop servers accept SERVER TOOL`` shows the diff).
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import msgspec

from hub.auditing import Auditor
from hub.cache import DEFAULT_SECONDS, Missing, Recent
from hub.clock import Clock
from hub.errors import NotFoundError
from hub.ids import new_id
from hub.ports import Storage
from hub.records import ToolRecord

# The parts of an MCP tool definition an agent trusts when it decides to call a tool.
PINNED_FIELDS = ("title", "description", "inputSchema", "outputSchema", "annotations")
_encoder = msgspec.json.Encoder(order="sorted")


def pinned_part(definition: dict[str, Any]) -> dict[str, Any]:
    return {k: definition[k] for k in PINNED_FIELDS if definition.get(k) is not None}


def definition_hash(definition: dict[str, Any]) -> str:
    return hashlib.sha256(_encoder.encode(pinned_part(definition))).hexdigest()


def is_blocked(record: ToolRecord) -> bool:
    """The upstream serves a definition nobody accepted."""
    return record.definition_hash != record.pinned_hash


def definition_diff(record: ToolRecord) -> str:
    """What changed between the pinned and the current definition, as a unified diff."""

    def lines(value: dict[str, Any]) -> list[str]:
        return json.dumps(pinned_part(value), indent=2, sort_keys=True).splitlines(keepends=True)

    return "".join(
        difflib.unified_diff(
            lines(record.pinned_definition),
            lines(record.definition),
            fromfile=f"{record.server_name}/{record.name} (pinned)",
            tofile=f"{record.server_name}/{record.name} (now)",
        )
    )


class CatalogService:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        auditor: Auditor,
        *,
        cache_seconds: float = DEFAULT_SECONDS,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._auditor = auditor
        # Tool records as last read or written, by (account, server, tool) (hub/cache.py):
        # every tool call checks the pin, and an accept on another replica is seen within
        # ``cache_seconds`` (until then the tool stays refused: the safe side).
        self._records: Recent[tuple[str, str, str], ToolRecord | None] = Recent(cache_seconds)
        # One sync of a server at a time: agents listing the same server at once would each
        # pin a new tool (or audit the same change) again, a read-then-write race.
        self._syncing: dict[tuple[str, str], asyncio.Lock] = {}

    async def blocked(self, account_id: str, server: str, tool: str) -> bool:
        """Whether the tool's definition changed since it was pinned (then calls are refused)."""
        record = await self._record(account_id, server, tool)
        return record is not None and is_blocked(record)

    async def _record(self, account_id: str, server: str, tool: str) -> ToolRecord | None:
        key = (account_id, server, tool)
        cached = self._records.get(key)
        if not isinstance(cached, Missing):
            return cached
        record = await self._storage.tools.get(account_id, server, tool)
        self._records.put(key, record)
        return record

    async def _stored(
        self, account_id: str, server: str, names: list[str]
    ) -> dict[str, ToolRecord | None]:
        """The stored records of ``names``: from the cache when it holds them all (every
        listing syncs, so this is the usual case), else from one query for the server."""
        cached = {name: self._records.get((account_id, server, name)) for name in names}
        if not any(isinstance(record, Missing) for record in cached.values()):
            return {name: r for name, r in cached.items() if not isinstance(r, Missing)}
        stored = {tool.name: tool for tool in await self._storage.tools.list(account_id, server)}
        for name in names:
            self._records.put((account_id, server, name), stored.get(name))
        return {name: stored.get(name) for name in names}

    async def _store(self, record: ToolRecord) -> None:
        await self._storage.tools.upsert(record)
        self._records.put((record.account_id, record.server_name, record.name), record)

    async def sync(
        self, account_id: str, server: str, definitions: Sequence[dict[str, Any]]
    ) -> list[ToolRecord]:
        """Record what ``server`` serves now; pin new tools, audit changed ones (once per
        change). Returns the server's tools as stored, in the given order."""
        async with self._syncing.setdefault((account_id, server), asyncio.Lock()):
            return await self._sync(account_id, server, definitions)

    async def _sync(
        self, account_id: str, server: str, definitions: Sequence[dict[str, Any]]
    ) -> list[ToolRecord]:
        now = self._clock.now()
        stored = await self._stored(account_id, server, [str(d["name"]) for d in definitions])
        records: list[ToolRecord] = []
        for definition in definitions:
            name = str(definition["name"])
            digest = definition_hash(definition)
            known = stored.get(name)
            if known is None:
                record = ToolRecord(
                    id=new_id("tool"),
                    account_id=account_id,
                    server_name=server,
                    name=name,
                    description=str(definition.get("description") or ""),
                    input_schema=dict(definition.get("inputSchema") or {}),
                    definition_hash=digest,
                    pinned_hash=digest,
                    first_seen_at=now,
                    updated_at=now,
                    definition=definition,
                    pinned_definition=definition,
                )
                await self._store(record)
                await self._auditor.record(
                    account_id,
                    "tool.pinned",
                    "system",
                    {"server": server, "tool": name, "hash": digest},
                )
            elif known.definition_hash != digest or known.definition != definition:
                record = msgspec.structs.replace(
                    known,
                    description=str(definition.get("description") or ""),
                    input_schema=dict(definition.get("inputSchema") or {}),
                    definition_hash=digest,
                    definition=definition,
                    updated_at=now,
                )
                await self._store(record)
                if known.definition_hash != digest and digest != known.pinned_hash:
                    await self._auditor.record(
                        account_id,
                        "tool.changed",
                        "system",
                        {
                            "server": server,
                            "tool": name,
                            "pinned_hash": known.pinned_hash,
                            "hash": digest,
                            "diff": definition_diff(record),
                        },
                    )
            else:
                record = known
            records.append(record)
        return records

    async def get(self, account_id: str, server: str, tool: str) -> ToolRecord:
        found = await self._storage.tools.get(account_id, server, tool)
        if found is None:
            raise NotFoundError(f"server {server!r} has no tool {tool!r}")
        return found

    async def list(self, account_id: str, server: str | None = None) -> Sequence[ToolRecord]:
        return await self._storage.tools.list(account_id, server)

    async def accept(
        self, account_id: str, server: str, tool: str, *, actor: str
    ) -> tuple[ToolRecord, str]:
        """Pin the tool's current definition; returns the record and the accepted diff."""
        record = await self.get(account_id, server, tool)
        diff = definition_diff(record)
        if not is_blocked(record):
            return record, ""
        accepted = msgspec.structs.replace(
            record,
            pinned_hash=record.definition_hash,
            pinned_definition=record.definition,
            updated_at=self._clock.now(),
        )
        await self._store(accepted)
        await self._auditor.record(
            account_id,
            "tool.accepted",
            actor,
            {"server": server, "tool": tool, "hash": accepted.pinned_hash, "diff": diff},
        )
        return accepted, diff
