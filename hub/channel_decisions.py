"""Deciding as the person behind a channel identity: the one use case every channel's click
goes through (docs/decisions/0076-channel-identity-decisions.md).

    a click: Slack user U123 in account acct_1, "approve apr_9"
      ─▶ UserStore.get_by_identity(acct_1, "slack", "U123")   the user who linked it (indexed)
      ─▶ IdentityService.caller_for_user                       their approver or admin role
      ─▶ ApprovalService.decide(channel="slack")              quorum, listed approvers, no
                                                               self-approval; via "slack:U123"
      ─▶ VoteResult                                            the request and its approvals

An identity nobody linked decides nothing: ``PermissionDeniedError`` saying how to link it.
An email link names its recipient's user id itself (it is signed), so it skips the lookup
(:meth:`ChannelDecisions.decide_as_recipient`); the rest is the same.
"""

from __future__ import annotations

import msgspec

from hub.approvals import ApprovalService, VoteResult
from hub.errors import PermissionDeniedError, PreloopError
from hub.identity import IdentityService
from hub.keys import Caller
from hub.ports import Storage
from hub.records import ApprovalRequest, ApprovalStatus, User


class ChannelIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """Who clicked, as a channel knows them: ``external_id`` on ``channel`` (the key of
    ``User.identities`` that ``preloop users link --<channel>`` sets)."""

    channel: str
    external_id: str
    label: str = ""  # how people call it in a refusal ("Slack user"); else "<channel> identity"

    @property
    def via(self) -> str:
        """The credential a vote through this identity is recorded with (decision 0054)."""
        return f"{self.channel}:{self.external_id}"

    def unlinked(self) -> PermissionDeniedError:
        label = self.label or f"{self.channel} identity"
        return PermissionDeniedError(
            f"your {label} is not linked to a Preloop user (ask an admin: preloop users "
            f"link --{self.channel} {self.external_id})"
        )


class PendingForPerson(msgspec.Struct, frozen=True, kw_only=True):
    """The pending requests a person may decide, among the ``scanned`` newest pending ones."""

    mine: tuple[ApprovalRequest, ...]
    others: int  # pending ones they may not decide
    scanned: int
    limited: bool  # the scan stopped at its limit: there may be more


class ChannelDecisions:
    """The approval service as a channel's clicker sees it."""

    def __init__(
        self, approvals: ApprovalService, identity: IdentityService, storage: Storage
    ) -> None:
        self.approvals = approvals
        self._identity = identity
        self._storage = storage

    async def person(self, account_id: str, who: ChannelIdentity) -> User | None:
        """The Preloop user who linked ``who`` in the account, or ``None``."""
        if not who.external_id:
            return None
        return await self._storage.users.get_by_identity(account_id, who.channel, who.external_id)

    async def find_person(self, who: ChannelIdentity) -> tuple[str, User] | None:
        """The first account (in creation order) where someone linked ``who``, and that
        user: for a channel command that names no account (Slack's ``/preloop``)."""
        for account in await self._storage.accounts.list():
            user = await self.person(account.id, who)
            if user is not None:
                return account.id, user
        return None

    async def caller(self, account_id: str, who: ChannelIdentity) -> Caller:
        """The linked person as an approver; ``PermissionDeniedError`` when nobody linked
        ``who`` or the person holds no approver or admin key."""
        user = await self.person(account_id, who)
        if user is None:
            raise who.unlinked()
        return await self._identity.caller_for_user(account_id, user.id, via=who.via)

    async def decide(
        self,
        account_id: str,
        request_id: str,
        who: ChannelIdentity,
        *,
        approve: bool,
        comment: str = "",
    ) -> VoteResult:
        """Vote as the person behind ``who``; every rule of ``ApprovalService.decide``
        applies."""
        caller = await self.caller(account_id, who)
        return await self.approvals.decide(
            account_id,
            request_id,
            approver=caller,
            approve=approve,
            comment=comment,
            channel=who.channel,
        )

    async def decide_as_recipient(
        self,
        account_id: str,
        request_id: str,
        *,
        user_id: str,
        channel: str,
        via: str,
        approve: bool,
        comment: str = "",
    ) -> VoteResult:
        """Vote as the user a signed link names (its recipient), through ``via``."""
        caller = await self._identity.caller_for_user(account_id, user_id, via=via)
        return await self.approvals.decide(
            account_id,
            request_id,
            approver=caller,
            approve=approve,
            comment=comment,
            channel=channel,
        )

    async def check_may_decide(
        self, account_id: str, request_id: str, who: ChannelIdentity
    ) -> ApprovalRequest:
        """The request, when the person behind ``who`` may vote on it now (before a channel
        asks for a reason, e.g. Slack's deny modal); else ``PermissionDeniedError`` why."""
        caller = await self.caller(account_id, who)
        request = await self.approvals.get(account_id, request_id)
        if request.status is not ApprovalStatus.PENDING:
            raise PermissionDeniedError(f"{request_id} is already {request.status.value}")
        await self.approvals.check_may_decide(request, caller)
        return request

    async def pending_for(
        self, account_id: str, user: User, who: ChannelIdentity, *, scan: int
    ) -> PendingForPerson:
        """Of the ``scan`` newest pending requests, those ``user`` may decide."""
        waiting = await self.approvals.list(account_id, status=ApprovalStatus.PENDING, limit=scan)
        try:
            caller: Caller | None = await self._identity.caller_for_user(
                account_id, user.id, via=who.via
            )
        except PreloopError:  # no approver or admin key: decides nothing
            caller = None
        mine: list[ApprovalRequest] = []
        if caller is not None:
            mine = [r for r in waiting if await self.approvals.may_decide(r, caller)]
        return PendingForPerson(
            mine=tuple(mine),
            others=len(waiting) - len(mine),
            scanned=len(waiting),
            limited=len(waiting) >= scan,
        )
