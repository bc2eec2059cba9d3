"""The ports the core needs from storage. ``InMemoryStorage`` (hub/memory.py) and
``SqlStorage`` (server/db) implement them; one contract suite (tests/contract) runs on all.

Rules every implementation keeps:
- every method is scoped by ``account_id`` where the record belongs to a tenant;
- ``add``/``create`` of a duplicate raises ``ConflictError``; a missing record on an update
  raises ``NotFoundError``; ``get`` returns ``None`` when absent;
- writing a tenant record for an account that does not exist raises ``NotFoundError``;
- datetimes come back timezone-aware, in UTC; a naive datetime is refused with
  ``ValidationError``; lists come back in a stable documented order (ties broken by id);
- JSON fields come back as JSON types (tuples as lists, datetimes as ISO strings);
- a negative ``limit`` is a ``ValidationError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from hub.model_gateway.records import (
    Budget,
    FlowExecution,
    ModelPrice,
    Provider,
    RuntimeToken,
    StoredSecret,
    UsageRecord,
)
from hub.records import (
    AccessToken,
    Account,
    ApiKey,
    ApprovalRequest,
    ApprovalStatus,
    ApprovalVote,
    AuditDraft,
    AuditEvent,
    ChannelMessage,
    Device,
    HeldCall,
    McpServer,
    NotificationClaim,
    PairingToken,
    PolicyVersion,
    SyncWait,
    Team,
    ToolRecord,
    User,
    UserPassword,
    WorkflowRecord,
)


class AccountStore(Protocol):
    async def add(self, account: Account) -> None: ...
    async def get(self, account_id: str) -> Account | None: ...
    async def get_by_name(self, name: str) -> Account | None: ...
    async def list(self) -> Sequence[Account]:
        """Ordered by creation time."""
        ...


class UserStore(Protocol):
    async def add(self, user: User) -> None:
        """Conflict when the email is taken in the account."""
        ...

    async def get(self, account_id: str, user_id: str) -> User | None: ...
    async def get_by_email(self, account_id: str, email: str) -> User | None: ...
    async def get_by_identity(self, account_id: str, channel: str, external_id: str) -> User | None:
        """The user who linked ``external_id`` on ``channel`` (``identities[channel]``); of
        several, the first by email. A lookup by index: it never reads every user."""
        ...

    async def set_identities(
        self, account_id: str, user_id: str, identities: Mapping[str, str]
    ) -> User:
        """Replace the user's linked channel identities; ``NotFoundError`` when missing."""
        ...

    async def list(self, account_id: str) -> Sequence[User]:
        """Ordered by email."""
        ...


class TeamStore(Protocol):
    async def add(self, team: Team) -> None:
        """Conflict when the name is taken in the account."""
        ...

    async def get_by_name(self, account_id: str, name: str) -> Team | None: ...
    async def set_members(self, account_id: str, name: str, members: Sequence[str]) -> Team: ...
    async def list(self, account_id: str) -> Sequence[Team]:
        """Ordered by name."""
        ...


class ApiKeyStore(Protocol):
    async def add(self, key: ApiKey) -> None: ...
    async def get(self, key_id: str) -> ApiKey | None:
        """Across accounts: the key id is what authentication starts from."""
        ...

    async def list(self, account_id: str) -> Sequence[ApiKey]:
        """Ordered by creation time."""
        ...

    async def revoke(self, account_id: str, key_id: str, at: datetime) -> ApiKey:
        """Marks the key revoked (idempotent: an earlier revocation time is kept).
        NotFound when the key does not exist in the account."""
        ...

    async def touch(self, key_id: str, at: datetime) -> None:
        """Records the last use. NotFound when the key does not exist."""
        ...


class PasswordStore(Protocol):
    """Users' password hashes and login roles (hub/logins.py), one per user."""

    async def set(self, password: UserPassword) -> None:
        """Creates or replaces the user's password. NotFound when the user does not exist in
        the account."""
        ...

    async def get(self, account_id: str, user_id: str) -> UserPassword | None: ...


class AccessTokenStore(Protocol):
    """The bearer tokens logins issued (hub/access_tokens.py), only their hashes."""

    async def add(self, token: AccessToken) -> None:
        """Conflict when the id or the hash exists; NotFound when the user does not exist in
        the account."""
        ...

    async def get(self, token_id: str) -> AccessToken | None:
        """Across accounts: the token id is what authentication starts from."""
        ...

    async def revoke(self, account_id: str, token_id: str, at: datetime) -> AccessToken:
        """Marks the token revoked (idempotent: an earlier revocation time is kept).
        NotFound when the token does not exist in the account."""
        ...

    async def revoke_user(self, account_id: str, user_id: str, at: datetime) -> int:
        """Revokes every token of the user not revoked yet; how many."""
        ...

    async def remove_expired(self, before: datetime, *, limit: int = 1000) -> int:
        """Deletes up to ``limit`` tokens (of any account) that expired before ``before``;
        how many."""
        ...


