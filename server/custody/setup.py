"""Custody from settings: which backends this server has, and why the others are off."""

from __future__ import annotations

import os

from hub.auditing import Auditor
from hub.clock import Clock
from hub.model_gateway.custody import ENV, LOCAL, VAULT, Custody, EnvBackend, SecretBackend
from hub.ports import Storage
from hub.settings import Settings
from server.custody.local import Keyring, LocalEncryptedBackend, key_file_keyring


def open_custody(
    settings: Settings, storage: Storage, clock: Clock, auditor: Auditor
) -> tuple[Custody, list[str]]:
    """The custody service and notes to print at start (a key file just generated)."""
    from server.db import normalize_database_url

    secrets = settings.secrets
    backends: dict[str, SecretBackend] = {}
    unconfigured: dict[str, str] = {}
    notes: list[str] = []
    if secrets.keys:
        keyring = Keyring.parse(secrets.keys)
        backends[LOCAL] = LocalEncryptedBackend(storage.secrets, keyring, clock)
    elif normalize_database_url(settings.database_url).startswith("sqlite"):
        keyring, note = key_file_keyring(settings.data_path)
        backends[LOCAL] = LocalEncryptedBackend(storage.secrets, keyring, clock)
        if note:
            notes.append(note)
    else:
        unconfigured[LOCAL] = (
            "set PRELOOP_SECRETS_KEYS (KEYID:BASE64 of 32 random bytes) on every replica"
        )
    if secrets.vault_addr:
        from server.custody.vault import VaultBackend

        backends[VAULT] = VaultBackend.from_settings(secrets)
    else:
        unconfigured[VAULT] = "set PRELOOP_SECRETS_VAULT_ADDR and PRELOOP_SECRETS_VAULT_TOKEN"
    backends[ENV] = EnvBackend(os.environ, secrets.env_allow_names)
    return Custody(backends, auditor, unconfigured=unconfigured), notes
