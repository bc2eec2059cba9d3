"""In-memory storage: the fake unit tests plug in, held to the same contract suite as SQL.

Records are copied in and out through JSON, as a database would: a caller mutating a dict it
passed in changes nothing stored, JSON fields come back as JSON types, and datetimes come back
in UTC. Naive datetimes are refused. Every write checks that its account exists.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from hub.audit_chain import GENESIS_HASH, chain
from hub.errors import ConflictError, NotFoundError, ValidationError
from hub.model_gateway.memory import (
    InMemoryBudgetStore,
    InMemoryModelPriceStore,
    InMemoryUsageStore,
)
from hub.model_gateway.records import FlowExecution, Provider, RuntimeToken, StoredSecret
from hub.ports import AuditQuery, Storage, VoteOutcome
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
    VoteChoice,
    WorkflowRecord,
)
from hub.store_rules import (
    aware_utc,
    check_audit_query,
    check_limit,
    stored_copy,
    vote_outcome,
)

R = TypeVar("R", bound=msgspec.Struct)
_Scalar = str | int | float | bool | None


def _json_equal(actual: Any, expected: _Scalar) -> bool:
    """JSON equality of scalars: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(expected, bool) or expected is None or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual == expected
    return isinstance(actual, int | float) and actual == expected


class _State:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.users: dict[str, User] = {}
        # (account, channel, the channel's id of the person) -> the users who linked it
        self.user_identities: dict[tuple[str, str, str], set[str]] = {}
        self.teams: dict[str, Team] = {}
        self.keys: dict[str, ApiKey] = {}
        self.passwords: dict[tuple[str, str], UserPassword] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.servers: dict[tuple[str, str], McpServer] = {}
        self.tools: dict[tuple[str, str, str], ToolRecord] = {}
        self.policies: dict[tuple[str, int], PolicyVersion] = {}
        self.workflows: dict[str, dict[str, WorkflowRecord]] = {}
        self.approvals: dict[str, ApprovalRequest] = {}
        self.votes: dict[tuple[str, str], ApprovalVote] = {}
        self.held_calls: dict[tuple[str, str], HeldCall] = {}
        self.sync_waits: dict[tuple[str, str], SyncWait] = {}
        self.leases: dict[str, datetime] = {}  # instance id -> last renewed
        self.events: dict[str, list[AuditEvent]] = {}
        self.heads: dict[str, tuple[int, str]] = {}
        self.used_links: dict[str, str] = {}  # link id -> account id
        self.channel_messages: dict[tuple[str, str, str], ChannelMessage] = {}
        self.notification_claims: dict[tuple[str, str, str, str], NotificationClaim] = {}
        self.devices: dict[str, Device] = {}
        self.pairings: dict[str, PairingToken] = {}
        # gateway: custody
        self.providers: dict[tuple[str, str], Provider] = {}
        self.secrets: dict[tuple[str, str], StoredSecret] = {}
        self.flow_executions: dict[str, FlowExecution] = {}
        self.runtime_tokens: dict[str, RuntimeToken] = {}

    def index_identities(self, user: User, before: Mapping[str, str]) -> None:
        """Move ``user`` in ``user_identities`` from its ``before`` identities to its own."""
        for channel, external_id in before.items():
            self.user_identities.get((user.account_id, channel, external_id), set()).discard(
                user.id
            )
        for channel, external_id in user.identities.items():
            if external_id:
                key = (user.account_id, channel, external_id)
                self.user_identities.setdefault(key, set()).add(user.id)

    def require_account(self, account_id: str) -> None:
        if account_id not in self.accounts:
            raise NotFoundError(f"account {account_id!r} does not exist")

    def require_user(self, account_id: str, user_id: str) -> None:
        user = self.users.get(user_id)
        if user is None or user.account_id != account_id:
            raise NotFoundError(f"user {user_id!r} does not exist")


def _one(records: Iterable[R], test: Callable[[R], bool]) -> R | None:
    return next((r for r in records if test(r)), None)


class _Store:
    def __init__(self, state: _State) -> None:
        self._s = state

    def _request(self, account_id: str, request_id: str) -> ApprovalRequest:
        """The account's approval request, or NotFoundError."""
        found = self._s.approvals.get(request_id)
        if found is None or found.account_id != account_id:
            raise NotFoundError(f"approval request {request_id!r} does not exist")
        return found


