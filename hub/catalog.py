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
    def __init__(self, storage: Storage, clock: Clock, auditor: Auditor) -> None:
        self._storage = storage
        self._clock = clock
        self._auditor = auditor
        # One sync of a server at a time: agents listing the same server at once would each
        # pin a new tool (or audit the same change) again, a read-then-write race.
        self._syncing: dict[tuple[str, str], asyncio.Lock] = {}

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
        stored = {tool.name: tool for tool in await self._storage.tools.list(account_id, server)}
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
                await self._storage.tools.upsert(record)
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
                await self._storage.tools.upsert(record)
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
        await self._storage.tools.upsert(accepted)
        await self._auditor.record(
            account_id,
            "tool.accepted",
            actor,
            {"server": server, "tool": tool, "hash": accepted.pinned_hash, "diff": diff},
        )
        return accepted, diff
