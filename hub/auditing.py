"""Recording and reading the audit trail. Every recorded event is redacted first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.audit import ChainReport, verify_chain
from hub.clock import Clock
from hub.ports import AuditQuery, AuditStore
from hub.records import AuditDraft, AuditEvent
from hub.redact import redact


class Auditor:
    def __init__(self, store: AuditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def record(
        self, account_id: str, kind: str, actor: str, data: dict[str, Any] | None = None
    ) -> AuditEvent:
        draft = AuditDraft(
            account_id=account_id,
            kind=kind,
            actor=actor,
            at=self._clock.now(),
            data=redact(data or {}),
        )
        return await self._store.append(draft)

    async def query(self, account_id: str, query: AuditQuery) -> Sequence[AuditEvent]:
        return await self._store.query(account_id, query)

    async def export(self, account_id: str) -> Sequence[AuditEvent]:
        return await self._store.all(account_id)

    async def verify(self, account_id: str) -> ChainReport:
        events = await self._store.all(account_id)
        return verify_chain(events, head=await self._store.head(account_id))
