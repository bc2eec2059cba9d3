"""``local_encrypted``: secrets sealed with AES-256-GCM and kept in Preloop's database.

Each value is sealed with a fresh 96-bit nonce; the stored ciphertext is
``base64(nonce || ciphertext || tag)`` and names the key that sealed it (``key_id``). The
associated data is the account id and the secret's name, so a ciphertext copied onto another
secret (or into another account) does not open.

Keys come from ``PRELOOP_SECRETS_KEYS`` (``KEYID:BASE64,...``): the first seals, every one
opens. Rotation without downtime: add the new key in front (the old one stays listed), restart,
run ``preloop secrets rotate`` (re-seals every secret under the active key, compare-and-set so
a concurrent write is never lost), then drop the old key. With no keys configured on the
embedded SQLite default a key is generated into the data directory (``secrets-key``, 0600).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.clock import Clock
from hub.errors import ConfigError, NotFoundError
from hub.model_gateway.custody import LOCAL, SecretInfo, check_local_name
from hub.model_gateway.records import StoredSecret
from hub.ports import SecretStore
from hub.private_files import make_private_dir

KEY_FILE = "secrets-key"
KEY_BYTES = 32
NONCE_BYTES = 12
SETTING = "PRELOOP_SECRETS_KEYS"
_KEY_ID = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")


class Keyring:
    """The ``local_encrypted`` keys: ``active`` seals, all open."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ConfigError(f"{SETTING} holds no key")
        self._keys = {key_id: AESGCM(raw) for key_id, raw in keys}
        self.active = keys[0][0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    @classmethod
    def parse(cls, text: str, *, source: str = SETTING) -> Keyring:
        """``KEYID:BASE64,...``; errors name the entry's position and id, never its bytes."""
        keys: list[tuple[str, bytes]] = []
        for position, entry in enumerate((e.strip() for e in text.split(",")), start=1):
            if not entry:
                continue
            key_id, sep, encoded = entry.partition(":")
            key_id = key_id.strip()
            if not sep or not _KEY_ID.match(key_id):
                raise ConfigError(
                    f"{source}: entry {position} must be KEYID:BASE64 with a key id of 1-32 "
                    "letters, digits, '_' or '-'"
                )
            try:
                raw = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ConfigError(f"{source}: key {key_id!r} is not valid base64") from exc
            if len(raw) != KEY_BYTES:
                raise ConfigError(
                    f"{source}: key {key_id!r} must be {KEY_BYTES} bytes (base64 of 32 random "
                    f"bytes, e.g. `openssl rand -base64 32`), got {len(raw)}"
                )
            if any(key_id == known for known, _ in keys):
                raise ConfigError(f"{source}: key id {key_id!r} is listed twice")
            keys.append((key_id, raw))
        return cls(keys)

    def seal_raw(self, aad: bytes, plaintext: str) -> tuple[str, str]:
        """``(key_id, ciphertext)`` under the active key, bound to ``aad``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.active].encrypt(nonce, plaintext.encode("utf-8"), aad)
        return self.active, base64.b64encode(nonce + sealed).decode("ascii")

    def open_raw(self, aad: bytes, key_id: str, ciphertext: str, *, what: str) -> str:
        aead = self._keys.get(key_id)
        if aead is None:
            raise ConfigError(
                f"{what} is sealed with key {key_id!r}, which is not in {SETTING} "
                f"(known: {', '.join(self._keys)}); add it back to open it"
            )
        try:
            blob = base64.b64decode(ciphertext, validate=True)
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad).decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise ConfigError(
                f"{what} cannot be opened with key {key_id!r}: the key is wrong or the "
                "stored ciphertext was altered"
            ) from exc

    def seal(self, account_id: str, name: str, plaintext: str) -> tuple[str, str]:
        """``(key_id, ciphertext)`` under the active key."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.active].encrypt(
            nonce, plaintext.encode("utf-8"), _aad(account_id, name)
        )
        return self.active, base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, secret: StoredSecret) -> str:
        ref = f"{LOCAL}:{secret.name}"
        aead = self._keys.get(secret.key_id)
        if aead is None:
            raise ConfigError(
                f"secret {ref} is sealed with key {secret.key_id!r}, which is not in {SETTING} "
                f"(known: {', '.join(self._keys)}); add it back to open the secret"
            )
        try:
            blob = base64.b64decode(secret.ciphertext, validate=True)
            plain = aead.decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(secret.account_id, secret.name)
            )
            return plain.decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise ConfigError(
                f"secret {ref} cannot be opened with key {secret.key_id!r}: the key is wrong "
                "or the stored ciphertext was altered"
            ) from exc


