"""What became of one tool call: the pipeline's answer, before any wire format.

    Outcome = Forwarded   the tool ran: its result as its server sent it (hub.tool_results)
            | Refused     not run, and why (a Reason), with the message for the agent
            | Failed      forwarded, but the upstream failed the call itself
            | Held        waits for an asynchronous approval: poll get_approval_status
            | Waiting     get_approval_status: still pending, or approved and running

Values only: the MCP edge (server/mcp/_answers.py) turns each into the result an agent gets.
The optional fields of :class:`Refused` are the call's decision details the agent is told
(and the edge puts in ``_meta``); ``None`` means "not part of this answer".
"""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec

from hub.tool_results import ToolResult


class Reason(enum.Enum):
    """Why a call was not run."""

    ROLE = "role"  # the key's role runs nothing (viewer, approver)
    ALLOW_LIST = "allow-list"  # outside the key's tool allow-list
    UNKNOWN_TOOL = "unknown-tool"  # the exposed name names no server's tool
    BAD_ARGUMENTS = "bad-arguments"  # a built-in tool called without what it needs
    PINNED = "pinned"  # the tool's definition changed since it was accepted
    NO_POLICY = "no-policy"
    POLICY_DENY = "policy-deny"  # a rule or the default denied it
    NO_WORKFLOW = "no-workflow"  # the rule's approval workflow is missing
    NOT_APPROVED = "not-approved"  # the approval was denied, expired or cancelled
    GONE = "gone"  # the agent went away while the call waited for approval
    ARGS_DIFFER = "args-differ"  # the approved call had other arguments
    ALREADY_USED = "already-used"  # the approval ran its call already
    NO_APPROVAL = "no-approval"  # get_approval_status: no such approval for this key
    NOT_HELD = "not-held"  # approved, but the call's arguments are gone or cannot be opened
    AUDIT_DOWN = "audit-down"  # the attempt could not be recorded (docs/decisions/0047)
    DATABASE_DOWN = "database-down"  # the store failed before anything was forwarded


class Forwarded(msgspec.Struct, frozen=True, kw_only=True, tag="forwarded"):
    """The call ran; ``result`` is what the tool's server answered (``is_error`` included)."""

    result: ToolResult


class Refused(msgspec.Struct, frozen=True, kw_only=True, tag="refused"):
    """The call was not run: ``reason`` says why and ``message`` says it to the agent."""

    reason: Reason
    message: str
    decision: str | None = None  # "deny", "require_approval"
    rule: str | None = None
    approval_id: str | None = None
    status: str | None = None  # the approval's or the call's ("denied", "refused", ...)
    error: str | None = None  # for the record: what failed (the audit log, the database)


class Failed(msgspec.Struct, frozen=True, kw_only=True, tag="failed"):
    """The call was forwarded and the upstream failed it (errored, timed out, exited)."""

    server: str
    error: str  # the upstream's failure, as the pool reported it


class Held(msgspec.Struct, frozen=True, kw_only=True, tag="held"):
    """The call waits for an asynchronous approval; it runs once approved and polled."""

    approval_id: str
    workflow: str
    expires_at: datetime | None
    approver: str  # who approves first: "human" or "AI"


class Waiting(msgspec.Struct, frozen=True, kw_only=True, tag="waiting"):
    """``get_approval_status`` of a call that has not finished: ``pending`` or ``running``."""

    approval_id: str
    status: str


Outcome = Forwarded | Refused | Failed | Held | Waiting