class McpServerStore(Protocol):
    async def upsert(self, server: McpServer) -> None:
        """Insert or replace by (account_id, name); a replaced row keeps its ``id`` and
        ``created_at``."""
        ...

    async def get(self, account_id: str, name: str) -> McpServer | None: ...
    async def list(self, account_id: str) -> Sequence[McpServer]:
        """Ordered by name."""
        ...

    async def remove(self, account_id: str, name: str) -> None:
        """NotFound when absent."""
        ...


class ToolStore(Protocol):
    async def upsert(self, tool: ToolRecord) -> None:
        """Insert or replace by (account_id, server_name, name); a replaced row keeps its ``id``
        and ``first_seen_at``."""
        ...

    async def get(self, account_id: str, server_name: str, name: str) -> ToolRecord | None: ...
    async def list(self, account_id: str, server_name: str | None = None) -> Sequence[ToolRecord]:
        """Ordered by (server_name, name)."""
        ...

    async def remove_server(self, account_id: str, server_name: str) -> None:
        """Removes the server's tools (none is fine)."""
        ...


class PolicyStore(Protocol):
    async def add(self, version: PolicyVersion) -> None:
        """Conflict when that version number exists: callers compute ``latest + 1`` and retry,
        which makes concurrent applies compare-and-set."""
        ...

    async def latest(self, account_id: str) -> PolicyVersion | None: ...
    async def get(self, account_id: str, version: int) -> PolicyVersion | None: ...
    async def list(self, account_id: str) -> Sequence[PolicyVersion]:
        """Newest first."""
        ...


class WorkflowStore(Protocol):
    async def replace_all(self, account_id: str, workflows: Sequence[WorkflowRecord]) -> None:
        """The given workflows become the account's whole set, atomically. Conflict when two
        share a name; ValidationError when one belongs to another account."""
        ...

    async def get(self, account_id: str, name: str) -> WorkflowRecord | None: ...
    async def list(self, account_id: str) -> Sequence[WorkflowRecord]:
        """Ordered by name."""
        ...


class ApprovalStore(Protocol):
    async def add(self, request: ApprovalRequest) -> None: ...
    async def get(self, account_id: str, request_id: str) -> ApprovalRequest | None: ...
    async def list(
        self, account_id: str, *, status: ApprovalStatus | None = None, limit: int = 100
    ) -> Sequence[ApprovalRequest]:
        """Newest first."""
        ...

    async def transition(
        self,
        account_id: str,
        request_id: str,
        *,
        expected: ApprovalStatus,
        new: ApprovalStatus,
        decided_at: datetime,
        decided_by: str | None,
        comment: str | None,
        decided_by_name: str | None = None,
        decided_via: str | None = None,
    ) -> ApprovalRequest | None:
        """Compare-and-set: moves the request from ``expected`` to ``new`` (recording who
        decided: ``decided_by``, ``decided_by_name``, ``decided_via``) and returns it, or
        returns ``None`` when its status was no longer ``expected`` (somebody else won).
        NotFound when the request does not exist."""
        ...

    async def claim(self, account_id: str, request_id: str, at: datetime) -> ApprovalRequest | None:
        """Compare-and-set: when the request is ``approved`` and not yet claimed, sets
        ``claimed_at`` to ``at`` and returns it; otherwise (not approved, or already claimed)
        returns ``None``. Of concurrent claims exactly one wins: an approval runs its call once.
        NotFound when the request does not exist."""
        ...

    async def store_result(
        self, account_id: str, request_id: str, result: dict[str, Any]
    ) -> ApprovalRequest:
        """Sets the claimed call's ``result`` once and returns the request. Conflict when the
        request was never claimed or already has a result; NotFound when it does not exist."""
        ...

    async def due(self, before: datetime, *, limit: int = 100) -> Sequence[ApprovalRequest]:
        """Pending requests of every account whose ``expires_at`` is set and earlier than
        ``before`` (for the expiry scheduler). Oldest ``expires_at`` first, ties by id."""
        ...

    async def escalation_due(
        self, before: datetime, *, limit: int = 100
    ) -> Sequence[ApprovalRequest]:
        """Pending, not yet escalated requests of every account whose ``escalate_at`` is set
        and earlier than ``before``. Oldest ``escalate_at`` first, ties by id."""
        ...

    async def escalate(
        self, account_id: str, request_id: str, *, at: datetime, approvers: Sequence[str]
    ) -> ApprovalRequest | None:
        """Compare-and-set: when the request is pending and not yet escalated, sets
        ``escalated_at`` to ``at`` and ``approvers`` to ``approvers`` and returns it; otherwise
        ``None``. Of concurrent escalations (several replicas) exactly one wins.
        NotFound when the request does not exist."""
        ...

    async def add_vote(self, vote: ApprovalVote) -> None:
        """Conflict when this approver already voted on this request."""
        ...

    async def cast_vote(self, vote: ApprovalVote, *, required: int, decided_by: str) -> VoteOutcome:
        """In one transaction: record ``vote`` on the pending request, count its approve votes
        (this one included) and, when the vote is a deny or the approvals reach ``required``,
        move the request to denied or approved (``decided_at`` the vote's time, ``decided_by``,
        ``decided_by_name`` and ``decided_via`` the vote's ``approver_name`` and ``via``,
        ``comment`` the vote's comment or ``None``). Concurrent votes on one request are
        serialised, so a quorum is never missed. Conflict, with nothing stored, when the
        request is no longer pending or this approver already voted; NotFound when the request
        does not exist in the vote's account."""
        ...

    async def votes(self, account_id: str, request_id: str) -> Sequence[ApprovalVote]:
        """Oldest first (ties by approver)."""
        ...


