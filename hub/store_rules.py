"""Rules every store implementation applies the same way (in-memory and SQL alike)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

import msgspec

from hub.errors import ValidationError
from hub.ports import AuditQuery
from hub.records import ApprovalStatus, VoteChoice


def aware_utc(value: datetime, what: str = "datetime") -> datetime:
    """``value`` in UTC; a naive datetime is a ``ValidationError`` (its zone is unknowable)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


S = TypeVar("S", bound=msgspec.Struct)


def stored_copy(record: S) -> S:
    """A private copy of ``record`` as a database gives it back: datetimes in UTC (naive ones
    refused), JSON fields as JSON types. The in-memory stores keep and hand out such copies."""
    changes = {
        name: aware_utc(value, name)
        for name in record.__struct_fields__
        if isinstance(value := getattr(record, name), datetime)
    }
    normalised = msgspec.structs.replace(record, **changes)
    return msgspec.json.decode(msgspec.json.encode(normalised), type=type(record))


def check_audit_query(query: AuditQuery) -> None:
    """Refuse what no backend can answer the same way: see ``AuditQuery``."""
    if query.limit < 0 or query.after_seq < 0 or (query.before_seq or 0) < 0:
        raise ValidationError("audit query: limit, after_seq and before_seq must not be negative")
    for bound in (query.since, query.until):
        if bound is not None:
            aware_utc(bound, "audit query time bound")
    for key, value in query.match.items():
        if '"' in key or "\\" in key:
            raise ValidationError(f"audit query: match key {key!r} may not contain quotes")
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise ValidationError(f"audit query: match value for {key!r} must be a JSON scalar")


def check_limit(limit: int) -> None:
    if limit < 0:
        raise ValidationError(f"limit must not be negative, got {limit}")


def vote_outcome(choice: VoteChoice, approvals: int, required: int) -> ApprovalStatus | None:
    """The status a vote moves its request to (``cast_vote``): a deny decides at once, an
    approval once the approvals reach the quorum; ``None`` while the quorum is not reached."""
    if choice == VoteChoice.DENY:
        return ApprovalStatus.DENIED
    return ApprovalStatus.APPROVED if approvals >= required else None
