"""`preloop db upgrade` and the whole server on each database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient

from hub.errors import StorageError
from server.app import create_app
from server.bootstrap import FIRST_KEY_FILE
from server.cli.main import cli
from server.db import open_storage
from tests.integration.conftest import make_settings

SIMPLE = (
    'version: "1.0"\nmetadata: {name: s}\ndefaults: {unknown_tools: deny}\ntools: [{name: a}]\n'
)


async def _upgrade_then_open(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StorageError, match="preloop db upgrade"):
        await open_storage(url, migrate=False)
    monkeypatch.setenv("PRELOOP_DATABASE_URL", url)
    # The command runs its own event loop, as it does from a shell: give it a thread.
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["db", "upgrade"], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert "latest migration" in result.stderr
    storage = await open_storage(url, migrate=False)
    try:
        assert list(await storage.accounts.list()) == []
    finally:
        await storage.close()


async def test_db_upgrade_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await _upgrade_then_open(f"sqlite:///{tmp_path / 'new' / 'preloop.db'}", monkeypatch)


@pytest.mark.postgres
async def test_db_upgrade_postgres(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _upgrade_then_open(empty_postgres_url, monkeypatch)


async def _server_round(settings_env: dict[str, str], tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **settings_env)
    async with AsyncTestClient(app=create_app(settings)) as client:
        key = (settings.data_path / FIRST_KEY_FILE).read_text().strip()
        auth = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/healthz")).json()["status"] == "ok"
        applied = await client.post("/api/v1/policies/apply", json={"source": SIMPLE}, headers=auth)
        assert applied.json()["version"] == 2
        rolled = await client.post("/api/v1/policies/rollback", json={"version": 1}, headers=auth)
        assert rolled.json()["version"] == 3
        report = (await client.get("/api/v1/audit/verify", headers=auth)).json()
        assert report == {"ok": True, "events": 4, "problems": []}
    # A restart keeps everything and applies nothing new.
    async with AsyncTestClient(app=create_app(settings)) as client:
        versions = (await client.get("/api/v1/policies/versions", headers=auth)).json()
        assert [v["version"] for v in versions] == [3, 2, 1]


async def test_server_on_sqlite(tmp_path: Path) -> None:
    await _server_round({}, tmp_path)


@pytest.mark.postgres
async def test_server_on_postgres(empty_postgres_url: str, tmp_path: Path) -> None:
    await _server_round({"PRELOOP_DATABASE_URL": empty_postgres_url}, tmp_path)