class HeldCallStore(Protocol):
    async def add(self, held: HeldCall) -> None:
        """Keep a held call's sealed arguments. ``ConflictError`` when the request already
        has some; ``NotFoundError`` when the request does not exist."""

    async def get(self, account_id: str, request_id: str) -> HeldCall | None: ...
    async def remove(self, account_id: str, request_id: str) -> None:
        """Forget them (nothing to forget is not an error)."""


class SyncWaitStore(Protocol):
    async def add(self, wait: SyncWait) -> None:
        """``NotFoundError`` when the request does not exist; ``ConflictError`` when it has a
        wait already."""

    async def remove(self, account_id: str, request_id: str) -> bool:
        """True when this call removed the wait (of concurrent removals, exactly one);
        nothing to remove is not an error."""
        ...

    async def renew(self, instance_id: str, at: datetime) -> None:
        """Record that the process ``instance_id`` is alive at ``at`` (its lease)."""

    async def orphaned(self, stale_before: datetime, *, limit: int = 100) -> Sequence[SyncWait]:
        """Waits whose process last renewed before ``stale_before`` (or never), whatever
        their request's status, oldest first, across accounts."""
        ...


class VoteOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What ``ApprovalStore.cast_vote`` did: the approve votes counted, and the request when
    this vote decided it."""

    approvals: int
    decided: ApprovalRequest | None = None


class UsedLinkStore(Protocol):
    async def use(self, account_id: str, link_id: str, at: datetime) -> bool:
        """Record a single-use link (an email approve/deny link) as used. ``True`` the first
        time, ``False`` for every later attempt: the caller that gets ``True`` may act."""
        ...


class ChannelMessageStore(Protocol):
    async def add(self, message: ChannelMessage) -> None:
        """Record a posted message; the same (channel, conversation, ts) again is ignored."""
        ...

    async def list(
        self, account_id: str, request_id: str, channel: str
    ) -> Sequence[ChannelMessage]:
        """The request's messages on ``channel``, oldest first."""
        ...


class NotificationClaimStore(Protocol):
    async def claim(self, claim: NotificationClaim) -> bool:
        """Claim (account, request, channel, operation) for ``claim.claimed_by``. ``True``
        when the claim is held by ``claimed_by`` (its first claim, or the same claimant again:
        a retry after a lost answer), ``False`` when another claimant holds it, from any
        process sharing the store: that one carries the operation out. Of concurrent first
        claims exactly one wins. NotFound for a missing account."""
        ...