class InMemoryAccountStore(_Store):
    async def add(self, account: Account) -> None:
        if account.id in self._s.accounts or await self.get_by_name(account.name):
            raise ConflictError(f"account {account.id!r} or name {account.name!r} exists")
        self._s.accounts[account.id] = stored_copy(account)

    async def get(self, account_id: str) -> Account | None:
        return self._s.accounts.get(account_id)

    async def get_by_name(self, name: str) -> Account | None:
        return _one(self._s.accounts.values(), lambda a: a.name == name)

    async def list(self) -> Sequence[Account]:
        return sorted(self._s.accounts.values(), key=lambda a: (a.created_at, a.id))


class InMemoryUserStore(_Store):
    async def add(self, user: User) -> None:
        self._s.require_account(user.account_id)
        if user.id in self._s.users or await self.get_by_email(user.account_id, user.email):
            raise ConflictError(f"user {user.id!r} or email {user.email!r} exists")
        self._s.users[user.id] = stored_copy(user)
        self._s.index_identities(user, {})

    async def get(self, account_id: str, user_id: str) -> User | None:
        user = self._s.users.get(user_id)
        return user if user is not None and user.account_id == account_id else None

    async def get_by_email(self, account_id: str, email: str) -> User | None:
        return _one(
            self._s.users.values(), lambda u: (u.account_id, u.email) == (account_id, email)
        )

    async def get_by_identity(self, account_id: str, channel: str, external_id: str) -> User | None:
        linked = self._s.user_identities.get((account_id, channel, external_id), set())
        found = [self._s.users[user_id] for user_id in linked]
        return min(found, key=lambda u: u.email, default=None)

    async def list(self, account_id: str) -> Sequence[User]:
        found = [u for u in self._s.users.values() if u.account_id == account_id]
        return sorted(found, key=lambda u: u.email)

    async def set_identities(
        self, account_id: str, user_id: str, identities: Mapping[str, str]
    ) -> User:
        user = await self.get(account_id, user_id)
        if user is None:
            raise NotFoundError(f"user {user_id!r} does not exist")
        before = user.identities
        user = stored_copy(msgspec.structs.replace(user, identities=dict(identities)))
        self._s.users[user.id] = user
        self._s.index_identities(user, before)
        return user


class InMemoryTeamStore(_Store):
    async def add(self, team: Team) -> None:
        self._s.require_account(team.account_id)
        if team.id in self._s.teams or await self.get_by_name(team.account_id, team.name):
            raise ConflictError(f"team {team.id!r} or name {team.name!r} exists")
        self._s.teams[team.id] = stored_copy(team)

    async def get_by_name(self, account_id: str, name: str) -> Team | None:
        return _one(self._s.teams.values(), lambda t: (t.account_id, t.name) == (account_id, name))

    async def set_members(self, account_id: str, name: str, members: Sequence[str]) -> Team:
        team = await self.get_by_name(account_id, name)
        if team is None:
            raise NotFoundError(f"team {name!r} does not exist")
        team = stored_copy(msgspec.structs.replace(team, members=tuple(members)))
        self._s.teams[team.id] = team
        return team

    async def list(self, account_id: str) -> Sequence[Team]:
        found = [t for t in self._s.teams.values() if t.account_id == account_id]
        return sorted(found, key=lambda t: t.name)


class InMemoryApiKeyStore(_Store):
    async def add(self, key: ApiKey) -> None:
        self._s.require_account(key.account_id)
        if key.id in self._s.keys or _one(
            self._s.keys.values(), lambda k: k.key_hash == key.key_hash
        ):
            raise ConflictError(f"API key {key.id!r} or its hash exists")
        self._s.keys[key.id] = stored_copy(key)

    async def get(self, key_id: str) -> ApiKey | None:
        return self._s.keys.get(key_id)

    async def list(self, account_id: str) -> Sequence[ApiKey]:
        found = [k for k in self._s.keys.values() if k.account_id == account_id]
        return sorted(found, key=lambda k: (k.created_at, k.id))

    async def revoke(self, account_id: str, key_id: str, at: datetime) -> ApiKey:
        key = self._s.keys.get(key_id)
        if key is None or key.account_id != account_id:
            raise NotFoundError(f"API key {key_id!r} does not exist")
        at = aware_utc(at, "revoked_at")
        if key.revoked_at is None or at < key.revoked_at:
            key = msgspec.structs.replace(key, revoked_at=at)
            self._s.keys[key_id] = key
        return key

    async def touch(self, key_id: str, at: datetime) -> None:
        key = self._s.keys.get(key_id)
        if key is None:
            raise NotFoundError(f"API key {key_id!r} does not exist")
        at = aware_utc(at, "last_used_at")
        self._s.keys[key_id] = msgspec.structs.replace(key, last_used_at=at)


