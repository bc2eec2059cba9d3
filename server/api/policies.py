"""Policy-as-code over HTTP: validate, apply, export, diff, versions, rollback, evaluate."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import JSONBody, QueryParameter

from hub.errors import ConflictError, NotFoundError, PolicyError, PolicyTooLargeError
from hub.policy import CallContext, Principal, ToolCall
from hub.policy_versions import MAX_VERSION
from hub.records import PolicyVersion
from hub.wire import (
    DecisionView,
    PolicyApplied,
    PolicyDiff,
    PolicyExport,
    PolicyValidation,
    PolicyVersionSummary,
    view_of,
)
from server.api.deps import caller_of, hub_of
from server.auth import ADMIN, READ, roles


class PolicySource(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Its size is checked by the policy service (a 413 naming the limit), which is below the
    # request body limit (server.max_body_bytes).
    source: Annotated[str, msgspec.Meta(description="Policy YAML.")]
    filename: str = "<policy>"


class ApplyRequest(PolicySource, frozen=True, kw_only=True, forbid_unknown_fields=True):
    dry_run: bool = False
    comment: str = ""


class RollbackRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Annotated[int, msgspec.Meta(ge=1, le=MAX_VERSION)]


class EvaluateRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tool: str
    server: str = ""
    args: dict[str, Any] = {}
    principal: Principal = msgspec.field(default_factory=Principal)
    justification: str | None = None


def _summary(v: PolicyVersion, active: int | None) -> PolicyVersionSummary:
    return PolicyVersionSummary(
        version=v.version,
        name=v.name,
        digest=v.digest,
        created_at=v.created_at,
        created_by=v.created_by,
        comment=v.comment,
        active=v.version == active,
    )


class PolicyController(Controller):
    path = "/policies"
    tags = ["policies"]

    @post("/validate", opt=roles(READ, raises=(PolicyTooLargeError,)), status_code=200)
    async def validate(
        self, request: Request[Any, Any, Any], data: JSONBody[PolicySource]
    ) -> PolicyValidation:
        """Check a policy without applying it; every problem is listed. A policy over a size
        limit (bytes, or aliases that expand too far) is a 413, not a list of problems."""
        try:
            compiled = await hub_of(request).policies.validate(data.source, filename=data.filename)
        except PolicyTooLargeError:
            raise
        except PolicyError as exc:
            return PolicyValidation(valid=False, problems=list(exc.problems))
        doc = compiled.document
        return PolicyValidation(valid=True, name=doc.metadata.name, tools=len(doc.tools))

    @post(
        "/apply",
        opt=roles(ADMIN, raises=(PolicyError, PolicyTooLargeError, ConflictError)),
        status_code=200,
    )
    async def apply(
        self, request: Request[Any, Any, Any], data: JSONBody[ApplyRequest]
    ) -> PolicyApplied:
        """Make the given policy the account's policy (a new version), or show the diff."""
        caller = caller_of(request)
        applied = await hub_of(request).policies.apply(
            caller.account_id,
            data.source,
            actor=caller.key_id,
            filename=data.filename,
            dry_run=data.dry_run,
            comment=data.comment,
        )
        return view_of(applied, PolicyApplied)

    @get("/export", opt=roles(READ, raises=(NotFoundError,)))
    async def export(
        self,
        request: Request[Any, Any, Any],
        version: Annotated[int | None, QueryParameter(ge=1, le=MAX_VERSION)] = None,
    ) -> PolicyExport:
        """The active policy (or a given version) as canonical YAML."""
        hub = hub_of(request)
        account = caller_of(request).account_id
        source = await hub.policies.export(account, version)
        if version is None:
            latest = await hub.storage.policies.latest(account)
            assert latest is not None
            version = latest.version
        return PolicyExport(version=version, source=source)

    @post("/diff", opt=roles(READ, raises=(PolicyError, PolicyTooLargeError)), status_code=200)
    async def diff(
        self, request: Request[Any, Any, Any], data: JSONBody[PolicySource]
    ) -> PolicyDiff:
        """What applying the given policy would change."""
        text = await hub_of(request).policies.diff(
            caller_of(request).account_id, data.source, filename=data.filename
        )
        return PolicyDiff(changed=bool(text), diff=text)

    @get("/versions", opt=roles(READ))
    async def versions(self, request: Request[Any, Any, Any]) -> list[PolicyVersionSummary]:
        """Every applied version, newest first."""
        history = await hub_of(request).policies.history(caller_of(request).account_id)
        active = history[0].version if history else None
        return [_summary(v, active) for v in history]

    @post(
        "/rollback",
        opt=roles(ADMIN, raises=(NotFoundError, ConflictError, PolicyError)),
        status_code=200,
    )
    async def rollback(
        self, request: Request[Any, Any, Any], data: JSONBody[RollbackRequest]
    ) -> PolicyApplied:
        """Apply an earlier version again, as a new version."""
        caller = caller_of(request)
        applied = await hub_of(request).policies.rollback(
            caller.account_id, data.version, actor=caller.key_id
        )
        return view_of(applied, PolicyApplied)

    @post("/evaluate", opt=roles(READ, raises=(NotFoundError,)), status_code=200)
    async def evaluate(
        self, request: Request[Any, Any, Any], data: JSONBody[EvaluateRequest]
    ) -> DecisionView:
        """Decide a hypothetical call against the active policy (nothing runs)."""
        hub = hub_of(request)
        active = await hub.policies.active(caller_of(request).account_id)
        if active is None:
            raise NotFoundError("no policy has been applied yet")
        call = ToolCall(
            tool=data.tool,
            server=data.server,
            args=data.args,
            principal=data.principal,
            context=CallContext(time=hub.clock.now()),
            justification=data.justification,
        )
        return view_of(active[1].decide(call), DecisionView)
