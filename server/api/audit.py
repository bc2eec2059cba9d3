"""The audit trail: search, export (JSON Lines) and chain verification."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

from hub.ports import MAX_SEQ, AuditQuery
from hub.records import AuditEvent
from hub.wire import AuditEventView, ChainReportView, view_of
from server.api.deps import caller_of, hub_of
from server.auth import READ, roles

_encoder = msgspec.json.Encoder()


def _line(event: AuditEvent) -> bytes:
    """One line of the export: the event's wire view as JSON."""
    return _encoder.encode(view_of(event, AuditEventView)) + b"\n"


EXPORT_PAGE = 1000
EXACT_MAX = {"maximum": MAX_SEQ}  # Litestar writes the bound as a float, 2**63 once rounded


def _match(**fields: str | None) -> dict[str, Any]:
    """The event data fields a search names (``tool``, ``server``, ``decision``)."""
    return {key: value for key, value in fields.items() if value}


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
        after_seq: Annotated[int, QueryParameter(ge=0, le=MAX_SEQ, schema_extra=EXACT_MAX)] = 0,
        before_seq: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_SEQ, schema_extra=EXACT_MAX)
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        order: Annotated[str, QueryParameter(pattern="^(newest|oldest)$")] = "newest",
        tool: FromQuery[str | None] = None,
        server: FromQuery[str | None] = None,
        decision: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
    ) -> list[AuditEventView]:
        """Search events. ``kind`` is exact or a prefix ending in '.', e.g. ``tool.``; ``q`` is
        free text found in the kind, the actor or the data (ignoring case).
        Page newest first with ``before_seq`` (the last page's smallest seq), oldest first
        with ``after_seq``: keyset paging, so a deep page costs what the first one does."""
        query = AuditQuery(
            kind=kind,
            actor=actor,
            since=since,
            until=until,
            after_seq=after_seq,
            before_seq=before_seq,
            limit=limit,
            newest_first=order == "newest",
            match=_match(tool=tool, server=server, decision=decision),
            text=q or None,
        )
        found = await hub_of(request).auditor.query(caller_of(request).account_id, query)
        return [view_of(e, AuditEventView) for e in found]

    @get("/export", opt=roles(READ), media_type="application/x-ndjson")
    async def export(
        self,
        request: Request[Any, Any, Any],
        kind: FromQuery[str | None] = None,
        actor: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        tool: FromQuery[str | None] = None,
        server: FromQuery[str | None] = None,
        decision: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
    ) -> Stream:
        """The account's events, oldest first, one JSON object per line; the search's filters
        narrow it. Without a filter it is every event (what ``/verify`` checks); with one, the
        events are read in keyset pages as the stream is sent, never all at once."""
        auditor, account_id = hub_of(request).auditor, caller_of(request).account_id
        match = _match(tool=tool, server=server, decision=decision)
        filtered = any(v is not None for v in (kind, actor, since, until, q or None)) or bool(match)
        if not filtered:
            events = await auditor.export(account_id)

            async def everything() -> AsyncIterator[bytes]:
                for event in events:
                    yield _line(event)

            return Stream(everything(), media_type="application/x-ndjson")
        base = AuditQuery(
            kind=kind, actor=actor, since=since, until=until, match=match, text=q or None,
            limit=EXPORT_PAGE, newest_first=False,
        )  # fmt: skip
        # The first page is read before the 200 is sent, so a filter the store refuses is a
        # 400: PostgreSQL may refuse a value only as it compares rows (a NUL in a data filter
        # on a generic plan), which a LIMIT 0 read never does.
        first = await auditor.query(account_id, base)

        async def pages() -> AsyncIterator[bytes]:
            page = first
            while True:
                if page:
                    yield b"".join(_line(event) for event in page)
                if len(page) < EXPORT_PAGE:
                    return
                page = await auditor.query(
                    account_id, msgspec.structs.replace(base, after_seq=page[-1].seq)
                )

        return Stream(pages(), media_type="application/x-ndjson")

    @get("/verify", opt=roles(READ))
    async def verify(self, request: Request[Any, Any, Any]) -> ChainReportView:
        """Recompute the hash chain: edited, deleted or reordered events are named."""
        report = await hub_of(request).auditor.verify(caller_of(request).account_id)
        return view_of(report, ChainReportView)