def _aad(account_id: str, name: str) -> bytes:
    return f"preloop-secret\x00{account_id}\x00{name}".encode()


class KeyringSealer:
    """``hub.held_calls.Sealer`` with the ``local_encrypted`` keys: AES-256-GCM, a fresh nonce,
    the context as associated data (its own prefix, so a sealed secret never opens as a held
    call or the other way round)."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def seal(self, context: str, plaintext: str) -> tuple[str, str]:
        return self._keyring.seal_raw(_context_aad(context), plaintext)

    def open(self, context: str, key_id: str, sealed: str) -> str:
        return self._keyring.open_raw(_context_aad(context), key_id, sealed, what="a held call")


def _context_aad(context: str) -> bytes:
    return f"preloop-sealed\x00{context}".encode()


def new_key_entry(key_id: str = "local1") -> str:
    """A fresh ``KEYID:BASE64`` entry."""
    return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode('ascii')}"


def key_file_keyring(data_path: Path) -> tuple[Keyring, str | None]:
    """The keyring kept in ``data_path/secrets-key``, made (mode 0600) on first use. The
    second value is a note to print when the file was just made."""
    path = data_path / KEY_FILE
    try:
        return Keyring.parse(path.read_text(encoding="utf-8"), source=str(path)), None
    except FileNotFoundError:
        pass
    make_private_dir(path.parent)
    entry = new_key_entry()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return Keyring.parse(path.read_text(encoding="utf-8"), source=str(path)), None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(entry + "\n")
    note = (
        f"Generated the local_encrypted secrets key in {path} (keep it with the database: "
        f"secrets stored with 'preloop secrets set' cannot be read without it; set "
        f"{SETTING} to manage keys yourself)."
    )
    return Keyring.parse(entry, source=str(path)), note


class LocalEncryptedBackend:
    """``local:NAME`` secrets in the ``secrets`` store, sealed by ``keyring``."""

    backend = LOCAL

    def __init__(self, store: SecretStore, keyring: Keyring, clock: Clock) -> None:
        self._store = store
        self._keyring = keyring
        self._clock = clock

    @property
    def active_key_id(self) -> str:
        return self._keyring.active

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    async def get(self, account_id: str, name: str) -> str:
        stored = await self._store.get(account_id, name)
        if stored is None:
            raise NotFoundError(
                f"secret {LOCAL}:{name} does not exist (store it with 'preloop secrets set {name}')"
            )
        return self._keyring.open(stored)

    async def put(self, account_id: str, name: str, value: str) -> SecretInfo:
        check_local_name(name)
        key_id, ciphertext = self._keyring.seal(account_id, name, value)
        now = self._clock.now()
        await self._store.put(
            StoredSecret(
                account_id=account_id,
                name=name,
                ciphertext=ciphertext,
                key_id=key_id,
                created_at=now,
                updated_at=now,
            )
        )
        return SecretInfo(name=name, backend=LOCAL, key_id=key_id, updated_at=now)

    async def delete(self, account_id: str, name: str) -> None:
        try:
            await self._store.remove(account_id, name)
        except NotFoundError as exc:
            raise NotFoundError(f"secret {LOCAL}:{name} does not exist") from exc

    async def names(self, account_id: str) -> Sequence[SecretInfo]:
        return [
            SecretInfo(name=s.name, backend=LOCAL, key_id=s.key_id, updated_at=s.updated_at)
            for s in await self._store.list(account_id)
        ]

    async def rotate(self, account_id: str, name: str) -> bool:
        """Re-seal under the active key. A write between the read and the swap wins (it is
        sealed under the active key already), so nothing is lost."""
        stored = await self._store.get(account_id, name)
        if stored is None:
            raise NotFoundError(f"secret {LOCAL}:{name} does not exist")
        if stored.key_id == self._keyring.active:
            return False
        plain = self._keyring.open(stored)
        key_id, ciphertext = self._keyring.seal(account_id, name, plain)
        resealed = StoredSecret(
            account_id=account_id,
            name=name,
            ciphertext=ciphertext,
            key_id=key_id,
            created_at=stored.created_at,
            updated_at=self._clock.now(),
        )
        return await self._store.swap(stored, resealed)
