"""``preloop bots``, the worker, as a real subprocess: Slack Socket Mode against the local
fake of Slack (its WebSocket carries the envelopes the test pushes), delivery from the worker
while the servers only take callbacks, and the configurations it refuses to start with.

On PostgreSQL (the worker's home) two ``preloop serve`` replicas and one worker share one
database: a call held on A is approved through B's ``/slack/events``; A's agent gets its
result through LISTEN/NOTIFY (heartbeat set to an hour: the event wakes it, not a re-read).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from bots.slack import DENY_VIEW
from hub.memory import InMemoryStorage
from server.app import create_app
from server.bootstrap import open_hub
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.fakes.slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    block_actions,
    click,
    signed,
    slash_command,
)
from tests.integration.mcp.support import REPO, agent, eventually, raw_call, text_of
from tests.integration.replicas import bots_worker, preloop_env, serve_replica
from tests.integration.test_slack_channel import POLICY, _setup

SAID = "shipped through the socket"


async def _posted(fake: FakeSlack) -> dict[str, Any]:
    async def message() -> dict[str, Any] | None:
        posted = fake.made("chat.postMessage")
        return posted[0] if posted else None

    return await eventually(message)


async def _updated(fake: FakeSlack) -> dict[str, Any]:
    async def update() -> dict[str, Any] | None:
        done = fake.made("chat.update")
        return done[0] if done else None

    return await eventually(update)


def _approve_button(message: dict[str, Any]) -> dict[str, Any]:
    blocks = message["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    button: dict[str, Any] = actions["elements"][0]
    assert "Approve" == button["text"]["text"]
    return button


async def _ack(fake: FakeSlack, envelope_id: str) -> dict[str, Any]:
    async def acked() -> dict[str, Any] | None:
        return fake.ack_of(envelope_id)

    return await eventually(acked)


def _deny_submission(user: str) -> dict[str, Any]:
    """The Deny dialog submitted with metadata that names no request."""
    return {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": user},
        "api_app_id": "A1",
        "trigger_id": f"trigger-{user}",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": DENY_VIEW,
            "private_metadata": "{}",
            "state": {"values": {"reason": {"reason_input": {"value": "no"}}}},
        },
    }


async def _status(live: LiveServer, request_id: str) -> str:
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        got = await http.get(f"/api/v1/approvals/{request_id}")
    assert got.status_code == 200, got.text
    status: str = got.json()["request"]["status"]
    return status


async def test_socket_mode_in_the_worker_approves_a_call_held_by_the_server(
    tmp_path: Path, fake_slack: tuple[FakeSlack, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Server and worker on one SQLite file: the server posts the message; clicks reach the
    worker over its Socket Mode connection (no signing secret there: the app token is the
    proof); the held call wakes at its next heartbeat (SQLite: events stay in-process)."""
    fake, api_url = fake_slack
    monkeypatch.chdir(REPO)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % {"python": sys.executable})
    slack = {"PRELOOP_SLACK_BOT_TOKEN": BOT_TOKEN, "PRELOOP_SLACK_API_URL": api_url}
    settings = make_settings(
        tmp_path,
        PRELOOP_POLICY_FILE=str(policy),
        PRELOOP_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        PRELOOP_MCP_APPROVAL_HEARTBEAT_SECONDS="1",
        **slack,
    )
    with (
        run_live(settings) as live,
        bots_worker(
            tmp_path / "worker",
            settings.database_url,
            cwd=REPO,
            PRELOOP_DATA_DIR=str(settings.data_path),  # the server's SQLite file
            PRELOOP_SLACK_APP_TOKEN=APP_TOKEN,
            **slack,
        ) as worker,
    ):
        assert "Slack Socket Mode: on" in worker.text
        assert "delivering notices on: slack" in worker.text
        assert [APP_TOKEN] == fake.app_tokens
        assert 1 == fake.connected
        key, _users = await _setup(live)
        async with agent(live, key, "auto") as client:
            waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": SAID}))
            button = _approve_button(await _posted(fake))
            request_id = button["action_id"].removeprefix("preloop_approve:")
            action, account = button["action_id"], button["value"]

            # /preloop over the socket: the answer rides on the ack.
            listed = fake.push("slash_commands", slash_command("UADA"), accepts_payload=True)
            answer = (await _ack(fake, listed))["payload"]
            assert request_id in answer["text"]
            assert "ephemeral" == answer["response_type"]

            # Slack asks for a reconnection: a new URL, a new connection, the old one closed.
            fake.ask_to_reconnect()

            async def reconnected() -> bool | None:
                return (fake.opened, fake.connected) == (2, 1) or None

            await eventually(reconnected)
            assert [APP_TOKEN, APP_TOKEN] == fake.app_tokens

            # The Deny dialog's submission naming no request: the refusal rides on the ack.
            form = fake.push("interactive", _deny_submission("UADA"), accepts_payload=True)
            errors = (await _ack(fake, form))["payload"]
            assert "errors" == errors["response_action"]
            assert "Nothing was changed" in errors["errors"]["reason"]

            # An unlinked Slack user: acked, refused in an ephemeral message, nothing changes.
            refused = fake.push("interactive", block_actions("UNOBODY", action, account))
            assert {"envelope_id": refused} == await _ack(fake, refused)

            async def refusal() -> str | None:
                said = [e for e in fake.made("chat.postEphemeral") if e["user"] == "UNOBODY"]
                return str(said[0]["text"]) if said else None

            assert "not linked" in await eventually(refusal)
            assert "pending" == await _status(live, request_id)
            assert not waiting.done()

            # ada, linked and an approver: acked, the call runs, the worker updates the message.
            approved = fake.push("interactive", block_actions("UADA", action, account))
            assert {"envelope_id": approved} == await _ack(fake, approved)
            async with asyncio.timeout(30):
                result = await waiting
        assert SAID == text_of(result)
        assert "approved" == await _status(live, request_id)
        update = await _updated(fake)
        assert "approved" in update["text"]
        assert "ada@example.com" in update["text"]
        assert 1 == len(fake.made("chat.postMessage"))
    assert 0 == worker.returncode, worker.text  # SIGTERM: a clean stop
    assert "preloop bots stopped" in worker.text
    assert APP_TOKEN not in worker.text
    assert BOT_TOKEN not in worker.text