class DeviceStore(Protocol):
    async def add(self, device: Device) -> None:
        """Conflict when the id or the secret hash exists."""
        ...

    async def get(self, device_id: str) -> Device | None:
        """Across accounts: the device id is what authentication starts from."""
        ...

    async def list(self, account_id: str, *, user_id: str | None = None) -> Sequence[Device]:
        """Ordered by creation time (ties by id); only ``user_id``'s when given."""
        ...

    async def revoke(self, account_id: str, device_id: str, at: datetime) -> Device:
        """Marks the device revoked (idempotent: an earlier revocation time is kept).
        NotFound when the device does not exist in the account."""
        ...

    async def set_push_token(
        self, account_id: str, device_id: str, push_token: str | None
    ) -> Device:
        """Replaces the device's push token (``None`` clears it). NotFound when absent."""
        ...


class PairingStore(Protocol):
    async def add(self, token: PairingToken) -> None:
        """Conflict when the id or the token hash exists."""
        ...

    async def get(self, pairing_id: str) -> PairingToken | None:
        """Across accounts: the pairing id is what the exchange starts from."""
        ...

    async def use(self, pairing_id: str, *, at: datetime, device_id: str) -> PairingToken | None:
        """Compare-and-set: when the token is unused and ``at`` is before ``expires_at``, sets
        ``used_at`` and ``device_id`` and returns it; otherwise returns ``None``. Of concurrent
        uses exactly one wins. NotFound when the token does not exist."""
        ...


MAX_SEQ = 2**63 - 1  # an audit event's seq is a signed 64-bit column (BIGINT)


class AuditQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters combine with AND; ``since`` is inclusive, ``until`` exclusive; ``after_seq``
    keeps events with a greater seq, ``before_seq`` (when set) those with a smaller one (keyset
    paging backwards, newest first). ``match`` values are JSON scalars (str, int, float, bool,
    None) compared with JSON equality (``true`` is not ``1``); keys may not contain quotes."""

    kind: str | None = None  # exact kind, or a prefix ending in "." (e.g. "tool.")
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = 0
    before_seq: int | None = None
    limit: int = 100
    newest_first: bool = True
    match: dict[str, Any] = {}  # top-level data fields that must equal these values
    # Free-text search: a substring of the kind, the actor or the data's JSON text, ignoring
    # ASCII case (non-ASCII text may be stored \u-escaped, so search it by its ASCII words).
    text: str | None = None


class AuditStore(Protocol):
    async def append(self, draft: AuditDraft) -> AuditEvent:
        """Chains the draft after the account's last event (``hub.audit_chain.chain``) and stores it
        atomically: concurrent appends never share a ``seq`` nor fork the chain."""
        ...

    async def query(self, account_id: str, query: AuditQuery) -> Sequence[AuditEvent]: ...
    async def all(self, account_id: str) -> Sequence[AuditEvent]:
        """Every event of the account, oldest first (for verify and export)."""
        ...

    async def head(self, account_id: str) -> tuple[int, str] | None:
        """(seq, hash) of the last event, kept separately from the events; ``None`` before the
        first event."""
        ...


# --- gateway: custody, providers, runtime tokens (hub/model_gateway) -----------------------------
class ProviderStore(Protocol):
    async def add(self, provider: Provider) -> None:
        """Conflict when the id or the (account, name) exists."""
        ...

    async def get(self, account_id: str, name: str) -> Provider | None: ...
    async def list(self, account_id: str) -> Sequence[Provider]:
        """Ordered by name."""
        ...

    async def update(self, provider: Provider) -> Provider:
        """Replace the provider named ``provider.name`` in its account; the stored row keeps
        its ``id`` and ``created_at``. NotFound when absent."""
        ...

    async def remove(self, account_id: str, name: str) -> None:
        """NotFound when absent."""
        ...


class SecretStore(Protocol):
    """``local_encrypted`` ciphertexts, one per (account, name)."""

    async def put(self, secret: StoredSecret) -> None:
        """Insert or replace by (account_id, name); a replaced row keeps its ``created_at``."""
        ...

    async def get(self, account_id: str, name: str) -> StoredSecret | None: ...
    async def list(self, account_id: str | None = None) -> Sequence[StoredSecret]:
        """Ordered by (account_id, name); every account's when ``account_id`` is None (for
        key rotation)."""
        ...

    async def swap(self, expected: StoredSecret, new: StoredSecret) -> bool:
        """Compare-and-set: replaces the secret with ``new`` (ciphertext, key id, updated_at)
        only while its ciphertext is still ``expected.ciphertext``; ``False`` when it changed
        or is gone (a concurrent write wins over a rotation)."""
        ...

    async def remove(self, account_id: str, name: str) -> None:
        """NotFound when absent."""
        ...


class FlowExecutionStore(Protocol):
    async def add(self, execution: FlowExecution) -> None:
        """Conflict when the id exists."""
        ...

    async def get(self, account_id: str, execution_id: str) -> FlowExecution | None: ...
    async def list(
        self, account_id: str, *, flow: str | None = None, limit: int = 100
    ) -> Sequence[FlowExecution]:
        """Newest first (ties by id); only ``flow``'s when given."""
        ...


