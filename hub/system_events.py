"""Audited facts about the system itself, published on the ``system`` topic as they happen.

    PolicyService.apply ─▶ audit "policy.applied" ──┐
    CatalogService.sync ─▶ audit "tool.changed" ────┼─▶ Auditor ─▶ bus "system": PolicyApplied,
    NotificationDispatch ─▶ audit "notification.failed"            PolicyRolledBack, ToolBlocked,
    TrackerService ─▶ audit "tracker.added"/"tracker.removed"      NotificationFailed,
                                                                   TrackersChanged

The facts that are audited anyway become ``system`` events in one place, the :class:`Auditor`,
right after their audit record is written: no service publishes twice, and no event goes out
without its durable record. The facts the audit log does not keep (an upstream's session state,
a replica starting or stopping) are published by the server itself (server/system_events.py).
"""

from __future__ import annotations

from typing import Any

import msgspec

from hub.events import (
    BudgetCrossed,
    NotificationFailed,
    PolicyApplied,
    PolicyRolledBack,
    SystemEvent,
    ToolBlocked,
    TrackersChanged,
)
from hub.records import AuditEvent

SYSTEM_AUDIT_KINDS = frozenset(
    {
        "policy.applied",
        "tool.changed",
        "notification.failed",
        "budget.soft_crossed",
        "tracker.added",
        "tracker.removed",
    }
)


def system_event_of(audited: AuditEvent) -> SystemEvent | None:
    """The ``system`` event an audit event stands for, if any."""
    if audited.kind not in SYSTEM_AUDIT_KINDS:
        return None
    data = audited.data
    base: dict[str, Any] = {"account_id": audited.account_id, "at": audited.at}
    if audited.kind == "policy.applied":
        fields = {
            **base,
            "version": int(data["version"]),
            "previous_version": data.get("previous_version"),
            "name": str(data.get("name") or ""),
            "actor": audited.actor,
            "comment": str(data.get("comment") or ""),
        }
        if data.get("rollback_of") is not None:
            return PolicyRolledBack(**fields, rolled_back_to=int(data["rollback_of"]))
        return PolicyApplied(**fields)
    if audited.kind == "tool.changed":
        return ToolBlocked(
            **base,
            server=str(data["server"]),
            tool=str(data["tool"]),
            pinned_hash=str(data["pinned_hash"]),
            hash=str(data["hash"]),
        )
    if audited.kind in ("tracker.added", "tracker.removed"):
        change = audited.kind.removeprefix("tracker.")
        return TrackersChanged(**base, tracker=str(data.get("tracker") or ""), change=change)
    if audited.kind == "budget.soft_crossed":
        return msgspec.convert({**data, **base}, BudgetCrossed, from_attributes=False)
    return NotificationFailed(
        **base,
        request_id=str(data["request_id"]),
        channel=str(data["channel"]),
        operation=str(data["operation"]),
        attempt=int(data["attempt"]),
        attempts=int(data["attempts"]),
        final=bool(data["final"]),
        error=str(data["error"]),
    )
