"""Fixtures for tests that run the real server: in-process (Litestar's test client over an
in-memory or SQLite hub) and on a real uvicorn bound to 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import uvicorn
from litestar.testing import AsyncTestClient

from hub.clock import FrozenClock
from hub.memory import InMemoryStorage
from hub.records import Role
from hub.settings import Settings, load_settings
from server.app import create_app
from server.bootstrap import FIRST_KEY_FILE, first_start, open_hub
from server.front import Front
from server.hub_services import Hub
from tests.integration.fakes.mail import Mailbox, SmtpController
from tests.integration.fakes.mattermost import FakeMattermost
from tests.integration.fakes.slack import FakeSlack
from tests.sqlite import seed_data_directory


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's .env, profile or PRELOOP_* variable leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("PRELOOP_") and name != "PRELOOP_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PRELOOP_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def make_settings(tmp_path: Path, **env: str) -> Settings:
    """Settings with the data directory in ``tmp_path``; on the default SQLite database, that
    directory already holds a migrated copy of the template (tests/sqlite.py), so a server or
    hub started on it does not migrate (a restart on the same ``tmp_path`` keeps its data)."""
    base = {
        "PRELOOP_DATA_DIR": str(tmp_path / "data"),
        "HOME": str(tmp_path),
        # password hashes at the cheapest cost scrypt is run at (the default takes 0.4 s)
        "PRELOOP_AUTH_SCRYPT_LOG_N": "10",
    }
    settings = load_settings({**base, **env}, env_file=tmp_path / "no.env")
    seed_data_directory(settings)
    return settings


class Api(msgspec.Struct):
    client: AsyncTestClient  # type: ignore[type-arg]
    hub: Hub
    admin_key: str
    clock: FrozenClock

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin_key}"}

    async def key(self, role: Role, name: str = "test key") -> str:
        account = await self.hub.identity.default_account()
        created = await self.hub.identity.create_key(account.id, name=name, role=role, actor="test")
        return created.secret


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The app over an in-memory hub with a frozen clock, and an admin key."""
    settings = make_settings(tmp_path, PRELOOP_SERVER_MAX_BODY_BYTES="65536")
    clock = FrozenClock()
    hub = await open_hub(settings, clock=clock, storage=InMemoryStorage())
    await first_start(hub)
    admin_key = (settings.data_path / FIRST_KEY_FILE).read_text().strip()
    async with AsyncTestClient(app=create_app(settings, hub=hub)) as client:
        yield Api(client=client, hub=hub, admin_key=admin_key, clock=clock)
    await hub.close()


class LiveServer(msgspec.Struct):
    url: str
    admin_key: str
    settings: Settings


@contextmanager
def run_live(
    settings: Settings, on_ready: Callable[[Hub], Awaitable[None]] | None = None
) -> Iterator[LiveServer]:
    """The real app as ``preloop serve`` runs it (server/front.py) on uvicorn, 127.0.0.1, an
    ephemeral port (``on_ready``: see Front)."""
    with serve_asgi(Front(settings, on_ready=on_ready), "the test server") as url:
        key = (settings.data_path / FIRST_KEY_FILE).read_text().strip()
        yield LiveServer(url=url, admin_key=key, settings=settings)


@contextmanager
def serve_asgi(app: Any, what: str, *, lifespan: str = "on") -> Iterator[str]:
    """An ASGI app (the server, or a fake of Slack, Mattermost, a push proxy) on uvicorn in a
    thread, 127.0.0.1, an ephemeral port; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The real app on uvicorn, 127.0.0.1, an ephemeral port, SQLite in tmp_path."""
    with run_live(make_settings(tmp_path)) as server:
        yield server


@pytest.fixture
def fake_slack() -> Iterator[tuple[FakeSlack, str]]:
    fake = FakeSlack()
    with serve_asgi(fake, "the fake Slack", lifespan="off") as url:
        yield fake, f"{url}/api/"


@pytest.fixture
def mattermost() -> Iterator[tuple[FakeMattermost, str]]:
    fake = FakeMattermost()
    with serve_asgi(fake.app(), "the fake Mattermost") as url:
        yield fake, url


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = SmtpController(box, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()
