"""The records the stores keep. Frozen msgspec Structs; every tenant record has ``account_id``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec


class Role(StrEnum):
    """What an API key may do. Each role includes the ones below it, except ``agent``."""

    ADMIN = "admin"  # everything
    APPROVER = "approver"  # decide approvals, read everything
    VIEWER = "viewer"  # read policies, audit, approvals
    AGENT = "agent"  # call tools and models through Preloop; read nothing else


class Account(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    created_at: datetime


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    email: str
    name: str = ""
    created_at: datetime
    # channel -> this person's id on it (``preloop users link``), e.g. {"slack": "U123"}
    identities: dict[str, str] = {}


class Team(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    name: str
    members: tuple[str, ...] = ()  # user ids
    created_at: datetime


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """An API key as stored: never the key itself, only its SHA-256 hash."""

    id: str  # public identifier, also embedded in the key text
    account_id: str
    name: str
    role: Role
    key_hash: str
    user_id: str | None = None
    labels: dict[str, str] = {}
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    # The key's tool allow-list: glob patterns over ``<server>__<tool>`` (hub/allowlist.py);
    # empty means every tool.
    tools: tuple[str, ...] = ()

    def usable_at(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


class UserPassword(msgspec.Struct, frozen=True, kw_only=True):
    """A user's password as stored: only its scrypt hash (hub/passwords.py), and the role a
    login with it gets (``preloop users passwd``, docs/decisions/0092)."""

    account_id: str
    user_id: str
    password_hash: str  # scrypt$ln=..,r=..,p=..$salt$hash: the cost travels with the hash
    role: Role
    updated_at: datetime


class AccessToken(msgspec.Struct, frozen=True, kw_only=True):
    """A short-lived bearer token a login issued (``plat_<16 hex>_<secret>``): stored only as
    the SHA-256 of its text, with the user, account and role it acts as (hub/access_tokens.py)."""

    id: str  # at_<16 hex>, the hex also in the token text
    account_id: str
    user_id: str
    role: Role
    token_hash: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class McpServer(msgspec.Struct, frozen=True, kw_only=True):
    """An upstream MCP server Preloop protects."""

    id: str
    account_id: str
    name: str
    transport: str  # stdio | streamable-http | sse
    config: dict[str, Any] = {}  # command/args/env or url/headers (secret references only)
    source: str = "api"  # api | policy
    created_at: datetime
    updated_at: datetime


class ToolRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A tool seen on an upstream. ``definition`` is the whole MCP tool definition as last
    seen (``definition_hash`` its hash); ``pinned_definition``/``pinned_hash`` what an
    administrator accepted (or what was first seen). They differ when the upstream changed the
    tool: the firewall then refuses it until the change is accepted."""

    id: str
    account_id: str
    server_name: str
    name: str
    description: str = ""
    input_schema: dict[str, Any] = {}
    definition_hash: str
    pinned_hash: str
    first_seen_at: datetime
    updated_at: datetime
    definition: dict[str, Any] = {}
    pinned_definition: dict[str, Any] = {}


class PolicyVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One applied version of an account's policy. ``source`` is the canonical YAML."""

    account_id: str
    version: int
    digest: str  # sha256 of source
    source: str
    name: str = ""
    created_at: datetime
    created_by: str = ""  # key id or "system"
    comment: str = ""


class WorkflowRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An approval workflow as the active policy defines it (JSON of the policy's workflow)."""

    account_id: str
    name: str
    spec: dict[str, Any]
    policy_version: int
    updated_at: datetime


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class ApprovalRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A tool call waiting for people. Bound to the exact call by ``args_digest``."""

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
    # Who decided, the same on every channel (docs/decisions/0054-who-decided.md): the person
    # (a user id; a key that belongs to no user is its own person, by key id; ``system``;
    # ``ai:<model>``), their name as it was then, and the credential it came through
    # (``key:<id>``, ``slack:<id>``, ``mattermost:<id>``, ``email:<link id>``,
    # ``device:<id>``).
    decided_by: str | None = None
    decided_by_name: str | None = None
    decided_via: str | None = None
    comment: str | None = None
    # Who may decide (``user:<email>``, ``team:<name>``, ``role:<role>``), copied from the
    # workflow when the request is created: a later policy change cannot change the deciders.
    approvers: tuple[str, ...] = ()
    claimed_at: datetime | None = None  # when the approved call started: an approval is used once
    result: dict[str, Any] | None = None  # the approved call's result (JSON), for async polling
    # What the deadline means, from the workflow: ``deny`` (decided as denied) or ``expire``.
    on_timeout: str = "deny"
    # Escalation, from the workflow: when nobody decided by ``escalate_at``, the scheduler
    # adds ``escalation_approvers`` to ``approvers`` and sets ``escalated_at`` (once).
    escalate_at: datetime | None = None
    escalation_approvers: tuple[str, ...] = ()
    escalated_at: datetime | None = None


class ChannelMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message a channel posted about a request (Slack: the channel id and ``ts``;
    Mattermost: the channel id and the post id), kept so any replica, also after a restart,
    can update it once the request is decided."""

    account_id: str
    request_id: str
    channel: str  # the notifier's channel, e.g. "slack"
    conversation: str  # where it was posted (a Slack or Mattermost channel id)
    ts: str  # the message's id there (Slack's ts, Mattermost's post id)
    created_at: datetime


class NotificationOperation(StrEnum):
    """What a channel does for a request: post it, post its escalation, update the posts.
    ``announce``: post an announcement (``hub.notifier.Announcement``; its key stands in for
    the request id in the claim)."""

    DELIVER = "deliver"
    ESCALATE = "escalate"
    SETTLE = "settle"
    ANNOUNCE = "announce"


class NotificationClaim(msgspec.Struct, frozen=True, kw_only=True):
    """One process's claim to carry out one notification operation of one request on one
    channel. The first claim wins; every other process that receives the same event leaves
    the operation to the claimant (``hub.notification_dispatch``)."""

    account_id: str
    request_id: str
    channel: str
    operation: NotificationOperation
    claimed_at: datetime
    claimed_by: str  # the claiming dispatch's id (host, pid and a random part)


class VoteChoice(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class ApprovalVote(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    account_id: str
    approver: str  # the person: user id, or the key id of a key that belongs to no user
    choice: VoteChoice
    comment: str = ""
    channel: str = "api"
    created_at: datetime
    approver_name: str = ""  # the person's name (a user's name or email, a key's name)
    via: str = ""  # the credential: key:<id>, slack:<id>, email:<link id>, device:<id>, …


class Device(msgspec.Struct, frozen=True, kw_only=True):
    """A phone paired by QR code (hub/devices.py). Its credential acts for ``user_id`` and can
    only list and decide that user's approvals and set its push token. Only the SHA-256 of
    the credential is stored."""

    id: str  # public identifier, also embedded in the credential text
    account_id: str
    user_id: str
    name: str
    platform: str  # ios | android
    secret_hash: str
    push_token: str | None = None  # the platform's device token, for the push proxy
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class PairingToken(msgspec.Struct, frozen=True, kw_only=True):
    """A one-time token a QR code carries: exchanged once, before ``expires_at``, for a
    device credential of ``user_id``. Only its SHA-256 is stored."""

    id: str  # public identifier, also embedded in the token text
    account_id: str
    user_id: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    device_id: str | None = None  # the device it was exchanged for


class AuditDraft(msgspec.Struct, frozen=True, kw_only=True):
    """An audit event before the store chains it."""

    account_id: str
    kind: str  # e.g. tool.call, policy.applied, key.created
    actor: str  # key id, user id or "system"
    at: datetime
    data: dict[str, Any] = {}


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An audit event as stored: ``hash`` covers this event's content and ``prev_hash``."""

    account_id: str
    seq: int  # 1, 2, 3 … per account
    kind: str
    actor: str
    at: datetime
    data: dict[str, Any] = {}
    prev_hash: str
    hash: str


class HeldCall(msgspec.Struct, frozen=True, kw_only=True):
    """The real arguments of a call held for asynchronous approval, sealed: any replica, also
    after a restart, can run the approved call (once: the request's claim decides). The
    request itself keeps only the redacted arguments and their digest."""

    account_id: str
    request_id: str
    key_id: str  # the sealing key
    sealed: str  # base64(nonce || ciphertext || tag) of the arguments' JSON
    created_at: datetime


class SyncWait(msgspec.Struct, frozen=True, kw_only=True):
    """A call waiting, in one server process (``instance_id``), for its synchronous approval.
    A process renews its lease while it runs; a wait whose process stopped renewing is an
    orphan: nobody can run the call any more (hub/sync_waits.py)."""

    account_id: str
    request_id: str
    instance_id: str
    created_at: datetime