@pytest.mark.parametrize(
    ("env", "said"),
    [
        (
            {"PRELOOP_SLACK_APP_TOKEN": APP_TOKEN},
            "PRELOOP_SLACK_APP_TOKEN is set but PRELOOP_SLACK_BOT_TOKEN is not",
        ),
        (
            {"PRELOOP_SLACK_BOT_TOKEN": BOT_TOKEN, "PRELOOP_SLACK_APP_TOKEN": "xoxb-wrong-kind"},
            "PRELOOP_SLACK_APP_TOKEN is not an app-level token",
        ),
        ({"PRELOOP_SLACK_BOT_TOKEN": BOT_TOKEN}, "neither PRELOOP_SLACK_SIGNING_SECRET"),
        ({}, "preloop bots has nothing to run"),
    ],
)
def test_the_worker_refuses_a_bad_configuration(
    tmp_path: Path, env: dict[str, str], said: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", "bots"],
        env=preloop_env(tmp_path, "", **env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 1 == done.returncode, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    assert said in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()  # refused before opening anything


def test_the_worker_stops_when_slack_refuses_its_app_token(
    tmp_path: Path, fake_slack: tuple[FakeSlack, str]
) -> None:
    fake, api_url = fake_slack
    env = {
        "PRELOOP_SLACK_BOT_TOKEN": BOT_TOKEN,
        "PRELOOP_SLACK_APP_TOKEN": "xapp-1-revoked",
        "PRELOOP_SLACK_API_URL": api_url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "server", "bots"],
        env=preloop_env(tmp_path, "", **env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 1 == done.returncode, done.stderr
    assert "error: Slack refused PRELOOP_SLACK_APP_TOKEN (apps.connections.open: invalid_auth)" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert ["xapp-1-revoked"] == fake.app_tokens
    assert 0 == fake.connected


def test_serve_refuses_to_leave_delivery_to_a_worker_on_sqlite(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "0"],
        env=preloop_env(tmp_path, "", PRELOOP_NOTIFICATIONS_DELIVER="worker"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 1 == done.returncode, done.stderr
    assert "error: PRELOOP_NOTIFICATIONS_DELIVER=worker needs PostgreSQL" in done.stderr


@pytest.mark.postgres
async def test_two_replicas_and_a_worker_on_postgresql(
    tmp_path: Path, postgres_url: str, fake_slack: tuple[FakeSlack, str]
) -> None:
    """The issue's test: held on A, posted by the worker (the servers deliver nothing),
    approved through B's signed /slack/events, A's agent woken by the event."""
    fake, api_url = fake_slack
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % {"python": sys.executable})
    slack = {
        "PRELOOP_SLACK_BOT_TOKEN": BOT_TOKEN,
        "PRELOOP_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PRELOOP_SLACK_API_URL": api_url,
    }
    env = {
        **slack,
        "PRELOOP_POLICY_FILE": str(policy),
        "PRELOOP_NOTIFICATIONS_DELIVER": "worker",
        # No heartbeat re-reads the request within the test: only the event can wake A.
        "PRELOOP_MCP_APPROVAL_HEARTBEAT_SECONDS": "3600",
    }
    with serve_replica(tmp_path / "a", postgres_url, cwd=REPO, **env) as a:  # noqa: SIM117
        # B starts once A made the first admin key: one installation, two replicas.
        with (
            serve_replica(
                tmp_path / "b", postgres_url, cwd=REPO, admin_key=a.admin_key, **env
            ) as b,
            bots_worker(tmp_path / "w", postgres_url, cwd=REPO, **slack) as worker,
        ):
            assert "delivering notices on: slack" in worker.text
            assert "Slack Socket Mode: off" in worker.text
            key, _users = await _setup(a)
            async with agent(a, key, "auto") as client:
                waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": SAID}))
                button = _approve_button(await _posted(fake))
                request_id = button["action_id"].removeprefix("preloop_approve:")
                body = click("UADA", button["action_id"], button["value"])
                async with httpx.AsyncClient(timeout=30) as slack_side:
                    answer = await slack_side.post(
                        f"{b.url}/slack/events", content=body, headers=signed(body)
                    )
                assert 200 == answer.status_code, answer.text
                async with asyncio.timeout(30):  # the workflow's deadline is 120 s
                    result = await waiting
            assert SAID == text_of(result)
            assert "approved" == await _status(a, request_id)
            update = await _updated(fake)
            assert "approved" in update["text"]
            assert "ada@example.com" in update["text"]
            assert 1 == len(fake.made("chat.postMessage"))  # the worker's, and only it
    assert 0 == worker.returncode, worker.text


async def test_socket_mode_alone_needs_no_signing_secret_and_leaves_http_mode_off(
    tmp_path: Path, fake_slack: tuple[FakeSlack, str]
) -> None:
    """A server whose Slack clicks come over the worker's socket: it posts (bot token), and
    its /slack/events answers 404 (nothing there could verify a request)."""
    settings = make_settings(
        tmp_path,
        PRELOOP_SLACK_BOT_TOKEN=BOT_TOKEN,
        PRELOOP_SLACK_APP_TOKEN=APP_TOKEN,
        PRELOOP_SLACK_API_URL=fake_slack[1],
    )
    hub = await open_hub(settings, storage=InMemoryStorage())
    try:
        assert ["slack"] == hub.notifications.channels
        async with AsyncTestClient(app=create_app(settings, hub=hub)) as client:
            body = click("UADA", "preloop_approve:apr_1", "acct_1")
            answer = await client.post("/slack/events", content=body, headers=signed(body))
        assert 404 == answer.status_code
        assert "HTTP mode is off" in answer.text
    finally:
        await hub.close()