class RuntimeTokenStore(Protocol):
    async def add(self, token: RuntimeToken) -> None:
        """Conflict when the id or the hash exists; NotFound when the execution does not."""
        ...

    async def get(self, token_id: str) -> RuntimeToken | None:
        """Across accounts: the token id is what authentication starts from."""
        ...

    async def list(self, account_id: str, execution_id: str) -> Sequence[RuntimeToken]:
        """The execution's tokens, oldest first (ties by id)."""
        ...

    async def revoke(self, account_id: str, token_id: str, at: datetime) -> RuntimeToken:
        """Marks the token revoked (idempotent: an earlier revocation time is kept).
        NotFound when the token does not exist in the account."""


# --- the model gateway's ledger and budgets (hub/model_gateway) ---------------------------------
class UsageQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters of ``UsageStore.list`` (AND); ``since`` inclusive, ``until`` exclusive.
    ``before`` pages backwards: records strictly older than (created_at, id) of that record."""

    flow: str | None = None
    execution_id: str | None = None
    api_key_id: str | None = None
    principal: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: tuple[datetime, str] | None = None
    limit: int = 100


class UsageGroup(msgspec.Struct, frozen=True, kw_only=True):
    """One row of a usage summary. ``key`` is the day (``YYYY-MM-DD``, UTC), the model, the
    flow (``None``: no flow) or the API key id."""

    key: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: Decimal


class UsageSession(msgspec.Struct, frozen=True, kw_only=True):
    """A flow execution's gateway usage (the runtime session explorer)."""

    execution_id: str
    flow: str | None
    principal: str
    requests: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: Decimal
    errors: int  # requests whose outcome was not "ok"
    first_seen: datetime
    last_seen: datetime


USAGE_GROUPS = ("day", "model", "flow", "api_key")


