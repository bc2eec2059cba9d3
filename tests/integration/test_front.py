"""The front ``preloop serve`` runs (server/front.py): it answers ``/healthz`` before the rest
is loaded, requests arriving meanwhile wait for it, and ``/mcp`` reaches the gateway before
Litestar's routing with what Litestar did for it still done."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import server.front
from server.bootstrap import FIRST_KEY_FILE
from server.front import Front
from tests.integration.conftest import make_settings, serve_asgi
from tests.sqlite import copy_migrated

HEAVY = ("litestar", "mcp", "mcp_types", "pydantic", "aiohttp", "alembic")


def test_the_server_answers_healthz_without_the_web_framework_the_mcp_sdk_or_aiohttp(
    tmp_path: Path,
) -> None:
    # In a fresh interpreter: start the front (a restart: the database is migrated first) with
    # the background loads held, answer /healthz, and list what got imported.
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PRELOOP_DATA_DIR": str(tmp_path / "data"),
        "PRELOOP_ENV_FILE": str(tmp_path / "no.env"),
    }
    copy_migrated(tmp_path / "data" / "preloop.db")  # what `preloop db upgrade` leaves
    script = textwrap.dedent(
        f"""
        import asyncio, sys, threading
        from hub.settings import load_settings
        import server.front as front
        held = threading.Event()
        front._import_app = front._import_mcp = held.wait  # the background loads never end
        settings = load_settings()

        async def main():
            app = front.Front(settings)
            inbox = asyncio.Queue()
            sent = []
            async def send(message):
                sent.append(message)
            await inbox.put({{"type": "lifespan.startup"}})
            lifespan = asyncio.create_task(app({{"type": "lifespan"}}, inbox.get, send))
            while not sent:
                await asyncio.sleep(0.01)
            assert sent[0]["type"] == "lifespan.startup.complete", sent
            answer = []
            async def receive():
                return {{"type": "http.request", "body": b""}}
            async def respond(message):
                answer.append(message)
            scope = {{"type": "http", "method": "GET", "path": "/healthz", "headers": []}}
            await app(scope, receive, respond)
            assert answer[0]["status"] == 200, answer
            print(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r})))
            held.set()
            lifespan.cancel()
        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "[]" == done.stdout.strip().splitlines()[-1]


@pytest.fixture
def held_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The Litestar app's background load, held until the event is set."""
    release = threading.Event()
    load = server.front._import_app

    def held() -> Callable[..., Any]:
        release.wait(60)
        return load()

    monkeypatch.setattr(server.front, "_import_app", held)
    yield release
    release.set()


async def test_healthz_answers_while_the_app_loads_and_other_requests_wait_for_it(
    tmp_path: Path, held_app: threading.Event
) -> None:
    settings = make_settings(tmp_path)
    with serve_asgi(Front(settings), "the front") as url:
        key = (settings.data_path / FIRST_KEY_FILE).read_text().strip()
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            health = await client.get("/healthz")
            versions = asyncio.create_task(
                client.get("/api/v1/policies/versions", headers={"Authorization": f"Bearer {key}"})
            )
            mcp = await client.post("/mcp", json={})  # the gateway needs no Litestar app
            await asyncio.sleep(0.3)
            waited = not versions.done()
            held_app.set()
            answered = await versions
            after = await client.get("/healthz")  # now Litestar's

    assert (200, "ok") == (health.status_code, health.json()["status"])
    assert 401 == mcp.status_code  # no key: refused by the gateway itself
    assert waited
    assert (200, 1) == (answered.status_code, answered.json()[0]["version"])
    assert health.json() == after.json()


def test_an_unexpected_error_of_the_mcp_gateway_is_a_500_in_the_error_envelope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.mcp.endpoint import McpEndpoint

    seen: list[str] = []

    async def fails(self: McpEndpoint, scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        raise RuntimeError("boom")

    monkeypatch.setattr(McpEndpoint, "handle", fails)
    settings = make_settings(tmp_path)
    with serve_asgi(Front(settings), "the front") as url:
        answer = httpx.post(f"{url}/mcp", json={}, timeout=60)
        nested = httpx.post(f"{url}/mcp/x", json={}, timeout=60)

    expected = {
        "error": {
            "type": "InternalError",
            "title": "Internal error",
            "message": "an unexpected error happened; see the server log",
        }
    }
    assert (500, expected) == (answer.status_code, answer.json())
    assert 500 == nested.status_code
    assert ["/", "/x"] == seen  # the mount's remaining path, as Litestar gave it


def test_mcp_without_a_key_is_refused_in_the_envelope_and_a_bad_host_by_litestar(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    with serve_asgi(Front(settings), "the front") as url:
        refused = httpx.post(f"{url}/mcp", json={}, timeout=60)
        bad_host = httpx.post(f"{url}/mcp", json={}, headers={"host": "a b"}, timeout=60)

    assert 401 == refused.status_code
    assert "AuthenticationError" == refused.json()["error"]["type"]
    assert 400 == bad_host.status_code
    assert "Invalid host header" in bad_host.json()["error"]["message"]