class InMemoryPasswordStore(_Store):
    async def set(self, password: UserPassword) -> None:
        self._s.require_account(password.account_id)
        self._s.require_user(password.account_id, password.user_id)
        self._s.passwords[(password.account_id, password.user_id)] = stored_copy(password)

    async def get(self, account_id: str, user_id: str) -> UserPassword | None:
        return self._s.passwords.get((account_id, user_id))


class InMemoryAccessTokenStore(_Store):
    async def add(self, token: AccessToken) -> None:
        self._s.require_account(token.account_id)
        self._s.require_user(token.account_id, token.user_id)
        if token.id in self._s.access_tokens or _one(
            self._s.access_tokens.values(), lambda t: t.token_hash == token.token_hash
        ):
            raise ConflictError(f"access token {token.id!r} or its hash exists")
        self._s.access_tokens[token.id] = stored_copy(token)

    async def get(self, token_id: str) -> AccessToken | None:
        return self._s.access_tokens.get(token_id)

    async def revoke(self, account_id: str, token_id: str, at: datetime) -> AccessToken:
        token = self._s.access_tokens.get(token_id)
        if token is None or token.account_id != account_id:
            raise NotFoundError(f"access token {token_id!r} does not exist")
        at = aware_utc(at, "revoked_at")
        if token.revoked_at is None or at < token.revoked_at:
            token = msgspec.structs.replace(token, revoked_at=at)
            self._s.access_tokens[token_id] = token
        return token

    async def revoke_user(self, account_id: str, user_id: str, at: datetime) -> int:
        at = aware_utc(at, "revoked_at")
        found = [
            t
            for t in self._s.access_tokens.values()
            if (t.account_id, t.user_id) == (account_id, user_id) and t.revoked_at is None
        ]
        for token in found:
            self._s.access_tokens[token.id] = msgspec.structs.replace(token, revoked_at=at)
        return len(found)

    async def remove_expired(self, before: datetime, *, limit: int = 1000) -> int:
        check_limit(limit)
        before = aware_utc(before, "before")
        gone = sorted(
            (t for t in self._s.access_tokens.values() if t.expires_at < before),
            key=lambda t: (t.expires_at, t.id),
        )[:limit]
        for token in gone:
            del self._s.access_tokens[token.id]
        return len(gone)


class InMemoryMcpServerStore(_Store):
    async def upsert(self, server: McpServer) -> None:
        self._s.require_account(server.account_id)
        key = (server.account_id, server.name)
        old = self._s.servers.get(key)
        if old is not None:  # the row keeps its identity and birth date
            server = msgspec.structs.replace(server, id=old.id, created_at=old.created_at)
        elif _one(self._s.servers.values(), lambda s: s.id == server.id):
            raise ConflictError(f"MCP server id {server.id!r} exists")
        self._s.servers[key] = stored_copy(server)

    async def get(self, account_id: str, name: str) -> McpServer | None:
        return self._s.servers.get((account_id, name))

    async def list(self, account_id: str) -> Sequence[McpServer]:
        return sorted(
            (s for s in self._s.servers.values() if s.account_id == account_id),
            key=lambda s: s.name,
        )

    async def remove(self, account_id: str, name: str) -> None:
        if self._s.servers.pop((account_id, name), None) is None:
            raise NotFoundError(f"MCP server {name!r} does not exist")


class InMemoryToolStore(_Store):
    async def upsert(self, tool: ToolRecord) -> None:
        self._s.require_account(tool.account_id)
        key = (tool.account_id, tool.server_name, tool.name)
        old = self._s.tools.get(key)
        if old is not None:
            tool = msgspec.structs.replace(tool, id=old.id, first_seen_at=old.first_seen_at)
        elif _one(self._s.tools.values(), lambda t: t.id == tool.id):
            raise ConflictError(f"tool id {tool.id!r} exists")
        self._s.tools[key] = stored_copy(tool)

    async def get(self, account_id: str, server_name: str, name: str) -> ToolRecord | None:
        return self._s.tools.get((account_id, server_name, name))

    async def list(self, account_id: str, server_name: str | None = None) -> Sequence[ToolRecord]:
        found = [
            t
            for t in self._s.tools.values()
            if t.account_id == account_id and server_name in (None, t.server_name)
        ]
        return sorted(found, key=lambda t: (t.server_name, t.name))

    async def remove_server(self, account_id: str, server_name: str) -> None:
        for key in [k for k in self._s.tools if k[:2] == (account_id, server_name)]:
            del self._s.tools[key]


