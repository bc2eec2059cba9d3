"""Flow executions, their runtime tokens, and who a gateway request is for.

A managed agent runtime (a *flow*) gets, per run, a flow execution and a short-lived token
``plrt_<16 hex id>_<secret>`` for the model gateway. Only the SHA-256 of the token text is
stored (the secret part carries 256 bits, so a plain hash is the right one, as for API keys);
the id in the clear makes authentication one indexed lookup. A token is scoped to its
execution (usage is attributed to it), may be limited to model globs, expires (default one
hour, at most ``PRELOOP_SECRETS_RUNTIME_TOKEN_MAX_SECONDS``) and can be revoked.

``RuntimeService.authenticate`` is the ``GatewayAuth``: a runtime token, or an API key of role
agent or admin, becomes an ``Attribution``. Tokens read from storage are reused for a few
seconds (``PRELOOP_SERVER_CACHE_SECONDS``); a revocation here drops the entry at once, one on
another replica is honoured within that time.
"""

from __future__ import annotations

import fnmatch
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta

import msgspec

from hub.auditing import Auditor
from hub.cache import DEFAULT_SECONDS, Recent
from hub.clock import Clock
from hub.errors import AuthenticationError, NotFoundError, PermissionDeniedError, ValidationError
from hub.identity import IdentityService
from hub.ids import new_id
from hub.keys import ACTING_ROLES, hash_key, same_secret
from hub.model_gateway.records import Attribution, FlowExecution, RuntimeToken
from hub.ports import Storage

PREFIX = "plrt"
DEFAULT_TTL_SECONDS = 3600
# The longest life a request may ask for, whatever the setting: what a schema can promise.
MAX_TTL_SECONDS = 366 * 86400
GATEWAY_ROLES = ACTING_ROLES
FLOW_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,99}$"
_FLOW = re.compile(FLOW_PATTERN)
_HEX16 = re.compile(r"^[0-9a-f]{16}$")


class StartedExecution(msgspec.Struct, frozen=True, kw_only=True):
    """A new flow execution and its token; ``token_text`` exists only here, once."""

    execution: FlowExecution
    token: RuntimeToken
    token_text: str


def is_runtime_token(text: str) -> bool:
    return text.startswith(PREFIX + "_")


def token_id_of(text: str) -> str | None:
    """``rt_<hex>`` from ``plrt_<hex>_<secret>``, or ``None`` when the text is not shaped so."""
    parts = text.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not _HEX16.match(parts[1]) or not parts[2]:
        return None
    return f"rt_{parts[1]}"


def model_allowed(who: Attribution, model: str) -> bool:
    """Whether ``who`` may use ``model`` (its token's model globs; none: every model)."""
    return not who.models or any(fnmatch.fnmatchcase(model, p) for p in who.models)


def check_flow(flow: str) -> str:
    if not _FLOW.match(flow):
        raise ValidationError(
            f"invalid flow name {flow!r}: 1-100 letters, digits, '.', '_' or '-', starting with "
            "a letter or digit"
        )
    return flow


