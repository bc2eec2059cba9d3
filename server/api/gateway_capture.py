"""Gateway content capture over REST: the capture rules (admin only, audited) and the search
over captured interactions (every search audited, refusals included; decision 0109).

Who reads what: admins and approvers read content (request, response, snippets) and search it;
viewers list interactions without content and may not search text; agents are refused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, put
from litestar.params import FromQuery, JSONBody, QueryParameter

from hub.errors import NotFoundError, PermissionDeniedError, ValidationError
from hub.keys import Caller
from hub.model_gateway.capture_records import (
    FULL_BYTES,
    MAX_BYTES,
    MAX_RETENTION_DAYS,
    PREVIEW_BYTES,
    RETENTION_DAYS,
    CaptureMode,
    CaptureRule,
    CaptureScope,
    Interaction,
    InteractionHit,
    InteractionQuery,
    SearchType,
)
from hub.model_gateway.capture_store import CaptureStore
from hub.model_gateway.records import UsageRecord
from hub.records import Role
from hub.wire.capture import CaptureRules, CaptureRuleView, InteractionSearch, InteractionView
from server.api.deps import caller_of, hub_of
from server.api.gateway_usage import money
from server.auth import ADMIN, roles
from server.hub_services import Hub

CONTENT_ROLES = (Role.ADMIN, Role.APPROVER)
Subject = Annotated[str, msgspec.Meta(max_length=200)]


class CaptureRuleBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A capture rule. ``subject`` is the flow's name (``flow``) or the API key's id
    (``api_key``; a runtime token's id ``rt_…`` for one execution); ``account`` takes none.
    ``max_bytes`` caps each of the request and response texts (default 4096 for
    ``redacted_preview``, 65536 for ``full``)."""

    scope: CaptureScope = CaptureScope.ACCOUNT
    subject: Subject = ""
    mode: CaptureMode
    max_bytes: Annotated[int, msgspec.Meta(ge=0, le=MAX_BYTES)] | None = None
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=MAX_RETENTION_DAYS)] = RETENTION_DAYS


def rule_view(rule: CaptureRule) -> CaptureRuleView:
    return CaptureRuleView(
        scope=rule.scope.value,
        subject=rule.subject,
        mode=rule.mode.value,
        max_bytes=rule.max_bytes,
        retention_days=rule.retention_days,
        updated_at=rule.updated_at,
        updated_by=rule.updated_by,
    )


def _check_subject(scope: CaptureScope, subject: str) -> str:
    subject = subject.strip()
    if scope is CaptureScope.ACCOUNT and subject:
        raise ValidationError("the account scope takes no subject", field="subject")
    if scope is not CaptureScope.ACCOUNT and not subject:
        raise ValidationError(
            f"the {scope.value} scope needs a subject (the flow's name or the API key's id)",
            field="subject",
        )
    return subject


def interaction_view(
    record: UsageRecord | Interaction,
    captured: Interaction | None,
    *,
    content: bool,
    hit: InteractionHit | None = None,
) -> InteractionView:
    """One call: its ledger facts, and (for admins and approvers) what capture kept."""
    show = content and captured is not None
    return InteractionView(
        id=record.id,
        created_at=record.created_at,
        endpoint=record.endpoint,
        model=record.model,
        status=record.status,
        outcome=record.outcome,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cost=money(record.cost),
        latency_ms=record.latency_ms,
        captured=None if captured is None else captured.mode.value,
        principal=record.principal,
        flow=record.flow,
        session=record.execution_id or record.session_id,
        request=captured.request if show and captured else None,
        response=captured.response if show and captured else None,
        truncated=bool(captured and captured.truncated),
        score=None if hit is None else hit.score,
        snippet=hit.snippet if hit is not None and content else None,
    )


async def audit_search(hub: Hub, caller: Caller, data: dict[str, Any]) -> None:
    await hub.auditor.record(
        caller.account_id,
        "gateway.interactions_searched",
        caller.key_id,
        {**data, "role": caller.role.value},
    )


