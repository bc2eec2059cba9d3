"""Model providers and routing: which provider serves a requested model, with which key.

A provider (``hub.model_gateway.records.Provider``) names its kind (the wire format it speaks), its
base URL, the custody reference of its key, the models it serves (exact ids or globs) and
aliases. ``ProviderService`` manages them (audited, never with the key) and is the
``ModelRouter`` the gateway asks, in this order (docs/decisions/0031):

1. an alias (``fast`` → ``gpt-4o-mini``) of some provider;
2. a model a provider lists exactly;
3. ``PROVIDER/MODEL``: the named provider, the rest sent upstream as the model id;
4. a glob a provider lists (``claude-*``);
5. a provider of the endpoint's family that lists no models (it serves any model).

At each step providers of the endpoint's family (``anthropic`` for /anthropic, ``openai`` and
``openai-compatible`` for /openai) come first, then the others, each by name. Nothing →
``NotFoundError`` listing what is routable. Provider lists and keys are cached briefly; a
change through this service (or a secret written through custody) drops them at once.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

import msgspec

from hub.auditing import Auditor
from hub.cache import DEFAULT_SECONDS, Recent
from hub.clock import Clock
from hub.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from hub.ids import new_id
from hub.model_gateway.custody import Custody, parse_ref
from hub.model_gateway.records import ModelRoute, Provider, ProviderKind
from hub.patterns import NOT_SPACE
from hub.ports import Storage

FAMILIES = {
    "openai": (ProviderKind.OPENAI, ProviderKind.OPENAI_COMPATIBLE),
    "anthropic": (ProviderKind.ANTHROPIC,),
}
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,99}$"
MODEL_PATTERN = rf"^{NOT_SPACE}{{1,200}}$"
_NAME = re.compile(NAME_PATTERN)
_MODEL = re.compile(MODEL_PATTERN)
_GLOB = re.compile(r"[*?\[]")
LISTED_IN_ERRORS = 20


def is_glob(pattern: str) -> bool:
    return bool(_GLOB.search(pattern))


def check_base_url(url: str) -> str:
    """An http(s) URL with a host and no credentials, query or fragment; no trailing slash."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"invalid base URL {url!r}: expected http(s)://host[:port][/path], e.g. "
            "https://api.openai.com/v1"
        )
    if parts.username or parts.password:
        raise ValidationError(
            "invalid base URL: credentials in the URL are not allowed; keep the key in "
            "custody and name it with --secret"
        )
    if parts.query or parts.fragment:
        raise ValidationError(f"invalid base URL {url!r}: no query string or fragment")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValidationError(f"invalid base URL {url!r}: bad port") from exc
    return text.rstrip("/")


def check_models(models: Iterable[str]) -> tuple[str, ...]:
    checked: list[str] = []
    for model in models:
        model = model.strip()
        if not _MODEL.match(model):
            raise ValidationError(f"invalid model {model!r}: 1-200 characters, no spaces")
        if model not in checked:
            checked.append(model)
    return tuple(checked)


