"""Runtime sessions over REST: recent sessions from the usage ledger (flow executions, and
callers' ``X-Preloop-Session-Id`` sessions), listed whether capture is on or not, and one
session with its calls and what capture kept of them (decision 0110).

A session is **active** while a call came in the last 15 minutes, or, for a flow execution,
while one of its runtime tokens is neither expired nor revoked; else **ended**. Viewers see
metadata only; content (request, response) is for admins and approvers, and each read of a
session's content is audited. Agents are refused."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery, QueryParameter

from hub.errors import NotFoundError
from hub.model_gateway.capture_records import InteractionQuery, RuntimeSession
from hub.model_gateway.capture_store import RECENT
from hub.wire.capture import RuntimeSessionDetail, RuntimeSessions, RuntimeSessionView
from server.api.deps import caller_of, hub_of
from server.api.gateway_capture import CONTENT_ROLES, interaction_view
from server.api.gateway_usage import money
from server.auth import READ, roles
from server.hub_services import Hub

MAX_CALLS = 500


class SessionStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"
    ALL = "all"


async def _status(hub: Hub, account_id: str, session: RuntimeSession, now: datetime) -> str:
    if now - session.last_at <= RECENT:
        return SessionStatus.ACTIVE.value
    if session.execution_id is not None:
        tokens = await hub.storage.runtime_tokens.list(account_id, session.execution_id)
        if any(t.revoked_at is None and t.expires_at > now for t in tokens):
            return SessionStatus.ACTIVE.value
    return SessionStatus.ENDED.value


async def session_view(hub: Hub, account_id: str, session: RuntimeSession) -> RuntimeSessionView:
    return RuntimeSessionView(
        id=session.id,
        flow=session.flow,
        principal=session.principal,
        execution_id=session.execution_id,
        models=list(session.models),
        calls=session.calls,
        input_tokens=session.input_tokens,
        output_tokens=session.output_tokens,
        cost=money(session.cost),
        started_at=session.started_at,
        last_at=session.last_at,
        status=await _status(hub, account_id, session, hub.clock.now()),
    )


class RuntimeSessionController(Controller):
    path = "/runtime/sessions"
    tags = ["gateway"]

    @get("/", opt=roles(READ))
    async def sessions(
        self,
        request: Request[Any, Any, Any],
        flow: FromQuery[str | None] = None,
        principal: FromQuery[str | None] = None,
        status: FromQuery[SessionStatus] = SessionStatus.ALL,
        since: FromQuery[datetime | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> RuntimeSessions:
        """Recent runtime sessions, the most recently active first: each flow execution and
        each ``X-Preloop-Session-Id`` with its models, calls, tokens and cost. ``status``
        filters the page read (so fewer than ``limit`` may come back)."""
        hub, account_id = hub_of(request), caller_of(request).account_id
        found = await hub.capture.store.sessions(
            account_id, flow=flow, principal=principal, since=since, limit=limit
        )
        views = [await session_view(hub, account_id, s) for s in found]
        if status is not SessionStatus.ALL:
            views = [v for v in views if v.status == status.value]
        return RuntimeSessions(sessions=views)

    @get("/{session_id:str}", opt=roles(READ, raises=(NotFoundError,)))
    async def session(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[str],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_CALLS)] = 100,
    ) -> RuntimeSessionDetail:
        """One session and its latest calls (newest first) with what capture kept of each:
        ``captured`` names the mode (``null``: not captured); ``request`` and ``response`` are
        there for admins and approvers only."""
        hub, caller = hub_of(request), caller_of(request)
        store = hub.capture.store
        found = await store.sessions(caller.account_id, session=session_id, limit=1)
        if not found:
            raise NotFoundError(f"no runtime session {session_id!r}")
        records = await store.session_records(caller.account_id, session_id, limit=limit)
        hits = await store.search(
            caller.account_id, InteractionQuery(session=session_id, limit=limit)
        )
        captured = {h.interaction.id: h.interaction for h in hits}
        content = caller.role in CONTENT_ROLES
        if content and any(i.request or i.response for i in captured.values()):
            await hub.auditor.record(
                caller.account_id,
                "runtime.session_content_read",
                caller.key_id,
                {"session": session_id, "interactions": len(captured)},
            )
        return RuntimeSessionDetail(
            session=await session_view(hub, caller.account_id, found[0]),
            interactions=[
                interaction_view(r, captured.get(r.id), content=content) for r in records
            ],
        )
