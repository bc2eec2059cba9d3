"""Custody from settings: the key file on SQLite, nothing on PostgreSQL without keys, bad keys
refused at start without a traceback or the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.auditing import Auditor
from hub.clock import FrozenClock
from hub.errors import ConfigError
from hub.memory import InMemoryStorage
from hub.model_gateway.custody import Custody
from hub.redact import redact_text
from hub.settings import Settings, load_settings
from server.bootstrap import open_hub
from server.custody.local import new_key_entry
from server.custody.setup import open_custody


def settings_for(tmp_path: Path, **env: str) -> Settings:
    base = {"PRELOOP_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path)}
    return load_settings({**base, **env}, env_file=tmp_path / "no.env")


def custody_for(tmp_path: Path, **env: str) -> tuple[Custody, list[str]]:
    storage, clock = InMemoryStorage(), FrozenClock()
    settings = settings_for(tmp_path, **env)
    return open_custody(settings, storage, clock, Auditor(storage.audit, clock))


def test_sqlite_without_keys_generates_a_key_file_once(tmp_path: Path) -> None:
    custody, notes = custody_for(tmp_path)
    assert 1 == len(notes)
    assert str(tmp_path / "data" / "secrets-key") in notes[0]
    _, again = custody_for(tmp_path)
    assert [] == again
    assert "local1" == custody.rotating().active_key_id


def test_postgres_without_keys_turns_local_secrets_off(tmp_path: Path) -> None:
    custody, notes = custody_for(tmp_path, PRELOOP_DATABASE_URL="postgresql://db/preloop")
    assert [] == notes
    assert not (tmp_path / "data" / "secrets-key").exists()
    with pytest.raises(ConfigError, match="set PRELOOP_SECRETS_KEYS"):
        custody.backend("local")


def test_configured_keys_win_over_the_key_file(tmp_path: Path) -> None:
    custody, notes = custody_for(tmp_path, PRELOOP_SECRETS_KEYS=new_key_entry("prod-2026"))
    assert [] == notes
    assert "prod-2026" == custody.rotating().active_key_id


async def test_a_bad_key_setting_stops_the_hub_with_a_clear_error(tmp_path: Path) -> None:
    bad = "k1:" + "A" * 10
    with pytest.raises(ConfigError, match="PRELOOP_SECRETS_KEYS: key 'k1'") as caught:
        await open_hub(settings_for(tmp_path, PRELOOP_SECRETS_KEYS=bad))
    assert "A" * 10 not in str(caught.value)


async def test_the_start_notes_announce_a_generated_key(tmp_path: Path) -> None:
    hub = await open_hub(settings_for(tmp_path), storage=InMemoryStorage())
    try:
        assert any("secrets-key" in note for note in hub.notes)
    finally:
        await hub.close()


def test_runtime_tokens_are_redacted_from_free_text() -> None:
    token = "plrt_0123456789abcdef_" + "S" * 43
    assert token not in redact_text(f"agent sent {token} upstream")
