"""Recording and reading the audit trail. Every recorded event is redacted first.

An audited fact about the system itself (a policy applied, a pinned tool blocked, a notification
that failed) is also published on the event bus's ``system`` topic once it is recorded
(hub/system_events.py), when the auditor is given a bus.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hub.audit_chain import ChainReport, verify_chain
from hub.clock import Clock
from hub.events import SYSTEM_TOPIC, EventBus
from hub.ports import AuditQuery, AuditStore
from hub.records import AuditDraft, AuditEvent
from hub.redact import redact
from hub.system_events import SYSTEM_AUDIT_KINDS, system_event_of

log = logging.getLogger("preloop.audit")


class Auditor:
    def __init__(self, store: AuditStore, clock: Clock, *, bus: EventBus | None = None) -> None:
        self._store = store
        self._clock = clock
        self._bus = bus

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
        recorded = await self._store.append(draft)
        if self._bus is not None and kind in SYSTEM_AUDIT_KINDS:
            await _publish(self._bus, recorded)
        return recorded

    async def query(self, account_id: str, query: AuditQuery) -> Sequence[AuditEvent]:
        return await self._store.query(account_id, query)

    async def export(self, account_id: str) -> Sequence[AuditEvent]:
        return await self._store.all(account_id)

    async def verify(self, account_id: str) -> ChainReport:
        events = await self._store.all(account_id)
        return verify_chain(events, head=await self._store.head(account_id))


async def _publish(bus: EventBus, recorded: AuditEvent) -> None:
    """The fact is recorded: a failure to announce it is logged, never raised."""
    try:
        event = system_event_of(recorded)
        if event is not None:
            await bus.publish(SYSTEM_TOPIC, event)
    except Exception:
        log.exception("audit event %s #%d not published", recorded.kind, recorded.seq)
