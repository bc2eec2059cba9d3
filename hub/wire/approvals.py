"""Approval requests as the REST API answers them (``/api/v1/approvals``, the device routes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from hub.records import ApprovalStatus, VoteChoice


class ApprovalRequestView(msgspec.Struct, frozen=True, kw_only=True):
    """A tool call waiting for people (or decided): the stored request's fields, with the
    redacted arguments. ``decided_by`` is the person, ``decided_by_name`` their name as it was
    then, ``decided_via`` the credential (decision 0054)."""

    id: str
    account_id: str
    status: ApprovalStatus = ApprovalStatus.PENDING
    principal_key_id: str
    server: str
    tool: str
    args_digest: str
    args: dict[str, Any] = {}  # redacted, for display
    justification: str | None = None
    policy_version: int
    workflow: str
    rule: str = ""
    reason: str = ""
    required_approvals: int = 1
    created_at: datetime
    expires_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    decided_by_name: str | None = None
    decided_via: str | None = None
    comment: str | None = None
    approvers: tuple[str, ...] = ()  # user:<email>, team:<name>, role:<role>
    claimed_at: datetime | None = None
    result: dict[str, Any] | None = None  # the approved call's result, for async polling
    on_timeout: str = "deny"
    escalate_at: datetime | None = None
    escalation_approvers: tuple[str, ...] = ()
    escalated_at: datetime | None = None


class ApprovalVoteView(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    account_id: str
    approver: str  # the person: user id, or the key id of a key that belongs to no user
    choice: VoteChoice
    comment: str = ""
    channel: str = "api"
    created_at: datetime
    approver_name: str = ""
    via: str = ""  # the credential: key:<id>, slack:<id>, email:<link id>, device:<id>, ...


class ApprovalDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One request with its votes (``GET /api/v1/approvals/{id}``)."""

    request: ApprovalRequestView
    votes: list[ApprovalVoteView]
