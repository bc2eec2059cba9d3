"""Rules every store implementation applies the same way (in-memory and SQL alike)."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.errors import ConflictError, ValidationError
from hub.ports import AuditQuery
from hub.records import ApprovalRequest, ApprovalStatus, ApprovalVote, VoteChoice


def aware_utc(value: datetime, what: str = "datetime") -> datetime:
    """``value`` in UTC; a naive datetime is a ``ValidationError`` (its zone is unknowable)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def check_audit_query(query: AuditQuery) -> None:
    """Refuse what no backend can answer the same way: see ``AuditQuery``."""
    if query.limit < 0 or query.after_seq < 0:
        raise ValidationError("audit query: limit and after_seq must not be negative")
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


def not_pending(request: ApprovalRequest) -> ConflictError:
    """The refusal of a vote on a request that is no longer pending (``cast_vote``)."""
    who = f" by {request.decided_by}" if request.decided_by else ""
    when = f" at {request.decided_at.isoformat()}" if request.decided_at else ""
    return ConflictError(
        f"approval request {request.id} is already {request.status.value}{who}{when}"
    )


def vote_outcome(vote: ApprovalVote, approvals: int, required: int) -> ApprovalStatus | None:
    """The status a just-recorded vote moves its pending request to, if any: a deny decides
    at once, enough approvals approve (``cast_vote``)."""
    if vote.choice is VoteChoice.DENY:
        return ApprovalStatus.DENIED
    return ApprovalStatus.APPROVED if approvals >= required else None