class InMemoryPolicyStore(_Store):
    async def add(self, version: PolicyVersion) -> None:
        self._s.require_account(version.account_id)
        key = (version.account_id, version.version)
        if key in self._s.policies:
            raise ConflictError(f"policy version {version.version} exists")
        self._s.policies[key] = stored_copy(version)

    async def latest(self, account_id: str) -> PolicyVersion | None:
        found = await self.list(account_id)
        return found[0] if found else None

    async def get(self, account_id: str, version: int) -> PolicyVersion | None:
        return self._s.policies.get((account_id, version))

    async def list(self, account_id: str) -> Sequence[PolicyVersion]:
        found = [p for p in self._s.policies.values() if p.account_id == account_id]
        return sorted(found, key=lambda p: p.version, reverse=True)


class InMemoryWorkflowStore(_Store):
    async def replace_all(self, account_id: str, workflows: Sequence[WorkflowRecord]) -> None:
        self._s.require_account(account_id)
        if any(w.account_id != account_id for w in workflows):
            raise ValidationError(f"every workflow must belong to account {account_id!r}")
        by_name = {w.name: stored_copy(w) for w in workflows}
        if len(by_name) != len(workflows):
            raise ConflictError("two workflows share a name")
        self._s.workflows[account_id] = by_name

    async def get(self, account_id: str, name: str) -> WorkflowRecord | None:
        return self._s.workflows.get(account_id, {}).get(name)

    async def list(self, account_id: str) -> Sequence[WorkflowRecord]:
        return sorted(self._s.workflows.get(account_id, {}).values(), key=lambda w: w.name)