class GatewayCaptureController(Controller):
    path = "/gateway"
    tags = ["gateway"]

    @get("/capture", opt=roles(ADMIN))
    async def rules(self, request: Request[Any, Any, Any]) -> CaptureRules:
        """The account's capture rules (none: capture is off everywhere)."""
        found = await hub_of(request).capture.store.rules(caller_of(request).account_id)
        return CaptureRules(rules=[rule_view(r) for r in found])

    @put("/capture", opt=roles(ADMIN))
    async def set_rule(
        self, request: Request[Any, Any, Any], data: JSONBody[CaptureRuleBody]
    ) -> CaptureRuleView:
        """Turn capture on (or off) for the account, a flow or an API key, replacing that
        scope's earlier rule. The most specific rule applies: key, then flow, then account."""
        hub, caller = hub_of(request), caller_of(request)
        subject = _check_subject(data.scope, data.subject)
        default = FULL_BYTES if data.mode is CaptureMode.FULL else PREVIEW_BYTES
        now = hub.clock.now()
        existing = {
            (r.scope, r.subject): r for r in await hub.capture.store.rules(caller.account_id)
        }
        before = existing.get((data.scope, subject))
        rule = CaptureRule(
            account_id=caller.account_id,
            scope=data.scope,
            subject=subject,
            mode=data.mode,
            max_bytes=default if data.max_bytes is None else data.max_bytes,
            retention_days=data.retention_days,
            created_at=before.created_at if before else now,
            updated_at=now,
            updated_by=caller.name or caller.key_id,
        )
        await hub.capture.store.set_rule(rule)
        hub.capture.forget(caller.account_id)
        await hub.auditor.record(
            caller.account_id,
            "gateway.capture_set",
            caller.key_id,
            {
                "scope": rule.scope.value,
                "subject": rule.subject,
                "mode": rule.mode.value,
                "max_bytes": rule.max_bytes,
                "retention_days": rule.retention_days,
                "previous_mode": before.mode.value if before else None,
            },
        )
        return rule_view(rule)

    @delete("/capture", opt=roles(ADMIN, raises=(NotFoundError,)), status_code=204)
    async def delete_rule(
        self,
        request: Request[Any, Any, Any],
        of: Annotated[CaptureScope, QueryParameter(name="scope")] = CaptureScope.ACCOUNT,
        subject: FromQuery[str] = "",
    ) -> None:
        """Remove a scope's rule: the next less specific rule applies again (none: off)."""
        hub, caller, scope = hub_of(request), caller_of(request), of
        subject = _check_subject(scope, subject)
        if not await hub.capture.store.delete_rule(caller.account_id, scope, subject):
            raise NotFoundError(f"no capture rule for {scope.value} {subject!r}".rstrip(" '"))
        hub.capture.forget(caller.account_id)
        await hub.auditor.record(
            caller.account_id,
            "gateway.capture_deleted",
            caller.key_id,
            {"scope": scope.value, "subject": subject},
        )

    @get("/interactions", opt=roles(Role, raises=(PermissionDeniedError,)))
    async def interactions(
        self,
        request: Request[Any, Any, Any],
        q: Annotated[str, QueryParameter(max_length=500)] = "",
        search_type: FromQuery[SearchType] = SearchType.FULLTEXT,
        model: FromQuery[str | None] = None,
        flow: FromQuery[str | None] = None,
        principal: FromQuery[str | None] = None,
        session: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> InteractionSearch:
        """Search captured interactions: full text (every word of ``q``) or by similarity to
        ``q`` (the hub's search embedder), within the filters; without ``q``, the newest.
        Admins and approvers get content and snippets, viewers metadata only and no text
        search; agents are refused. Every search is audited, refusals included."""
        hub, caller = hub_of(request), caller_of(request)
        query = InteractionQuery(
            text=q.strip(),
            search_type=search_type,
            model=model,
            flow=flow,
            principal=principal,
            session=session,
            since=since,
            until=until,
            limit=limit,
        )
        audited: dict[str, Any] = {
            "q": query.text,
            "search_type": search_type.value,
            "filters": {
                k: v.isoformat() if isinstance(v, datetime) else v
                for k, v in (
                    ("model", model),
                    ("flow", flow),
                    ("principal", principal),
                    ("session", session),
                    ("since", since),
                    ("until", until),
                )
                if v is not None
            },
        }
        content = caller.role in CONTENT_ROLES
        refusal = None
        if caller.role is Role.AGENT:
            refusal = "agents may not read captured gateway interactions"
        elif query.text and not content:
            refusal = "searching captured content needs the admin or approver role"
        elif search_type is SearchType.SIMILARITY and not query.text:
            await audit_search(hub, caller, {**audited, "outcome": "invalid", "results": 0})
            raise ValidationError("a similarity search needs a query ('q')", field="q")
        if refusal is not None:
            await audit_search(hub, caller, {**audited, "outcome": "refused", "results": 0})
            raise PermissionDeniedError(refusal)
        answer = await _search(hub, caller.account_id, query)
        await audit_search(
            hub, caller, {**audited, "outcome": "ok", "results": len(answer.interactions)}
        )
        if content:
            return answer
        return msgspec.structs.replace(
            answer,
            interactions=[
                msgspec.structs.replace(i, request=None, response=None, snippet=None)
                for i in answer.interactions
            ],
        )


async def _search(hub: Hub, account_id: str, query: InteractionQuery) -> InteractionSearch:
    store: CaptureStore = hub.capture.store
    if query.search_type is SearchType.SIMILARITY:
        embedder = hub.search_embedder
        [vector] = await embedder.embed([query.text])
        model = str(embedder.identity)
        hits = await store.search(account_id, query, vector=vector, model=model)
        engine, shown_model = "exact", model
    else:
        hits = await store.search(account_id, query)
        engine, shown_model = (store.engine if query.text else "list"), None
    return InteractionSearch(
        engine=engine,
        model=shown_model,
        interactions=[
            interaction_view(h.interaction, h.interaction, content=True, hit=h) for h in hits
        ],
    )
