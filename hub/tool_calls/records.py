"""The audit values of one tool call: ``tool.attempt`` before it is forwarded, ``tool.call``
once its outcome is known (docs/decisions/0047, 0058).

A call's facts are gathered in a :class:`Trail` while it goes through the pipeline (the
request, then the policy's decision, then its approval, then its attempt); when the outcome
is known, :func:`call_record` builds the frozen :class:`ToolCallRecord` from the trail and
the outcome, once, and that value is what is written. Fields left ``UNSET`` are not part of
the stored payload (a refusal before the policy has no ``why``; a poll of
``get_approval_status`` no ``session``); ``None`` is stored as ``null``, as it always was.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from hub.tool_calls.outcomes import Failed, Forwarded, Held, Outcome, Reason, Refused, Waiting

CALL_KIND = "tool.call"
ATTEMPT_KIND = "tool.attempt"
DISCONNECTED = "the client disconnected while waiting"
AUDIT_DOWN = "Preloop cannot write its audit log"
DATABASE_DOWN = "Preloop's database failed"

# The record's status of a refusal, where it is not the refusal's own status (or "denied").
_REFUSED_STATUS = {Reason.PINNED: "blocked", Reason.ALREADY_USED: "already_used"}


class _CallFacts(msgspec.Struct, kw_only=True):
    """What a call's record says about it, learnt as the call goes (shared by the trail and
    the record)."""

    server: str
    tool: str
    args: dict[str, Any]
    justification: str | UnsetType | None = UNSET
    session: str | UnsetType = UNSET
    approval_id: str | UnsetType = UNSET
    via: str | UnsetType = UNSET
    decision: str | UnsetType = UNSET
    rule: str | UnsetType = UNSET
    why: str | UnsetType = UNSET
    policy_version: int | UnsetType = UNSET
    evaluation_error: str | UnsetType = UNSET
    approval_status: str | UnsetType = UNSET
    decided_by: str | UnsetType | None = UNSET
    decided_by_name: str | UnsetType | None = UNSET
    decided_via: str | UnsetType | None = UNSET
    call_id: str | UnsetType = UNSET


class Trail(_CallFacts, kw_only=True):
    """What one call has gathered for its record so far (mutable, owned by one call)."""

    outcome: Outcome | None = None  # once the call ran: kept for a cancellation after it


class ToolCallRecord(_CallFacts, frozen=True, kw_only=True):  # type: ignore[misc]  # msgspec allows it
    """One ``tool.call`` audit record: every call's, written exactly once."""

    status: str
    error: str | UnsetType = UNSET
    duration_ms: float | UnsetType = UNSET

    def payload(self) -> dict[str, Any]:
        """The stored event's data: every field that is set (``args`` as given)."""
        return {
            name: value
            for name in self.__struct_fields__
            if (value := getattr(self, name)) is not UNSET
        }


class ToolAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """The ``tool.attempt`` record: a call is about to be forwarded (its approval claimed)."""

    call_id: str
    server: str
    tool: str
    args: dict[str, Any]
    approval_id: str | UnsetType = UNSET

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "call_id": self.call_id,
            "server": self.server,
            "tool": self.tool,
            "args": self.args,
        }
        if self.approval_id is not UNSET:
            data["approval_id"] = self.approval_id
        return data


def call_record(trail: Trail, outcome: Outcome | None, duration_ms: float) -> ToolCallRecord:
    """The call's record: its trail, and the outcome (``None``: the call was cancelled)."""
    status, error = _status(outcome)
    facts = msgspec.structs.asdict(trail)
    del facts["outcome"]
    return ToolCallRecord(**facts, status=status, error=error, duration_ms=duration_ms)


def _status(outcome: Outcome | None) -> tuple[str, str | UnsetType]:
    match outcome:
        case None:
            return "cancelled", UNSET
        case Forwarded(result=result):
            return ("error" if result.is_error else "ok"), UNSET
        case Failed(error=error):
            return "upstream_error", error
        case Held():
            return "pending", UNSET
        case Refused(reason=reason, status=status, error=error):
            recorded = _REFUSED_STATUS.get(reason) or status or "denied"
            return recorded, UNSET if error is None else error
        case Waiting(status=status):  # never recorded: get_approval_status ran nothing
            return status, UNSET


def refusal_record(
    server: str, tool: str, args: dict[str, Any], session: str, refused: Refused
) -> ToolCallRecord:
    """The record of a call refused before the policy saw it (role, allow-list, pinning)."""
    return ToolCallRecord(
        server=server,
        tool=tool,
        args=args,
        session=session,
        decision=refused.decision or "deny",
        rule=refused.rule or "",
        status=_status(refused)[0],
    )
