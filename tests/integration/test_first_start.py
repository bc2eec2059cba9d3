"""What a new installation and each start do: default account, first key, policy file."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import ConfigError
from hub.memory import InMemoryStorage
from server.bootstrap import FIRST_KEY_FILE, first_start, open_hub
from tests.integration.conftest import make_settings

POLICY = """version: "1.0"
metadata:
  name: from file
defaults:
  unknown_tools: deny
tools:
  - name: echo
"""


async def test_policy_file_is_applied_at_start_and_only_when_changed(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    settings = make_settings(tmp_path, PRELOOP_POLICY_FILE=str(policy))
    storage = InMemoryStorage()
    hub = await open_hub(settings, storage=storage)
    await first_start(hub)
    account = await hub.identity.default_account()
    versions = await hub.policies.history(account.id)
    assert [(v.version, v.name) for v in versions] == [(1, "from file")]

    restarted = await open_hub(settings, storage=storage)
    await first_start(restarted)
    assert len(await restarted.policies.history(account.id)) == 1
    assert "unchanged, version 1" in restarted.notes[-1]

    policy.write_text(POLICY.replace("name: echo", "name: echo\n    action: deny"))
    again = await open_hub(settings, storage=storage)
    await first_start(again)
    assert [v.version for v in await again.policies.history(account.id)] == [2, 1]


async def test_missing_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, PRELOOP_POLICY_FILE=str(tmp_path / "nope.yaml"))
    hub = await open_hub(settings, storage=InMemoryStorage())
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        await first_start(hub)


async def test_admin_key_setting_means_no_generated_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, PRELOOP_ADMIN_KEY="a" * 40)
    hub = await open_hub(settings, storage=InMemoryStorage())
    await first_start(hub)
    account = await hub.identity.default_account()
    assert list(await hub.storage.api_keys.list(account.id)) == []
    assert not (settings.data_path / FIRST_KEY_FILE).exists()


async def test_first_key_is_created_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    storage = InMemoryStorage()
    hub = await open_hub(settings, storage=storage)
    await first_start(hub)
    first = (settings.data_path / FIRST_KEY_FILE).read_text()
    await first_start(await open_hub(settings, storage=storage))
    account = await hub.identity.default_account()
    assert len(await storage.api_keys.list(account.id)) == 1
    assert (settings.data_path / FIRST_KEY_FILE).read_text() == first


async def test_cel_engine_setting_chooses_the_engine(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, PRELOOP_POLICY_CEL_ENGINE="cel-rust")
    hub = await open_hub(settings, storage=InMemoryStorage())
    await first_start(hub)
    account = await hub.identity.default_account()
    active = await hub.policies.active(account.id)
    assert active is not None
    assert active[1].engine.name == "cel-rust"
    with pytest.raises(ConfigError, match="PRELOOP_POLICY_CEL_ENGINE"):
        make_settings(tmp_path, PRELOOP_POLICY_CEL_ENGINE="cel-java")


@pytest.mark.parametrize(
    ("setting", "engine"),
    [(None, "cel-rust"), ("auto", "cel-rust"), ("cel-python", "cel-python")],
)
async def test_the_default_engine_is_cel_rust_and_cel_python_can_be_forced(
    tmp_path: Path, setting: str | None, engine: str
) -> None:
    env = {} if setting is None else {"PRELOOP_POLICY_CEL_ENGINE": setting}
    settings = make_settings(tmp_path, **env)
    hub = await open_hub(settings, storage=InMemoryStorage())
    await first_start(hub)
    account = await hub.identity.default_account()
    active = await hub.policies.active(account.id)

    assert active is not None
    assert engine == active[1].engine.name
