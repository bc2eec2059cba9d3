"""Approval requests over HTTP: list, show, approve, deny."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from hub.errors import ConflictError
from hub.records import ApprovalStatus
from hub.wire import ApprovalDetail, ApprovalRequestView, ApprovalVoteView, view_of
from server.api.deps import caller_of, hub_of
from server.auth import DECIDE, READ, roles


class DecisionBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    comment: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class ApprovalController(Controller):
    path = "/approvals"
    tags = ["approvals"]

    @get("/", opt=roles(READ))
    async def list_requests(
        self,
        request: Request[Any, Any, Any],
        status: Annotated[ApprovalStatus | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[ApprovalRequestView]:
        """Approval requests, newest first; ``status=pending`` for the ones waiting."""
        found = await hub_of(request).approvals.list(
            caller_of(request).account_id, status=status, limit=limit
        )
        return [view_of(r, ApprovalRequestView) for r in found]

    @get("/{request_id:str}", opt=roles(READ))
    async def show(
        self, request: Request[Any, Any, Any], request_id: FromPath[str]
    ) -> ApprovalDetail:
        """One request with its votes."""
        hub, account = hub_of(request), caller_of(request).account_id
        found = await hub.approvals.get(account, request_id)
        votes = await hub.approvals.votes(account, request_id)
        return ApprovalDetail(
            request=view_of(found, ApprovalRequestView),
            votes=[view_of(v, ApprovalVoteView) for v in votes],
        )

    @post("/{request_id:str}/approve", opt=roles(DECIDE, raises=(ConflictError,)), status_code=200)
    async def approve(
        self,
        request: Request[Any, Any, Any],
        request_id: FromPath[str],
        data: JSONBody[DecisionBody],
    ) -> ApprovalRequestView:
        """Vote to approve; the request is approved once its quorum is reached."""
        caller = caller_of(request)
        voted = await hub_of(request).approvals.decide(
            caller.account_id, request_id, approver=caller, approve=True, comment=data.comment
        )
        return view_of(voted.request, ApprovalRequestView)

    @post("/{request_id:str}/deny", opt=roles(DECIDE, raises=(ConflictError,)), status_code=200)
    async def deny(
        self,
        request: Request[Any, Any, Any],
        request_id: FromPath[str],
        data: JSONBody[DecisionBody],
    ) -> ApprovalRequestView:
        """Deny: the request is denied at once, with the comment shown to the agent."""
        caller = caller_of(request)
        voted = await hub_of(request).approvals.decide(
            caller.account_id, request_id, approver=caller, approve=False, comment=data.comment
        )
        return view_of(voted.request, ApprovalRequestView)