class InMemoryApprovalStore(_Store):
    async def add(self, request: ApprovalRequest) -> None:
        self._s.require_account(request.account_id)
        if request.id in self._s.approvals:
            raise ConflictError(f"approval request {request.id!r} exists")
        self._s.approvals[request.id] = stored_copy(request)

    async def get(self, account_id: str, request_id: str) -> ApprovalRequest | None:
        found = self._s.approvals.get(request_id)
        return found if found is not None and found.account_id == account_id else None

    async def list(
        self, account_id: str, *, status: ApprovalStatus | None = None, limit: int = 100
    ) -> Sequence[ApprovalRequest]:
        check_limit(limit)
        found = [
            r
            for r in self._s.approvals.values()
            if r.account_id == account_id and status in (None, r.status)
        ]
        return sorted(found, key=lambda r: (r.created_at, r.id), reverse=True)[:limit]

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
        current = await self.get(account_id, request_id)
        if current is None:
            raise NotFoundError(f"approval request {request_id!r} does not exist")
        if current.status != expected:
            return None
        changed = msgspec.structs.replace(
            current,
            status=new,
            decided_at=decided_at,
            decided_by=decided_by,
            decided_by_name=decided_by_name,
            decided_via=decided_via,
            comment=comment,
        )
        self._s.approvals[request_id] = stored_copy(changed)
        return self._s.approvals[request_id]

    async def claim(self, account_id: str, request_id: str, at: datetime) -> ApprovalRequest | None:
        at = aware_utc(at, "claimed_at")
        # No await between the check and the write: concurrent claims cannot interleave.
        current = self._request(account_id, request_id)
        if current.status != ApprovalStatus.APPROVED or current.claimed_at is not None:
            return None
        self._s.approvals[request_id] = stored_copy(msgspec.structs.replace(current, claimed_at=at))
        return self._s.approvals[request_id]

    async def store_result(
        self, account_id: str, request_id: str, result: dict[str, Any]
    ) -> ApprovalRequest:
        current = self._request(account_id, request_id)
        if current.claimed_at is None or current.result is not None:
            raise ConflictError(
                f"approval request {request_id!r} is not claimed or already has a result"
            )
        self._s.approvals[request_id] = stored_copy(msgspec.structs.replace(current, result=result))
        return self._s.approvals[request_id]

    async def due(self, before: datetime, *, limit: int = 100) -> Sequence[ApprovalRequest]:
        check_limit(limit)
        before = aware_utc(before, "before")
        found = [
            r
            for r in self._s.approvals.values()
            if r.status == ApprovalStatus.PENDING
            and r.expires_at is not None
            and r.expires_at < before
        ]
        return sorted(found, key=lambda r: (r.expires_at or before, r.id))[:limit]

    async def escalation_due(
        self, before: datetime, *, limit: int = 100
    ) -> Sequence[ApprovalRequest]:
        check_limit(limit)
        before = aware_utc(before, "before")
        found = [
            r
            for r in self._s.approvals.values()
            if r.status == ApprovalStatus.PENDING
            and r.escalated_at is None
            and r.escalate_at is not None
            and r.escalate_at < before
        ]
        return sorted(found, key=lambda r: (r.escalate_at or before, r.id))[:limit]

    async def escalate(
        self, account_id: str, request_id: str, *, at: datetime, approvers: Sequence[str]
    ) -> ApprovalRequest | None:
        at = aware_utc(at, "escalated_at")
        # No await between the check and the write: concurrent escalations cannot interleave.
        current = self._request(account_id, request_id)
        if current.status != ApprovalStatus.PENDING or current.escalated_at is not None:
            return None
        changed = msgspec.structs.replace(current, escalated_at=at, approvers=tuple(approvers))
        self._s.approvals[request_id] = stored_copy(changed)
        return self._s.approvals[request_id]

    async def add_vote(self, vote: ApprovalVote) -> None:
        if await self.get(vote.account_id, vote.request_id) is None:
            raise NotFoundError(f"approval request {vote.request_id!r} does not exist")
        key = (vote.request_id, vote.approver)
        if key in self._s.votes:
            raise ConflictError(f"{vote.approver!r} already voted on {vote.request_id!r}")
        self._s.votes[key] = stored_copy(vote)

    async def cast_vote(self, vote: ApprovalVote, *, required: int, decided_by: str) -> VoteOutcome:
        # No await between the checks and the writes: concurrent votes cannot interleave.
        current = self._request(vote.account_id, vote.request_id)
        if current.status != ApprovalStatus.PENDING:
            raise ConflictError(
                f"approval request {vote.request_id!r} is already {current.status.value}"
            )
        key = (vote.request_id, vote.approver)
        if key in self._s.votes:
            raise ConflictError(f"{vote.approver!r} already voted on {vote.request_id!r}")
        self._s.votes[key] = stored_copy(vote)
        approvals = sum(
            1
            for v in self._s.votes.values()
            if (v.account_id, v.request_id) == (vote.account_id, vote.request_id)
            and v.choice == VoteChoice.APPROVE
        )
        new = vote_outcome(vote.choice, approvals, required)
        if new is None:
            return VoteOutcome(approvals=approvals)
        changed = msgspec.structs.replace(
            current,
            status=new,
            decided_at=vote.created_at,
            decided_by=decided_by,
            decided_by_name=vote.approver_name or None,
            decided_via=vote.via or None,
            comment=vote.comment or None,
        )
        self._s.approvals[vote.request_id] = stored_copy(changed)
        return VoteOutcome(approvals=approvals, decided=self._s.approvals[vote.request_id])

    async def votes(self, account_id: str, request_id: str) -> Sequence[ApprovalVote]:
        found = [
            v
            for v in self._s.votes.values()
            if (v.account_id, v.request_id) == (account_id, request_id)
        ]
        return sorted(found, key=lambda v: (v.created_at, v.approver))


def _matches(event: AuditEvent, q: AuditQuery) -> bool:
    if q.kind is not None and not (
        event.kind.startswith(q.kind) if q.kind.endswith(".") else event.kind == q.kind
    ):
        return False
    return (
        (q.actor is None or event.actor == q.actor)
        and (q.since is None or event.at >= q.since)
        and (q.until is None or event.at < q.until)
        and event.seq > q.after_seq
        and (q.before_seq is None or event.seq < q.before_seq)
        and all(k in event.data and _json_equal(event.data[k], v) for k, v in q.match.items())
        and (q.text is None or _mentions(event, q.text))
    )


def _mentions(event: AuditEvent, text: str) -> bool:
    needle = text.lower()
    haystacks = (event.kind, event.actor, json.dumps(event.data, ensure_ascii=True))
    return any(needle in haystack.lower() for haystack in haystacks)


