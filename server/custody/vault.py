"""Vault / OpenBao KV version 2 over HTTP, with token auth: ``vault:PATH#FIELD``.

Reads ``GET {addr}/v1/{mount}/data/{path}`` (the latest version) and takes ``FIELD`` of its
``data.data``; writes read the secret, set the field and ``POST`` ``{"data": ...}`` with
check-and-set on the version read, so a concurrent change to another field is not lost.
``X-Vault-Token`` carries the token, ``X-Vault-Namespace`` the namespace when set.

Vault's failures become the hub's errors once, here, naming the reference and never the
token or a value: 404 (or a deleted version) → ``NotFoundError``; 403 → ``ConfigError``
(permission denied: the token or its policy); 503 → ``ConfigError`` (sealed or standby);
unreachable → ``ConfigError``. Listing is not offered (``names`` is empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from hub.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from hub.model_gateway.custody import VAULT, SecretInfo, parse_ref
from hub.settings import SecretsSettings

MAX_ERROR_CHARS = 200


class VaultBackend:
    backend = VAULT

    def __init__(
        self,
        addr: str,
        token: str,
        *,
        mount: str = "secret",
        namespace: str = "",
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not token:
            raise ConfigError(
                "PRELOOP_SECRETS_VAULT_ADDR is set but PRELOOP_SECRETS_VAULT_TOKEN is not"
            )
        if not addr.startswith(("http://", "https://")):
            raise ConfigError("PRELOOP_SECRETS_VAULT_ADDR must start with http:// or https://")
        self._addr = addr.rstrip("/")
        self._mount = mount.strip("/") or "secret"
        self._headers = {"X-Vault-Token": token}
        if namespace:
            self._headers["X-Vault-Namespace"] = namespace
        self._timeout = timeout
        self._transport = transport

    @classmethod
    def from_settings(cls, settings: SecretsSettings) -> VaultBackend:
        return cls(
            settings.vault_addr,
            settings.vault_token,
            mount=settings.vault_mount,
            namespace=settings.vault_namespace,
            timeout=settings.vault_timeout_seconds,
        )

    # --- SecretBackend --------------------------------------------------------------------
    async def get(self, account_id: str, name: str) -> str:
        path, field = _split(name)
        data, _ = await self._read(path, name)
        if data is None:
            raise NotFoundError(f"secret {VAULT}:{name} does not exist in Vault")
        value = data.get(field)
        if not isinstance(value, str) or not value:
            raise NotFoundError(
                f"secret {VAULT}:{name}: the Vault secret {path!r} has no text field {field!r}"
            )
        return value

    async def put(self, account_id: str, name: str, value: str) -> SecretInfo:
        path, field = _split(name)
        data, version = await self._read(path, name)
        merged = {**(data or {}), field: value}
        await self._write(path, name, merged, version)
        return SecretInfo(name=name, backend=VAULT)

    async def delete(self, account_id: str, name: str) -> None:
        path, field = _split(name)
        data, version = await self._read(path, name)
        if data is None or field not in data:
            raise NotFoundError(f"secret {VAULT}:{name} does not exist in Vault")
        rest = {k: v for k, v in data.items() if k != field}
        if rest:
            await self._write(path, name, rest, version)
        else:
            await self._send("DELETE", path, name)

    async def names(self, account_id: str) -> Sequence[SecretInfo]:
        return []

    # --- HTTP -----------------------------------------------------------------------------
    async def _read(self, path: str, name: str) -> tuple[dict[str, Any] | None, int]:
        """The latest version's data and number; ``(None, 0)`` when there is none."""
        response = await self._send("GET", path, name, missing_ok=True)
        assert response is not None
        if response.status_code == 404:  # never written, or its latest version deleted
            return None, _deleted_version(response)
        try:
            body = response.json()["data"]
            data, metadata = body.get("data"), body.get("metadata") or {}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"Vault answered {VAULT}:{name} with an unexpected body") from exc
        version = int(metadata.get("version") or 0)
        if data is None or metadata.get("deletion_time") or metadata.get("destroyed"):
            return None, version
        if not isinstance(data, dict):
            raise ConfigError(f"Vault answered {VAULT}:{name} with an unexpected body")
        return data, version

    async def _write(self, path: str, name: str, data: dict[str, Any], version: int) -> None:
        body = {"options": {"cas": version}, "data": data}
        await self._send("POST", path, name, json=body)

    async def _send(
        self,
        method: str,
        path: str,
        name: str,
        *,
        json: Any = None,
        missing_ok: bool = False,
    ) -> httpx.Response | None:
        url = f"{self._addr}/v1/{quote(self._mount)}/data/{quote(path)}"
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout, transport=self._transport
            ) as client:
                response = await client.request(method, url, headers=self._headers, json=json)
        except httpx.HTTPError as exc:
            raise ConfigError(
                f"cannot reach Vault at {self._addr} for {VAULT}:{name} "
                f"({type(exc).__name__}); check PRELOOP_SECRETS_VAULT_ADDR"
            ) from exc
        status = response.status_code
        if status < 300:
            return response
        reason = _errors(response)
        ref = f"{VAULT}:{name}"
        if status == 404:
            if missing_ok:
                return response
            raise NotFoundError(f"secret {ref} does not exist in Vault (mount {self._mount!r})")
        if status in (401, 403):
            raise ConfigError(
                f"Vault denied access to {ref} (permission denied): check "
                "PRELOOP_SECRETS_VAULT_TOKEN and the token's policy for this path"
            )
        if status == 503:
            raise ConfigError(f"Vault at {self._addr} is sealed or unavailable ({ref})")
        if status == 400 and "check-and-set" in reason:
            raise ConflictError(f"secret {ref} changed in Vault meanwhile; try again")
        raise ConfigError(f"Vault answered HTTP {status} for {ref}: {reason or 'no reason'}")


def _split(name: str) -> tuple[str, str]:
    ref = parse_ref(f"{VAULT}:{name}")
    path, _, field = ref.name.partition("#")
    if not field:
        raise ValidationError(f"invalid secret reference {VAULT}:{name}: expected PATH#FIELD")
    return path, field


def _deleted_version(response: httpx.Response) -> int:
    """The version number a 404 of a deleted secret still carries (0 when none): writes
    check-and-set against it."""
    try:
        return int(response.json()["data"]["metadata"]["version"])
    except (ValueError, KeyError, TypeError):
        return 0


def _errors(response: httpx.Response) -> str:
    """Vault's ``{"errors": [...]}`` envelope, shortened."""
    try:
        errors = response.json().get("errors") or []
        text = "; ".join(str(e) for e in errors)
    except (ValueError, AttributeError):
        text = ""
    return text[:MAX_ERROR_CHARS]
