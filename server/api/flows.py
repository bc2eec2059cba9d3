"""Flow executions and their runtime tokens over HTTP.

``POST /flows/{flow}/executions`` starts an execution and answers its gateway token once,
with the base URLs an agent's SDK points at. The token is never shown again; executions show
their tokens' ids, expiry and state only. An agent key sees and revokes only the executions it
runs (its principal's); another's is answered 404, like a missing one (decision 0051).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody, Parameter

from hub.errors import PermissionDeniedError, ValidationError
from hub.keys import Caller
from hub.model_gateway.records import FlowExecution, RuntimeToken
from hub.model_gateway.runtime import DEFAULT_TTL_SECONDS, FLOW_PATTERN, MAX_TTL_SECONDS
from hub.patterns import NOT_SPACE, SPACE
from hub.records import Role
from hub.wire import ExecutionDetail, ExecutionStarted, ExecutionView, TokenView
from server.api.deps import caller_of, hub_of
from server.api.fields import each
from server.auth import AGENT, roles

EXECUTIONS = "executions"  # a path segment, so not a flow name
FlowName = Annotated[str, Parameter(schema_extra={"pattern": FLOW_PATTERN})]  # hub checks it
MODEL_GLOB = rf"^{SPACE}*{NOT_SPACE}{{0,200}}{SPACE}*$"  # blank ones are dropped
TTL_DESCRIPTION = (
    "Seconds the runtime token lives: at most the server's "
    "PRELOOP_SECRETS_RUNTIME_TOKEN_MAX_SECONDS (86400 unless configured)."
)


class ExecutionStart(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # at most the server's secrets.runtime_token_max_seconds (one day unless configured)
    ttl_seconds: Annotated[
        int, msgspec.Meta(ge=1, le=MAX_TTL_SECONDS, description=TTL_DESCRIPTION)
    ] = DEFAULT_TTL_SECONDS
    # model globs the token may use; empty: every routed model
    models: Annotated[list[str], each(MODEL_GLOB)] = []
    principal: Annotated[str, msgspec.Meta(max_length=320)] = ""  # admin only; default flow:F
    labels: dict[str, str] = {}


def principal_of(caller: Caller) -> str:
    """The principal an agent key runs flows as: its name, else its id."""
    return caller.name or caller.key_id


def owner_of(caller: Caller) -> str | None:
    """Whose executions ``caller`` may see and revoke: an agent key only its own principal's
    (others' are answered as not found), every other role the whole account's."""
    return principal_of(caller) if caller.role == Role.AGENT else None


def execution_view(execution: FlowExecution) -> ExecutionView:
    return ExecutionView(
        id=execution.id,
        flow=execution.flow,
        principal=execution.principal,
        labels=dict(execution.labels),
        created_at=execution.created_at,
    )


def token_view(token: RuntimeToken, now: datetime) -> TokenView:
    status = "revoked" if token.revoked_at else ("active" if now < token.expires_at else "expired")
    return TokenView(
        id=token.id,
        status=status,
        models=list(token.models),
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
    )


class FlowController(Controller):
    path = "/flows"
    tags = ["gateway"]

    @post("/{flow:str}/executions", opt=roles(AGENT), status_code=201)
    async def start(
        self, request: Request[Any, Any, Any], flow: FlowName, data: JSONBody[ExecutionStart]
    ) -> ExecutionStarted:
        """Start an execution of ``flow`` and issue its runtime token (``plrt_...``), shown
        once. An agent key runs it as itself; an admin may name the principal."""
        hub, caller = hub_of(request), caller_of(request)
        if flow == EXECUTIONS:
            raise ValidationError(f"{EXECUTIONS!r} cannot be a flow name")
        principal = data.principal
        if caller.role != Role.ADMIN:
            if principal and principal != caller.name:
                raise PermissionDeniedError("only an admin may start a flow for another principal")
            principal = principal_of(caller)
        started = await hub.runtime.start(
            caller.account_id,
            flow,
            principal,
            ttl_seconds=data.ttl_seconds,
            models=data.models,
            labels=data.labels,
            actor=caller.key_id,
        )
        base = hub.settings.public_url
        return ExecutionStarted(
            execution=execution_view(started.execution),
            token=started.token_text,
            token_id=started.token.id,
            expires_at=started.token.expires_at,
            openai_base_url=f"{base}/openai/v1",
            anthropic_base_url=f"{base}/anthropic",
        )

    @get(f"/{EXECUTIONS}/{{execution_id:str}}", opt=roles((*AGENT, Role.APPROVER, Role.VIEWER)))
    async def show(
        self, request: Request[Any, Any, Any], execution_id: FromPath[str]
    ) -> ExecutionDetail:
        """The execution and its tokens' ids, expiry and state. An agent key sees only the
        executions it runs; another's answers 404 like a missing one."""
        hub, caller = hub_of(request), caller_of(request)
        execution, tokens = await hub.runtime.execution(
            caller.account_id, execution_id, principal=owner_of(caller)
        )
        now = hub.clock.now()
        return ExecutionDetail(
            execution=execution_view(execution), tokens=[token_view(t, now) for t in tokens]
        )

    @post(f"/{EXECUTIONS}/{{execution_id:str}}/revoke-token", opt=roles(AGENT), status_code=200)
    async def revoke(
        self, request: Request[Any, Any, Any], execution_id: FromPath[str]
    ) -> ExecutionDetail:
        """Revoke the execution's tokens: the gateway refuses them at once (idempotent). An
        agent key revokes only the executions it runs; another's answers 404."""
        hub, caller = hub_of(request), caller_of(request)
        owner = owner_of(caller)
        tokens = await hub.runtime.revoke(
            caller.account_id, execution_id, actor=caller.key_id, principal=owner
        )
        execution, _ = await hub.runtime.execution(caller.account_id, execution_id, principal=owner)
        now = hub.clock.now()
        return ExecutionDetail(
            execution=execution_view(execution), tokens=[token_view(t, now) for t in tokens]
        )