class InMemoryAuditStore(_Store):
    def __init__(self, state: _State) -> None:
        super().__init__(state)
        # Reading the head and storing the event happen under one lock, so appends stay atomic
        # even if this method ever awaits in between (an event bus, say).
        self._lock = asyncio.Lock()

    async def append(self, draft: AuditDraft) -> AuditEvent:
        aware_utc(draft.at, "audit event time")
        async with self._lock:
            self._s.require_account(draft.account_id)
            seq, prev_hash = self._s.heads.get(draft.account_id, (0, GENESIS_HASH))
            event = stored_copy(chain(draft, seq=seq + 1, prev_hash=prev_hash))
            self._s.events.setdefault(draft.account_id, []).append(event)
            self._s.heads[draft.account_id] = (event.seq, event.hash)
            return event

    async def query(self, account_id: str, query: AuditQuery) -> Sequence[AuditEvent]:
        check_audit_query(query)
        found = [e for e in self._s.events.get(account_id, []) if _matches(e, query)]
        if query.newest_first:
            found.reverse()
        return found[: query.limit]

    async def all(self, account_id: str) -> Sequence[AuditEvent]:
        return list(self._s.events.get(account_id, []))

    async def head(self, account_id: str) -> tuple[int, str] | None:
        return self._s.heads.get(account_id)


class InMemoryUsedLinkStore(_Store):
    async def use(self, account_id: str, link_id: str, at: datetime) -> bool:
        self._s.require_account(account_id)
        aware_utc(at, "used_at")
        if link_id in self._s.used_links:
            return False
        self._s.used_links[link_id] = account_id
        return True


class InMemoryChannelMessageStore(_Store):
    async def add(self, message: ChannelMessage) -> None:
        self._s.require_account(message.account_id)
        aware_utc(message.created_at, "created_at")
        key = (message.channel, message.conversation, message.ts)
        self._s.channel_messages.setdefault(key, message)

    async def list(
        self, account_id: str, request_id: str, channel: str
    ) -> Sequence[ChannelMessage]:
        found = [
            m
            for m in self._s.channel_messages.values()
            if (m.account_id, m.request_id, m.channel) == (account_id, request_id, channel)
        ]
        return sorted(found, key=lambda m: (m.created_at, m.conversation, m.ts))


class InMemoryNotificationClaimStore(_Store):
    async def claim(self, claim: NotificationClaim) -> bool:
        self._s.require_account(claim.account_id)
        aware_utc(claim.claimed_at, "claimed_at")
        key = (claim.account_id, claim.request_id, claim.channel, str(claim.operation))
        held = self._s.notification_claims.setdefault(key, claim)
        return held.claimed_by == claim.claimed_by


class InMemoryDeviceStore(_Store):
    async def add(self, device: Device) -> None:
        self._s.require_account(device.account_id)
        if device.id in self._s.devices or _one(
            self._s.devices.values(), lambda d: d.secret_hash == device.secret_hash
        ):
            raise ConflictError(f"device {device.id!r} or its secret hash exists")
        self._s.devices[device.id] = stored_copy(device)

    async def get(self, device_id: str) -> Device | None:
        return self._s.devices.get(device_id)

    async def list(self, account_id: str, *, user_id: str | None = None) -> Sequence[Device]:
        found = [
            d
            for d in self._s.devices.values()
            if d.account_id == account_id and (user_id is None or d.user_id == user_id)
        ]
        return sorted(found, key=lambda d: (d.created_at, d.id))

    def _existing(self, account_id: str, device_id: str) -> Device:
        device = self._s.devices.get(device_id)
        if device is None or device.account_id != account_id:
            raise NotFoundError(f"device {device_id!r} does not exist")
        return device

    async def revoke(self, account_id: str, device_id: str, at: datetime) -> Device:
        device = self._existing(account_id, device_id)
        at = aware_utc(at, "revoked_at")
        if device.revoked_at is None or at < device.revoked_at:
            device = msgspec.structs.replace(device, revoked_at=at)
            self._s.devices[device_id] = device
        return device

    async def set_push_token(
        self, account_id: str, device_id: str, push_token: str | None
    ) -> Device:
        device = msgspec.structs.replace(
            self._existing(account_id, device_id), push_token=push_token
        )
        self._s.devices[device_id] = device
        return device


class InMemoryHeldCallStore(_Store):
    async def add(self, held: HeldCall) -> None:
        self._request(held.account_id, held.request_id)
        key = (held.account_id, held.request_id)
        if key in self._s.held_calls:
            raise ConflictError(f"approval request {held.request_id!r} already holds a call")
        self._s.held_calls[key] = stored_copy(held)

    async def get(self, account_id: str, request_id: str) -> HeldCall | None:
        return self._s.held_calls.get((account_id, request_id))

    async def remove(self, account_id: str, request_id: str) -> None:
        self._s.held_calls.pop((account_id, request_id), None)