class UsageStore(Protocol):
    async def add_many(self, records: Sequence[UsageRecord]) -> None:
        """Store the records in one transaction. Conflict (nothing stored) when an id exists;
        NotFound when an account does not exist."""
        ...

    async def list(self, account_id: str, query: UsageQuery) -> Sequence[UsageRecord]:
        """Newest first (ties by id, descending)."""
        ...

    async def summary(
        self,
        account_id: str,
        *,
        group_by: str,
        since: datetime | None = None,
        until: datetime | None = None,
        flow: str | None = None,
    ) -> Sequence[UsageGroup]:
        """Totals per ``group_by`` (one of ``USAGE_GROUPS``), ordered by key (``None`` last).
        Sums are exact."""
        ...

    async def sessions(
        self,
        account_id: str,
        *,
        flow: str | None = None,
        principal: str | None = None,
        since: datetime | None = None,
        execution_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[UsageSession]:
        """One row per flow execution with usage (records without an execution are left
        out), the most recently seen first (ties by execution id). ``since`` keeps records
        at or after it."""
        ...


class BudgetCounter(msgspec.Struct, frozen=True, kw_only=True):
    """A budget's spend in one period: settled ``spent`` and the ``reserved`` amount of
    unexpired, unsettled reservations (integer nano-dollars)."""

    budget_id: str
    period_start: datetime
    spent_nanos: int = 0
    reserved_nanos: int = 0
    soft_notified: bool = False  # the soft-limit event went out for this period
    approval_id: str | None = None  # pause-and-ask: the approval request of this period
    approval_status: str | None = None  # pending | approved | denied


class BudgetClaim(msgspec.Struct, frozen=True, kw_only=True):
    """One budget a reservation counts against; ``hard_limit_nanos`` ``None``: no limit."""

    budget_id: str
    period_start: datetime
    hard_limit_nanos: int | None = None


class ReserveOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What ``BudgetStore.reserve`` did: the counters after it (this reservation included),
    in the claims' order, or the first claim it would have taken past its hard limit (then
    nothing was reserved, and ``counters`` are as they stand)."""

    counters: tuple[BudgetCounter, ...]
    refused: str | None = None  # the budget id whose hard limit stopped it


class BudgetStore(Protocol):
    async def add(self, budget: Budget) -> None:
        """Conflict when the id or the name (in the account) exists."""
        ...

    async def get(self, account_id: str, budget_id: str) -> Budget | None: ...
    async def get_by_name(self, account_id: str, name: str) -> Budget | None: ...
    async def list(self, account_id: str) -> Sequence[Budget]:
        """Ordered by name."""
        ...

    async def delete(self, account_id: str, budget_id: str) -> None:
        """Deletes the budget, its counters and reservations; NotFound when absent."""
        ...

    async def reserve(
        self,
        reservation_id: str,
        claims: Sequence[BudgetClaim],
        *,
        amount_nanos: int,
        at: datetime,
        expires_at: datetime,
    ) -> ReserveOutcome:
        """Atomically, across processes sharing the store: for every claim, when
        spent + unexpired reservations + ``amount_nanos`` stays within its hard limit, reserve
        ``amount_nanos`` against all of them; otherwise reserve nothing. Reservations expire
        at ``expires_at`` (a crashed process's reservation stops counting)."""
        ...

    async def settle(self, reservation_id: str, *, actual_nanos: int) -> None:
        """Replace the reservation by ``actual_nanos`` of spend in each of its budgets and
        periods, even when it expired meanwhile. Settling again (or an unknown id) is a
        no-op."""
        ...

    async def counters(
        self, keys: Sequence[tuple[str, datetime]], *, at: datetime
    ) -> Sequence[BudgetCounter]:
        """The counter of each (budget id, period start), in the given order (zeros when
        nothing was spent yet); reservations expired at ``at`` are not counted."""
        ...

    async def mark_soft_notified(self, budget_id: str, period_start: datetime) -> bool:
        """``True`` once per budget and period (of concurrent callers exactly one)."""
        ...

    async def claim_approval(
        self, budget_id: str, period_start: datetime, approval_id: str
    ) -> BudgetCounter:
        """Compare-and-set: when the period has no approval (or its approval ended without a
        decision, status ``None``), it becomes ``approval_id``, pending. Returns the counter
        as it stands: its ``approval_id`` is the one to wait for."""
        ...

    async def finish_approval(
        self, budget_id: str, period_start: datetime, approval_id: str, status: str | None
    ) -> None:
        """Set the status of the period's approval when it is still ``approval_id``:
        ``approved``, ``denied``, or ``None`` (expired: the next request asks again)."""
        ...


class ModelPriceStore(Protocol):
    async def set(self, account_id: str, price: ModelPrice) -> None:
        """Insert or replace the account's price for ``price.model`` (a pattern)."""
        ...

    async def list(self, account_id: str) -> Sequence[ModelPrice]:
        """Ordered by model."""
        ...

    async def delete(self, account_id: str, model: str) -> None:
        """NotFound when the account has no price for exactly ``model``."""
        ...


class Storage(Protocol):
    """Every store behind one object, plus lifecycle."""

    @property
    def accounts(self) -> AccountStore: ...
    @property
    def users(self) -> UserStore: ...
    @property
    def teams(self) -> TeamStore: ...
    @property
    def api_keys(self) -> ApiKeyStore: ...
    @property
    def passwords(self) -> PasswordStore: ...
    @property
    def access_tokens(self) -> AccessTokenStore: ...
    @property
    def servers(self) -> McpServerStore: ...
    @property
    def tools(self) -> ToolStore: ...
    @property
    def policies(self) -> PolicyStore: ...
    @property
    def workflows(self) -> WorkflowStore: ...
    @property
    def approvals(self) -> ApprovalStore: ...
    @property
    def held_calls(self) -> HeldCallStore: ...
    @property
    def sync_waits(self) -> SyncWaitStore: ...
    @property
    def audit(self) -> AuditStore: ...
    @property
    def used_links(self) -> UsedLinkStore: ...
    @property
    def channel_messages(self) -> ChannelMessageStore: ...
    @property
    def notification_claims(self) -> NotificationClaimStore: ...
    @property
    def devices(self) -> DeviceStore: ...
    @property
    def pairings(self) -> PairingStore: ...
    # gateway: custody
    @property
    def providers(self) -> ProviderStore: ...
    @property
    def secrets(self) -> SecretStore: ...
    @property
    def flow_executions(self) -> FlowExecutionStore: ...
    @property
    def runtime_tokens(self) -> RuntimeTokenStore: ...
    @property
    def usage(self) -> UsageStore: ...
    @property
    def budgets(self) -> BudgetStore: ...
    @property
    def model_prices(self) -> ModelPriceStore: ...

    async def close(self) -> None: ...
