"""Model providers and the secrets custody holds for them, over HTTP.

Nothing here ever returns a secret: providers show the *reference* of their key, secrets show
their name, backend and the key that sealed them. A secret's value goes in (``PUT``) and
never comes out.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody, Parameter

from hub.errors import ConfigError, ConflictError
from hub.model_gateway.custody import (
    LOCAL,
    LOCAL_NAME_PATTERN,
    MAX_VALUE_BYTES,
    REFERENCE_PATTERN,
    SecretInfo,
    check_local_name,
)
from hub.model_gateway.providers import MODEL_PATTERN, NAME_PATTERN
from hub.model_gateway.records import Provider, ProviderKind
from hub.wire import ProviderView, SecretRotated, SecretView
from server.api.deps import caller_of, hub_of
from server.api.fields import each, keyed, shaped
from server.auth import ADMIN, READ, roles

# An http(s) URL with a host, an optional port, no credentials, query or fragment.
PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
BASE_URL = rf"^https?://[A-Za-z0-9._~-]+(?::{PORT})?(?:/[^\s\x1c-\x1f\x85?#]*)?$"
BaseUrl = Annotated[str, shaped(BASE_URL, min_length=1, max_length=2000)]
SecretRef = Annotated[str, shaped(REFERENCE_PATTERN, min_length=1, max_length=500)]
# an alias and its target: a model id, no glob characters (no space: hub/patterns.py)
EXACT = r"^[^\s\x1c-\x1f\x85*?\[]{1,200}$"
Models = Annotated[list[str], each(MODEL_PATTERN)]
Aliases = Annotated[dict[str, str], keyed(EXACT, EXACT)]
SecretName = Annotated[str, Parameter(schema_extra={"pattern": LOCAL_NAME_PATTERN})]


class ProviderCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, shaped(NAME_PATTERN, min_length=1, max_length=100)]
    kind: ProviderKind
    base_url: BaseUrl
    secret_ref: SecretRef
    models: Models = []
    aliases: Aliases = {}


class ProviderChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The fields to change; absent ones are kept (``models: []`` clears the list)."""

    kind: ProviderKind | None = None
    base_url: BaseUrl | None = None
    secret_ref: SecretRef | None = None
    models: Models | None = None
    aliases: Aliases | None = None


class SecretValue(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_VALUE_BYTES)]


def provider_view(provider: Provider) -> ProviderView:
    return ProviderView(
        id=provider.id,
        name=provider.name,
        kind=provider.kind.value,
        base_url=provider.base_url,
        secret_ref=provider.secret_ref,
        models=list(provider.models),
        aliases=dict(provider.aliases),
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )


def _secret_view(info: SecretInfo, active: str | None) -> SecretView:
    local = info.backend == LOCAL
    return SecretView(
        name=info.name,
        backend=info.backend,
        ref=f"{info.backend}:{info.name}",
        key_id=info.key_id,
        current=(info.key_id == active) if local and active else None,
        updated_at=info.updated_at,
    )


class ProviderController(Controller):
    path = "/providers"
    tags = ["gateway"]

    @get("/", opt=roles(READ))
    async def list_providers(self, request: Request[Any, Any, Any]) -> list[ProviderView]:
        """Every provider of the account, by name (never a key)."""
        hub, caller = hub_of(request), caller_of(request)
        return [provider_view(p) for p in await hub.model_router.list(caller.account_id)]

    @get("/{name:str}", opt=roles(READ))
    async def show(self, request: Request[Any, Any, Any], name: FromPath[str]) -> ProviderView:
        hub, caller = hub_of(request), caller_of(request)
        return provider_view(await hub.model_router.get(caller.account_id, name))

    @post("/", opt=roles(ADMIN, raises=(ConflictError,)), status_code=201)
    async def add(
        self, request: Request[Any, Any, Any], data: JSONBody[ProviderCreate]
    ) -> ProviderView:
        """Add a provider. ``secret_ref`` names its key in custody (``local:NAME``,
        ``vault:PATH#FIELD`` or ``env:VAR``), never the key itself."""
        hub, caller = hub_of(request), caller_of(request)
        provider = await hub.model_router.add(
            caller.account_id,
            name=data.name,
            kind=data.kind.value,
            base_url=data.base_url,
            secret_ref=data.secret_ref,
            models=data.models,
            aliases=data.aliases,
            actor=caller.key_id,
        )
        return provider_view(provider)

    @patch("/{name:str}", opt=roles(ADMIN))
    async def change(
        self, request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[ProviderChange]
    ) -> ProviderView:
        hub, caller = hub_of(request), caller_of(request)
        provider = await hub.model_router.update(
            caller.account_id,
            name,
            kind=data.kind.value if data.kind is not None else None,
            base_url=data.base_url,
            secret_ref=data.secret_ref,
            models=data.models,
            aliases=data.aliases,
            actor=caller.key_id,
        )
        return provider_view(provider)

    @delete("/{name:str}", opt=roles(ADMIN), status_code=204)
    async def remove(self, request: Request[Any, Any, Any], name: FromPath[str]) -> None:
        hub, caller = hub_of(request), caller_of(request)
        await hub.model_router.remove(caller.account_id, name, actor=caller.key_id)


class SecretController(Controller):
    path = "/secrets"
    tags = ["gateway"]

    @get("/", opt=roles(ADMIN))
    async def list_secrets(self, request: Request[Any, Any, Any]) -> list[SecretView]:
        """The secrets of the listable backends (``local``, allowed ``env`` variables):
        names, backend and sealing key, never values."""
        hub, caller = hub_of(request), caller_of(request)
        active = _active_key(request)
        return [_secret_view(i, active) for i in await hub.custody.list(caller.account_id)]

    @put("/{name:str}", opt=roles(ADMIN))
    async def store(
        self, request: Request[Any, Any, Any], name: SecretName, data: JSONBody[SecretValue]
    ) -> SecretView:
        """Store ``local:NAME`` (sealed with the active key). Write-only: the value is never
        returned by any route."""
        hub, caller = hub_of(request), caller_of(request)
        ref = f"{LOCAL}:{check_local_name(name)}"
        info = await hub.custody.put(caller.account_id, ref, data.value, actor=caller.key_id)
        return _secret_view(info, _active_key(request))

    @delete("/{name:str}", opt=roles(ADMIN), status_code=204)
    async def remove(self, request: Request[Any, Any, Any], name: SecretName) -> None:
        hub, caller = hub_of(request), caller_of(request)
        ref = f"{LOCAL}:{check_local_name(name)}"
        await hub.custody.delete(caller.account_id, ref, actor=caller.key_id)

    @post("/{name:str}/rotate", opt=roles(ADMIN), status_code=200)
    async def rotate(self, request: Request[Any, Any, Any], name: SecretName) -> SecretRotated:
        """Re-seal ``local:NAME`` under the active key (idempotent)."""
        hub, caller = hub_of(request), caller_of(request)
        rotated = await hub.custody.rotate(caller.account_id, name, actor=caller.key_id)
        return SecretRotated(
            name=name, key_id=hub.custody.rotating().active_key_id, rotated=rotated
        )


def _active_key(request: Request[Any, Any, Any]) -> str | None:
    hub = hub_of(request)
    try:
        return hub.custody.rotating().active_key_id
    except ConfigError:  # no local backend: nothing is "current"
        return None