class InMemorySyncWaitStore(_Store):
    async def add(self, wait: SyncWait) -> None:
        self._request(wait.account_id, wait.request_id)
        key = (wait.account_id, wait.request_id)
        if key in self._s.sync_waits:
            raise ConflictError(f"approval request {wait.request_id!r} already has a wait")
        self._s.sync_waits[key] = stored_copy(wait)

    async def remove(self, account_id: str, request_id: str) -> bool:
        return self._s.sync_waits.pop((account_id, request_id), None) is not None

    async def renew(self, instance_id: str, at: datetime) -> None:
        self._s.leases[instance_id] = aware_utc(at, "renewed_at")

    async def orphaned(self, stale_before: datetime, *, limit: int = 100) -> Sequence[SyncWait]:
        check_limit(limit)
        found = []
        for wait in self._s.sync_waits.values():
            renewed = self._s.leases.get(wait.instance_id)
            if renewed is None or renewed < stale_before:
                found.append(wait)
        found.sort(key=lambda w: (w.created_at, w.request_id))
        return found[:limit]


class InMemoryPairingStore(_Store):
    async def add(self, token: PairingToken) -> None:
        self._s.require_account(token.account_id)
        if token.id in self._s.pairings or _one(
            self._s.pairings.values(), lambda p: p.token_hash == token.token_hash
        ):
            raise ConflictError(f"pairing token {token.id!r} or its hash exists")
        self._s.pairings[token.id] = stored_copy(token)

    async def get(self, pairing_id: str) -> PairingToken | None:
        return self._s.pairings.get(pairing_id)

    async def use(self, pairing_id: str, *, at: datetime, device_id: str) -> PairingToken | None:
        token = self._s.pairings.get(pairing_id)
        if token is None:
            raise NotFoundError(f"pairing token {pairing_id!r} does not exist")
        at = aware_utc(at, "used_at")
        if token.used_at is not None or at >= token.expires_at:
            return None
        token = msgspec.structs.replace(token, used_at=at, device_id=device_id)
        self._s.pairings[pairing_id] = token
        return token


# --- gateway: custody, providers, runtime tokens -------------------------------------------
class InMemoryProviderStore(_Store):
    async def add(self, provider: Provider) -> None:
        self._s.require_account(provider.account_id)
        key = (provider.account_id, provider.name)
        if key in self._s.providers or _one(
            self._s.providers.values(), lambda p: p.id == provider.id
        ):
            raise ConflictError(f"provider {provider.name!r} or id {provider.id!r} exists")
        self._s.providers[key] = stored_copy(provider)

    async def get(self, account_id: str, name: str) -> Provider | None:
        return self._s.providers.get((account_id, name))

    async def list(self, account_id: str) -> Sequence[Provider]:
        return sorted(
            (p for p in self._s.providers.values() if p.account_id == account_id),
            key=lambda p: p.name,
        )

    async def update(self, provider: Provider) -> Provider:
        key = (provider.account_id, provider.name)
        old = self._s.providers.get(key)
        if old is None:
            raise NotFoundError(f"provider {provider.name!r} does not exist")
        stored = stored_copy(
            msgspec.structs.replace(provider, id=old.id, created_at=old.created_at)
        )
        self._s.providers[key] = stored
        return stored

    async def remove(self, account_id: str, name: str) -> None:
        if self._s.providers.pop((account_id, name), None) is None:
            raise NotFoundError(f"provider {name!r} does not exist")


class InMemorySecretStore(_Store):
    async def put(self, secret: StoredSecret) -> None:
        self._s.require_account(secret.account_id)
        key = (secret.account_id, secret.name)
        old = self._s.secrets.get(key)
        if old is not None:
            secret = msgspec.structs.replace(secret, created_at=old.created_at)
        self._s.secrets[key] = stored_copy(secret)

    async def get(self, account_id: str, name: str) -> StoredSecret | None:
        return self._s.secrets.get((account_id, name))

    async def list(self, account_id: str | None = None) -> Sequence[StoredSecret]:
        return sorted(
            (s for s in self._s.secrets.values() if account_id in (None, s.account_id)),
            key=lambda s: (s.account_id, s.name),
        )

    async def swap(self, expected: StoredSecret, new: StoredSecret) -> bool:
        key = (expected.account_id, expected.name)
        current = self._s.secrets.get(key)
        if current is None or current.ciphertext != expected.ciphertext:
            return False
        self._s.secrets[key] = stored_copy(
            msgspec.structs.replace(
                current,
                ciphertext=new.ciphertext,
                key_id=new.key_id,
                updated_at=new.updated_at,
            )
        )
        return True

    async def remove(self, account_id: str, name: str) -> None:
        if self._s.secrets.pop((account_id, name), None) is None:
            raise NotFoundError(f"secret {name!r} does not exist")