def check_aliases(aliases: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for alias, target in aliases.items():
        alias, target = alias.strip(), target.strip()
        if not _MODEL.match(alias) or is_glob(alias):
            raise ValidationError(f"invalid alias {alias!r}: 1-200 characters, no spaces or globs")
        if not _MODEL.match(target) or is_glob(target):
            raise ValidationError(f"invalid alias target {target!r} for {alias!r}")
        checked[alias] = target
    return checked


def check_kind(kind: str) -> ProviderKind:
    try:
        return ProviderKind(kind)
    except ValueError as exc:
        kinds = ", ".join(k.value for k in ProviderKind)
        raise ValidationError(f"invalid provider kind {kind!r}: one of {kinds}") from exc


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValidationError(
            f"invalid provider name {name!r}: 1-100 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit"
        )
    return name


def _family_kinds(family: str) -> tuple[ProviderKind, ...]:
    kinds = FAMILIES.get(family)
    if kinds is None:
        raise ValidationError(f"unknown model family {family!r}: openai or anthropic")
    return kinds


class ProviderService:
    """Providers of each account, and the ``ModelRouter`` over them."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        auditor: Auditor,
        custody: Custody,
        *,
        cache_seconds: float = DEFAULT_SECONDS,
        key_seconds: float = 30.0,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._auditor = auditor
        self._custody = custody
        self._lists: Recent[str, tuple[Provider, ...]] = Recent(cache_seconds)
        self._keys: Recent[tuple[str, str], str] = Recent(key_seconds)

    # --- management -----------------------------------------------------------------------
    async def add(
        self,
        account_id: str,
        *,
        name: str,
        kind: str,
        base_url: str,
        secret_ref: str,
        models: Sequence[str] = (),
        aliases: Mapping[str, str] | None = None,
        actor: str,
    ) -> Provider:
        now = self._clock.now()
        provider = Provider(
            id=new_id("prov"),
            account_id=account_id,
            name=check_name(name),
            kind=check_kind(kind),
            base_url=check_base_url(base_url),
            secret_ref=str(parse_ref(secret_ref)),
            models=check_models(models),
            aliases=check_aliases(aliases or {}),
            created_at=now,
            updated_at=now,
        )
        try:
            await self._storage.providers.add(provider)
        except ConflictError as exc:
            raise ConflictError(f"a provider named {name!r} exists") from exc
        self._changed(account_id)
        await self._auditor.record(account_id, "provider.added", actor, _audited(provider))
        return provider

    async def update(
        self,
        account_id: str,
        name: str,
        *,
        kind: str | None = None,
        base_url: str | None = None,
        secret_ref: str | None = None,
        models: Sequence[str] | None = None,
        aliases: Mapping[str, str] | None = None,
        actor: str,
    ) -> Provider:
        """Change the fields given; the others are kept."""
        current = await self.get(account_id, name)
        changes: dict[str, object] = {"updated_at": self._clock.now()}
        if kind is not None:
            changes["kind"] = check_kind(kind)
        if base_url is not None:
            changes["base_url"] = check_base_url(base_url)
        if secret_ref is not None:
            changes["secret_ref"] = str(parse_ref(secret_ref))
        if models is not None:
            changes["models"] = check_models(models)
        if aliases is not None:
            changes["aliases"] = check_aliases(aliases)
        updated = await self._storage.providers.update(msgspec.structs.replace(current, **changes))
        self._changed(account_id)
        changed = sorted(k for k in changes if k != "updated_at")
        await self._auditor.record(
            account_id, "provider.updated", actor, {**_audited(updated), "changed": changed}
        )
        return updated

    async def remove(self, account_id: str, name: str, *, actor: str) -> None:
        try:
            await self._storage.providers.remove(account_id, name)
        except NotFoundError as exc:
            raise NotFoundError(f"no provider {name!r}") from exc
        self._changed(account_id)
        await self._auditor.record(account_id, "provider.removed", actor, {"provider": name})

    async def get(self, account_id: str, name: str) -> Provider:
        found = await self._storage.providers.get(account_id, name)
        if found is None:
            raise NotFoundError(f"no provider {name!r}")
        return found

    async def list(self, account_id: str) -> Sequence[Provider]:
        return await self._lists.load(account_id, lambda: self._listed(account_id))

    async def _listed(self, account_id: str) -> tuple[Provider, ...]:
        return tuple(await self._storage.providers.list(account_id))

    def forget_keys(self) -> None:
        """Drop every cached provider key (a secret changed in custody)."""
        self._keys.clear()

    def _changed(self, account_id: str) -> None:
        self._lists.drop(account_id)
        self._keys.clear()

    # --- ModelRouter ----------------------------------------------------------------------
    async def route(self, account_id: str, model: str, *, family: str) -> ModelRoute:
        kinds = _family_kinds(family)
        model = model.strip()
        if not model:
            raise ValidationError("the request names no model")
        providers = await self.list(account_id)
        ordered = [p for p in providers if p.kind in kinds] + [
            p for p in providers if p.kind not in kinds
        ]
        for provider in ordered:
            if model in provider.aliases:
                return _route(provider, model, provider.aliases[model])
        for provider in ordered:
            if model in provider.models and not is_glob(model):
                return _route(provider, model, model)
        prefix, slash, rest = model.partition("/")
        if slash and rest:
            for provider in ordered:
                if provider.name == prefix:
                    return _route(provider, model, provider.aliases.get(rest, rest))
        for provider in ordered:
            if any(is_glob(m) and fnmatch.fnmatchcase(model, m) for m in provider.models):
                return _route(provider, model, model)
        for provider in ordered:
            if provider.kind in kinds and not provider.models:
                return _route(provider, model, model)
        raise NotFoundError(await self._unroutable(account_id, model, providers))

    async def _unroutable(self, account_id: str, model: str, providers: Sequence[Provider]) -> str:
        if not providers:
            return (
                f"model {model!r} is not routable: no provider is configured (add one with "
                "'preloop providers add')"
            )
        names = [name for name, _ in await self.models(account_id)]
        patterns = sorted({m for p in providers for m in p.models if is_glob(m)})
        shown = names[:LISTED_IN_ERRORS]
        more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
        listed = ", ".join(shown + patterns) or "none"
        return (
            f"model {model!r} is not routable; routable models: {listed}{more} (or PROVIDER/MODEL)"
        )

    async def models(self, account_id: str) -> Sequence[tuple[str, Provider]]:
        seen: dict[str, Provider] = {}
        for provider in await self.list(account_id):
            for name in (*provider.aliases, *(m for m in provider.models if not is_glob(m))):
                seen.setdefault(name, provider)
        return sorted(seen.items(), key=lambda item: item[0])

    async def provider_key(self, provider: Provider) -> str:
        cache_key = (provider.account_id, provider.secret_ref)
        cached = self._keys.get(cache_key)
        if isinstance(cached, str):
            return cached
        try:
            value = await self._custody.resolve(provider.account_id, provider.secret_ref)
        except NotFoundError as exc:
            raise ConfigError(
                f"provider {provider.name!r}: its key {provider.secret_ref} is missing "
                f"({exc.message})"
            ) from exc
        except ConfigError as exc:
            raise ConfigError(f"provider {provider.name!r}: {exc.message}") from exc
        self._keys.put(cache_key, value)
        return value


def _route(provider: Provider, requested: str, upstream: str) -> ModelRoute:
    return ModelRoute(provider=provider, requested_model=requested, upstream_model=upstream)


def _audited(provider: Provider) -> dict[str, object]:
    """What the audit keeps of a provider: the key's reference, never the key."""
    return {
        "provider": provider.name,
        "kind": provider.kind.value,
        "base_url": provider.base_url,
        "key_ref": provider.secret_ref,
        "models": list(provider.models),
        "aliases": dict(provider.aliases),
    }