class RuntimeService:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        auditor: Auditor,
        identity: IdentityService,
        *,
        max_ttl_seconds: int = 86400,
        cache_seconds: float = DEFAULT_SECONDS,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._auditor = auditor
        self._identity = identity
        self._max_ttl = max_ttl_seconds
        self._tokens: Recent[str, RuntimeToken] = Recent(cache_seconds)
        self._emails: Recent[tuple[str, str], str] = Recent(cache_seconds)

    # --- executions and tokens ------------------------------------------------------------
    async def start(
        self,
        account_id: str,
        flow: str,
        principal: str,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        models: Sequence[str] = (),
        labels: Mapping[str, str] | None = None,
        actor: str,
    ) -> StartedExecution:
        """A new execution of ``flow`` run by ``principal``, with a token for the gateway."""
        check_flow(flow)
        principal = principal.strip() or f"flow:{flow}"
        if len(principal) > 320:
            raise ValidationError("principal is longer than 320 characters")
        if not 0 < ttl_seconds <= self._max_ttl:
            raise ValidationError(
                f"ttl_seconds must be between 1 and {self._max_ttl} "
                "(PRELOOP_SECRETS_RUNTIME_TOKEN_MAX_SECONDS)"
            )
        allowed = tuple(m.strip() for m in models if m.strip())
        if any(len(m) > 200 or " " in m for m in allowed):
            raise ValidationError("each model pattern is 1-200 characters without spaces")
        now = self._clock.now()
        execution = FlowExecution(
            id=new_id("fx"),
            account_id=account_id,
            flow=flow,
            principal=principal,
            created_at=now,
            labels=dict(labels or {}),
        )
        hex_id = secrets.token_hex(8)
        text = f"{PREFIX}_{hex_id}_{secrets.token_urlsafe(32)}"
        token = RuntimeToken(
            id=f"rt_{hex_id}",
            account_id=account_id,
            execution_id=execution.id,
            flow=flow,
            principal=principal,
            token_hash=hash_key(text),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
            models=allowed,
        )
        await self._storage.flow_executions.add(execution)
        await self._storage.runtime_tokens.add(token)
        await self._auditor.record(
            account_id,
            "runtime.token_issued",
            actor,
            {
                "execution_id": execution.id,
                "flow": flow,
                "principal": principal,
                "id": token.id,
                "expires_at": token.expires_at.isoformat(),
                "models": list(allowed),
            },
        )
        return StartedExecution(execution=execution, token=token, token_text=text)

    async def execution(
        self, account_id: str, execution_id: str, *, principal: str | None = None
    ) -> tuple[FlowExecution, Sequence[RuntimeToken]]:
        """The execution and its tokens. With ``principal`` (an agent asking), only an
        execution run by that principal: another's is not found, as a missing one, so that its
        existence is not revealed (decision 0051)."""
        found = await self._storage.flow_executions.get(account_id, execution_id)
        if found is None or (principal is not None and found.principal != principal):
            raise NotFoundError(f"no flow execution {execution_id!r}")
        return found, await self._storage.runtime_tokens.list(account_id, execution_id)

    async def executions(
        self, account_id: str, *, flow: str | None = None, limit: int = 100
    ) -> Sequence[FlowExecution]:
        return await self._storage.flow_executions.list(account_id, flow=flow, limit=limit)

    async def revoke(
        self, account_id: str, execution_id: str, *, actor: str, principal: str | None = None
    ) -> Sequence[RuntimeToken]:
        """Revoke every token of the execution (idempotent); they stop working at once here.
        With ``principal``, only an execution run by that principal (as ``execution``)."""
        _, tokens = await self.execution(account_id, execution_id, principal=principal)
        now = self._clock.now()
        revoked: list[RuntimeToken] = []
        for token in tokens:
            fresh = token.revoked_at is None
            token = await self._storage.runtime_tokens.revoke(account_id, token.id, now)
            self._tokens.drop(token.id)
            revoked.append(token)
            if fresh:
                await self._auditor.record(
                    account_id,
                    "runtime.token_revoked",
                    actor,
                    {"execution_id": execution_id, "id": token.id},
                )
        return revoked

    # --- GatewayAuth ----------------------------------------------------------------------
    async def authenticate(self, presented: str) -> Attribution:
        presented = presented.strip()
        if not presented:
            raise AuthenticationError(
                "missing credential: send a Preloop API key or runtime token as "
                "'Authorization: Bearer <key>' or 'x-api-key: <key>'"
            )
        if is_runtime_token(presented):
            return await self._runtime(presented)
        caller = await self._identity.authenticate(presented)
        if not caller.has(*GATEWAY_ROLES):
            raise PermissionDeniedError(
                f"API key {caller.key_id} has role {caller.role.value}; the model gateway "
                "accepts agent or admin keys and runtime tokens"
            )
        principal = caller.name or caller.key_id
        if caller.user_id:
            principal = await self._email(caller.account_id, caller.user_id) or principal
        return Attribution(
            account_id=caller.account_id,
            api_key_id=caller.key_id,
            principal=principal,
            flow=caller.labels.get("flow") or None,
        )

    async def _runtime(self, presented: str) -> Attribution:
        token_id = token_id_of(presented)
        token = await self._token(token_id) if token_id else None
        if token is None or not same_secret(hash_key(presented), token.token_hash):
            raise AuthenticationError("invalid runtime token")
        if token.revoked_at is not None:
            raise AuthenticationError(f"runtime token {token.id} was revoked")
        if self._clock.now() >= token.expires_at:
            raise AuthenticationError(
                f"runtime token {token.id} expired at {token.expires_at.isoformat()}; start a "
                "new flow execution for a new token"
            )
        return Attribution(
            account_id=token.account_id,
            api_key_id=token.id,
            principal=token.principal,
            flow=token.flow,
            execution_id=token.execution_id,
            models=token.models,
        )

    async def _token(self, token_id: str) -> RuntimeToken | None:
        return await self._tokens.load_found(
            token_id, lambda: self._storage.runtime_tokens.get(token_id)
        )

    async def _email(self, account_id: str, user_id: str) -> str | None:
        async def read() -> str | None:
            user = await self._storage.users.get(account_id, user_id)
            return None if user is None else user.email

        return await self._emails.load_found((account_id, user_id), read)