class InMemoryFlowExecutionStore(_Store):
    async def add(self, execution: FlowExecution) -> None:
        self._s.require_account(execution.account_id)
        if execution.id in self._s.flow_executions:
            raise ConflictError(f"flow execution {execution.id!r} exists")
        self._s.flow_executions[execution.id] = stored_copy(execution)

    async def get(self, account_id: str, execution_id: str) -> FlowExecution | None:
        found = self._s.flow_executions.get(execution_id)
        return found if found is not None and found.account_id == account_id else None

    async def list(
        self, account_id: str, *, flow: str | None = None, limit: int = 100
    ) -> Sequence[FlowExecution]:
        check_limit(limit)
        found = [
            e
            for e in self._s.flow_executions.values()
            if e.account_id == account_id and flow in (None, e.flow)
        ]
        found.sort(key=lambda e: e.id, reverse=True)
        found.sort(key=lambda e: e.created_at, reverse=True)
        return found[:limit]


class InMemoryRuntimeTokenStore(_Store):
    async def add(self, token: RuntimeToken) -> None:
        self._s.require_account(token.account_id)
        execution = self._s.flow_executions.get(token.execution_id)
        if execution is None or execution.account_id != token.account_id:
            raise NotFoundError(f"flow execution {token.execution_id!r} does not exist")
        if token.id in self._s.runtime_tokens or _one(
            self._s.runtime_tokens.values(), lambda t: t.token_hash == token.token_hash
        ):
            raise ConflictError(f"runtime token {token.id!r} or its hash exists")
        self._s.runtime_tokens[token.id] = stored_copy(token)

    async def get(self, token_id: str) -> RuntimeToken | None:
        return self._s.runtime_tokens.get(token_id)

    async def list(self, account_id: str, execution_id: str) -> Sequence[RuntimeToken]:
        found = [
            t
            for t in self._s.runtime_tokens.values()
            if t.account_id == account_id and t.execution_id == execution_id
        ]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    async def revoke(self, account_id: str, token_id: str, at: datetime) -> RuntimeToken:
        token = self._s.runtime_tokens.get(token_id)
        if token is None or token.account_id != account_id:
            raise NotFoundError(f"runtime token {token_id!r} does not exist")
        at = aware_utc(at, "revoked_at")
        if token.revoked_at is None or at < token.revoked_at:
            token = msgspec.structs.replace(token, revoked_at=at)
            self._s.runtime_tokens[token_id] = token
        return token


class InMemoryStorage:
    """Every in-memory store behind one object; ``close`` keeps the data (nothing to release)."""

    def __init__(self) -> None:
        state = _State()
        self.require_account = state.require_account  # for stores beside these (trackers)
        self.accounts = InMemoryAccountStore(state)
        self.users = InMemoryUserStore(state)
        self.teams = InMemoryTeamStore(state)
        self.api_keys = InMemoryApiKeyStore(state)
        self.passwords = InMemoryPasswordStore(state)
        self.access_tokens = InMemoryAccessTokenStore(state)
        self.servers = InMemoryMcpServerStore(state)
        self.tools = InMemoryToolStore(state)
        self.policies = InMemoryPolicyStore(state)
        self.workflows = InMemoryWorkflowStore(state)
        self.approvals = InMemoryApprovalStore(state)
        self.held_calls = InMemoryHeldCallStore(state)
        self.sync_waits = InMemorySyncWaitStore(state)
        self.audit = InMemoryAuditStore(state)
        self.used_links = InMemoryUsedLinkStore(state)
        self.channel_messages = InMemoryChannelMessageStore(state)
        self.notification_claims = InMemoryNotificationClaimStore(state)
        self.devices = InMemoryDeviceStore(state)
        self.pairings = InMemoryPairingStore(state)
        # gateway: custody
        self.providers = InMemoryProviderStore(state)
        self.secrets = InMemorySecretStore(state)
        self.flow_executions = InMemoryFlowExecutionStore(state)
        self.runtime_tokens = InMemoryRuntimeTokenStore(state)
        self.usage = InMemoryUsageStore(state.require_account)
        self.budgets = InMemoryBudgetStore(state.require_account)
        self.model_prices = InMemoryModelPriceStore(state.require_account)

    async def close(self) -> None:
        return None


if TYPE_CHECKING:  # mypy proves the fake keeps the port's shape
    _storage: Storage = InMemoryStorage()
