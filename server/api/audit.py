"""The audit trail: search, export (JSON Lines) and chain verification."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

from hub.audit import ChainReport
from hub.ports import AuditQuery
from hub.records import AuditEvent
from server.api.deps import caller_of, hub_of
from server.auth import READ, roles

_encoder = msgspec.json.Encoder()


class AuditController(Controller):
    path = "/audit"
    tags = ["audit"]

    @get("/", opt=roles(READ))
    async def search(
        self,
        request: Request[Any, Any, Any],
        kind: FromQuery[str | None] = None,
        actor: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        after_seq: Annotated[int, QueryParameter(ge=0)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        order: Annotated[str, QueryParameter(pattern="^(newest|oldest)$")] = "newest",
        tool: FromQuery[str | None] = None,
        decision: FromQuery[str | None] = None,
    ) -> list[AuditEvent]:
        """Search events. ``kind`` is exact or a prefix ending in '.', e.g. ``tool.``."""
        match = {k: v for k, v in {"tool": tool, "decision": decision}.items() if v}
        query = AuditQuery(
            kind=kind,
            actor=actor,
            since=since,
            until=until,
            after_seq=after_seq,
            limit=limit,
            newest_first=order == "newest",
            match=match,
        )
        return list(await hub_of(request).auditor.query(caller_of(request).account_id, query))

    @get("/export", opt=roles(READ), media_type="application/x-ndjson")
    async def export(self, request: Request[Any, Any, Any]) -> Stream:
        """Every event of the account, oldest first, one JSON object per line."""
        events = await hub_of(request).auditor.export(caller_of(request).account_id)

        async def lines() -> AsyncIterator[bytes]:
            for event in events:
                yield _encoder.encode(event) + b"\n"

        return Stream(lines(), media_type="application/x-ndjson")

    @get("/verify", opt=roles(READ))
    async def verify(self, request: Request[Any, Any, Any]) -> ChainReport:
        """Recompute the hash chain: edited, deleted or reordered events are named."""
        return await hub_of(request).auditor.verify(caller_of(request).account_id)
