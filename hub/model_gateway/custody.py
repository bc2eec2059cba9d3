"""Secret custody: where provider keys live, named by reference, never by value.

A reference says which backend holds a secret and where:

- ``local:NAME``: ``local_encrypted``, an AES-GCM ciphertext in Preloop's own database
  (``server/custody/local.py``); the key comes from settings;
- ``vault:PATH#FIELD``: a field of a Vault/OpenBao KV v2 secret (``server/custody/vault.py``);
- ``env:VAR``: a variable of the server's environment, only for names
  ``PRELOOP_SECRETS_ENV_ALLOW`` lists (the embedded default and development).

``Custody`` parses references, dispatches to the backend and audits changes. Values never
appear in a log line, an audit row or an error message: errors name the reference only.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec

from hub.auditing import Auditor
from hub.errors import ConfigError, NotFoundError, ValidationError

LOCAL, VAULT, ENV = "local", "vault", "env"
REFERENCE_FORMS = "local:NAME, vault:PATH#FIELD or env:VAR"
MAX_VALUE_BYTES = 64 * 1024
LOCAL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,99}$"
_NAME = re.compile(LOCAL_NAME_PATTERN)
_VAULT_PATH = re.compile(r"^[A-Za-z0-9._\-]+(/[A-Za-z0-9._\-]+)*$")
_FIELD = re.compile(r"^[A-Za-z0-9._\-]{1,100}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")
# What parse_ref accepts, as one pattern (the OpenAPI document states it for secret_ref).
REFERENCE_PATTERN = (
    r"^(?:local:[A-Za-z0-9][A-Za-z0-9._\-]{0,99}"
    r"|vault:[A-Za-z0-9._\-]+(?:/[A-Za-z0-9._\-]+)*#[A-Za-z0-9._\-]{1,100}"
    r"|env:[A-Za-z_][A-Za-z0-9_]{0,199})$"
)


class SecretRef(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed reference: ``backend`` and the ``name`` inside it (``PATH#FIELD`` for vault)."""

    backend: str
    name: str

    def __str__(self) -> str:
        return f"{self.backend}:{self.name}"


class SecretInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A secret as listed: never its value. ``key_id`` is the ``local_encrypted`` key that
    sealed it (``None`` for other backends)."""

    name: str
    backend: str
    key_id: str | None = None
    updated_at: datetime | None = None


@runtime_checkable
class SecretBackend(Protocol):
    """One place secrets live. ``name`` is the reference without its ``backend:`` prefix."""

    backend: str

    async def get(self, account_id: str, name: str) -> str:
        """The value; ``NotFoundError`` naming the reference when absent, ``ConfigError``
        when the backend cannot answer."""
        ...

    async def put(self, account_id: str, name: str, value: str) -> SecretInfo: ...
    async def delete(self, account_id: str, name: str) -> None:
        """``NotFoundError`` when absent."""
        ...

    async def names(self, account_id: str) -> Sequence[SecretInfo]:
        """What the backend holds for the account, by name (may be empty when it cannot
        list, e.g. the environment)."""
        ...


@runtime_checkable
class RotatingBackend(SecretBackend, Protocol):
    """A backend whose values are sealed under a key that can change (``local_encrypted``)."""

    @property
    def active_key_id(self) -> str: ...

    async def rotate(self, account_id: str, name: str) -> bool:
        """Re-seal the secret under the active key; ``False`` when it already was."""
        ...


def parse_ref(text: str) -> SecretRef:
    """A reference from its text, or ``ValidationError`` naming the forms expected."""
    backend, sep, name = text.strip().partition(":")
    if not sep or not name:
        raise ValidationError(f"invalid secret reference {text!r}: expected {REFERENCE_FORMS}")
    if backend == LOCAL and _NAME.match(name):
        return SecretRef(backend=LOCAL, name=name)
    if backend == VAULT:
        path, hash_, field = name.partition("#")
        if hash_ and _VAULT_PATH.match(path) and _FIELD.match(field):
            return SecretRef(backend=VAULT, name=name)
        raise ValidationError(
            f"invalid secret reference {text!r}: expected vault:PATH#FIELD, e.g. "
            "vault:preloop/openai#api_key"
        )
    if backend == ENV and _ENV.match(name):
        return SecretRef(backend=ENV, name=name)
    if backend in (LOCAL, ENV):
        what = "NAME (letters, digits, '.', '_', '-')" if backend == LOCAL else "VAR"
        raise ValidationError(f"invalid secret reference {text!r}: expected {backend}:{what}")
    raise ValidationError(f"invalid secret reference {text!r}: expected {REFERENCE_FORMS}")


def check_local_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValidationError(
            f"invalid secret name {name!r}: 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class EnvBackend:
    """``env:VAR``: the server's environment, only for variables ``allow`` names (exact names
    or globs such as ``*_API_KEY``); ``PRELOOP_*`` variables never (they hold Preloop's own
    secrets). Read-only."""

    backend = ENV

    def __init__(self, environ: Mapping[str, str], allow: Sequence[str]) -> None:
        self._environ = environ
        self._allow = tuple(a for a in allow if a)

    def allows(self, name: str) -> bool:
        if name.upper().startswith("PRELOOP_"):
            return False
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self._allow)

    async def get(self, account_id: str, name: str) -> str:
        if not self.allows(name):
            raise ConfigError(
                f"secret env:{name} is not readable: list the variable in "
                "PRELOOP_SECRETS_ENV_ALLOW (PRELOOP_* variables are never readable)"
            )
        value = self._environ.get(name)
        if not value:
            raise NotFoundError(f"secret env:{name} is not set in the server's environment")
        return value

    async def put(self, account_id: str, name: str, value: str) -> SecretInfo:
        raise ValidationError(f"env:{name} is read-only: set it in the server's environment")

    async def delete(self, account_id: str, name: str) -> None:
        raise ValidationError(f"env:{name} is read-only: unset it in the server's environment")

    async def names(self, account_id: str) -> Sequence[SecretInfo]:
        return [
            SecretInfo(name=n, backend=ENV)
            for n in sorted(self._environ)
            if self.allows(n) and self._environ[n]
        ]


class Custody:
    """Resolves references through the configured backends; writes are audited (names and
    backends only). A backend that is not configured fails with ``ConfigError`` saying how
    to configure it."""

    def __init__(
        self,
        backends: Mapping[str, SecretBackend],
        auditor: Auditor,
        *,
        unconfigured: Mapping[str, str] | None = None,
    ) -> None:
        self._backends = dict(backends)
        self._auditor = auditor
        self._unconfigured = dict(unconfigured or {})
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every write (caches of resolved values drop them)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def backend(self, name: str) -> SecretBackend:
        found = self._backends.get(name)
        if found is None:
            why = self._unconfigured.get(name, f"the {name} backend is not configured")
            raise ConfigError(f"secret backend {name!r} is not available: {why}")
        return found

    def check_ref(self, text: str) -> SecretRef:
        """A valid reference (syntax only: the secret may be stored later)."""
        return parse_ref(text)

    async def resolve(self, account_id: str, text: str) -> str:
        ref = parse_ref(text)
        return await self.backend(ref.backend).get(account_id, ref.name)

    async def put(self, account_id: str, ref_text: str, value: str, *, actor: str) -> SecretInfo:
        ref = parse_ref(ref_text)
        if not value:
            raise ValidationError(f"secret {ref} needs a value")
        if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
            raise ValidationError(f"secret {ref} is longer than {MAX_VALUE_BYTES} bytes")
        info = await self.backend(ref.backend).put(account_id, ref.name, value)
        self._changed()
        details: dict[str, str] = {"ref": str(ref)}
        if info.key_id:
            details["key_id"] = info.key_id
        await self._auditor.record(account_id, "secret.stored", actor, details)
        return info

    async def delete(self, account_id: str, ref_text: str, *, actor: str) -> None:
        ref = parse_ref(ref_text)
        await self.backend(ref.backend).delete(account_id, ref.name)
        self._changed()
        await self._auditor.record(account_id, "secret.deleted", actor, {"ref": str(ref)})

    async def list(self, account_id: str) -> Sequence[SecretInfo]:
        """The secrets the listable backends hold (``local`` and ``env``), by backend."""
        found: list[SecretInfo] = []
        for name in (LOCAL, ENV):
            backend = self._backends.get(name)
            if backend is not None:
                found.extend(await backend.names(account_id))
        return found

    def rotating(self) -> RotatingBackend:
        backend = self.backend(LOCAL)
        if not isinstance(backend, RotatingBackend):
            raise ConfigError("the local backend cannot rotate keys")
        return backend

    async def rotate(self, account_id: str, name: str, *, actor: str) -> bool:
        """Re-seal ``local:NAME`` under the active key; ``True`` when it changed."""
        backend = self.rotating()
        changed = await backend.rotate(account_id, check_local_name(name))
        if changed:
            self._changed()
            await self._auditor.record(
                account_id,
                "secret.rotated",
                actor,
                {"ref": f"{LOCAL}:{name}", "key_id": backend.active_key_id},
            )
        return changed
