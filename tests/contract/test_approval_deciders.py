"""Who may decide, on every backend and across two replicas sharing one database.

The self-approval check keeps each requester key's owner once read (``hub.identity.KeyOwners``),
and an approver is trusted through ``IdentityService``'s cache, bounded by
``PRELOOP_SERVER_CACHE_SECONDS`` (docs/decisions/0005, 0072): these tests hold both to that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.clock import FrozenClock
from hub.errors import AuthenticationError, PermissionDeniedError
from hub.events import InMemoryEventBus
from hub.identity import IdentityService
from hub.keys import Caller
from hub.memory import InMemoryStorage
from hub.policy import ApprovalWorkflow, Decision
from hub.policy.model import Action
from hub.ports import Storage
from hub.records import ApprovalRequest, ApprovalStatus, Role
from server.db import open_storage

CACHE_SECONDS = 2.0


class Ticks:
    """The identity cache's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Replica(msgspec.Struct):
    identity: IdentityService
    approvals: ApprovalService
    storage: Storage


class Replicas(msgspec.Struct):
    a: Replica
    b: Replica
    ticks: Ticks
    account_id: str
    key_reads: list[str]  # the key ids replica b's storage was asked for (in memory: both's)

    async def key(self, role: Role, email: str | None = None) -> tuple[Caller, str]:
        """A new key made on replica a: (its caller, its secret)."""
        identity = self.a.identity
        if email and await self.a.storage.users.get_by_email(self.account_id, email) is None:
            await identity.add_user(self.account_id, email=email, name="", actor="t")
        created = await identity.create_key(
            self.account_id, name="k", role=role, actor="t", user_email=email
        )
        return await identity.authenticate(created.secret), created.secret

    async def request(self, agent: Caller) -> ApprovalRequest:
        return await self.a.approvals.open(
            caller=agent,
            server="shell",
            tool="bash",
            args={"command": "deploy"},
            justification=None,
            policy_version=1,
            workflow=msgspec.convert({"name": "wf"}, ApprovalWorkflow),
            decision=Decision(action=Action.REQUIRE_APPROVAL, rule="bash#1", workflow="wf"),
        )

    async def decide_on_b(self, request: ApprovalRequest, approver: Caller) -> ApprovalRequest:
        voted = await self.b.approvals.decide(
            self.account_id, request.id, approver=approver, approve=True
        )
        return voted.request


@pytest.fixture
async def replicas(backend_url: str | None) -> AsyncIterator[Replicas]:
    """Two replicas (their own services and caches; on SQL their own engines) on one
    database; replica b's key reads are counted."""
    shared = InMemoryStorage() if backend_url is None else None
    opened: list[Storage] = []
    ticks = Ticks()
    reads: list[str] = []
    clock = FrozenClock()
    try:
        made: list[Replica] = []
        for _ in range(2):
            storage: Storage
            if shared is not None:
                storage = shared
            else:
                storage = await open_storage(backend_url or "", migrate=False)
                opened.append(storage)
            auditor = Auditor(storage.audit, clock)
            identity = IdentityService(
                storage, clock, auditor, cache_seconds=CACHE_SECONDS, cache_timer=ticks
            )
            bus = InMemoryEventBus()
            made.append(Replica(identity, ApprovalService(storage, clock, auditor, bus), storage))
        account = await made[0].identity.default_account()
        _count_key_reads(made[1].storage, reads)
        yield Replicas(made[0], made[1], ticks, account.id, reads)
    finally:
        for storage in opened:
            await storage.close()


def _count_key_reads(storage: Storage, reads: list[str]) -> None:
    keys = storage.api_keys
    read = keys.get

    async def counted(key_id: str) -> Any:
        reads.append(key_id)
        return await read(key_id)

    keys.get = counted  # type: ignore[method-assign]


async def test_the_requesters_other_keys_are_refused_at_every_decision(
    replicas: Replicas,
) -> None:
    agent, _ = await replicas.key(Role.AGENT, "ana@example.com")
    own_approver, _ = await replicas.key(Role.APPROVER, "ana@example.com")
    other, _ = await replicas.key(Role.APPROVER, "bo@example.com")
    first, second = await replicas.request(agent), await replicas.request(agent)
    replicas.key_reads.clear()

    for request in (first, second, first):  # the owner read, then kept
        with pytest.raises(PermissionDeniedError, match="any of their keys"):
            await replicas.decide_on_b(request, own_approver)
        with pytest.raises(PermissionDeniedError, match="never decide"):
            await replicas.decide_on_b(request, agent)

    assert [agent.key_id] == replicas.key_reads  # once, on the replica that decides
    decided = await replicas.decide_on_b(second, other)
    assert decided.status is ApprovalStatus.APPROVED


async def test_a_key_of_no_user_is_refused_only_its_own_request(replicas: Replicas) -> None:
    agent, _ = await replicas.key(Role.AGENT)
    approver, _ = await replicas.key(Role.APPROVER)
    request = await replicas.request(agent)
    with pytest.raises(PermissionDeniedError, match="never decide"):
        await replicas.decide_on_b(request, agent)
    assert (await replicas.decide_on_b(request, approver)).status is ApprovalStatus.APPROVED


async def test_a_revoked_key_stops_approving_at_once_here_and_within_the_cache_time_elsewhere(
    replicas: Replicas,
) -> None:
    agent, _ = await replicas.key(Role.AGENT)
    approver_key, secret = await replicas.key(Role.APPROVER, "cy@example.com")
    assert await replicas.b.identity.authenticate(secret) == approver_key  # cached on b
    await replicas.a.identity.authenticate(secret)  # cached on a

    await replicas.a.identity.revoke_key(replicas.account_id, approver_key.key_id, actor="t")

    with pytest.raises(AuthenticationError, match="revoked"):
        await replicas.a.identity.authenticate(secret)  # the replica that revoked: at once
    replicas.ticks.now += CACHE_SECONDS  # the other replica: once its entry is that old
    with pytest.raises(AuthenticationError, match="revoked"):
        await replicas.b.identity.authenticate(secret)
    # and the owner kept for the self-approval check trusts nothing: another user's key
    # still decides, a revoked one never reaches the check
    request = await replicas.request(agent)
    other, _ = await replicas.key(Role.APPROVER, "dee@example.com")
    assert (await replicas.decide_on_b(request, other)).status is ApprovalStatus.APPROVED
