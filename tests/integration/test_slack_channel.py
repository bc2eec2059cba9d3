"""The Slack channel end to end: a local fake of Slack's Web API (there is no installable
Slack) records what the real slack_sdk client sends; the test plays Slack's side of the
callbacks, signing them as Slack does, against the real server on uvicorn, while a real MCP
agent waits for its call.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import SlackNotifier
from hub.clock import FrozenClock
from hub.errors import ConfigError
from hub.memory import InMemoryStorage
from hub.notifier import Notice
from hub.records import Account, ApprovalRequest, ApprovalStatus
from hub.settings import load_settings
from server.bootstrap import open_hub
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.fakes.slack import (
    BOT_TOKEN,
    CHANNEL_ID,
    SIGNING_SECRET,
    FakeSlack,
    click,
    signed,
)
from tests.integration.mcp.support import REPO, agent, eventually, raw_call, text_of
from tests.integration.who_decided import Decider, who_decided

SECRET_ARG = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"

POLICY = """\
version: "1.0"
metadata: {name: slack test}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
approval_workflows:
  - name: by-slack
    timeout_seconds: 120
    approvers: ["user:ada@example.com", "user:vi@example.com"]
    channels: [slack]
    channel_settings: {slack: {channel: "#deploys"}}
tools:
  - name: echo
    server: demo
    action: require_approval
    approval_workflow: by-slack
    justification: optional
defaults:
  action: deny
  unknown_tools: deny
"""


@pytest.fixture
def slack_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_slack: tuple[FakeSlack, str]
) -> Iterator[LiveServer]:
    monkeypatch.chdir(REPO)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY % {"python": sys.executable})
    settings = make_settings(
        tmp_path,
        PRELOOP_POLICY_FILE=str(policy_file),
        PRELOOP_SLACK_BOT_TOKEN=BOT_TOKEN,
        PRELOOP_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        PRELOOP_SLACK_API_URL=fake_slack[1],
    )
    with run_live(settings) as live:
        yield live


async def _setup(live: LiveServer) -> tuple[str, dict[str, str]]:
    """ada (approver, Slack UADA), vi (a viewer, Slack UVI), and an agent key."""
    users: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        for email, role, slack in [
            ("ada@example.com", "approver", "UADA"),
            ("vi@example.com", "viewer", "UVI"),
        ]:
            added = await http.post("/api/v1/users/", json={"email": email})
            assert added.status_code == 201, added.text
            users[email] = added.json()["id"]
            key = await http.post(
                "/api/v1/keys/",
                json={"name": email.split("@")[0], "role": role, "user_email": email},
            )
            assert key.status_code == 201, key.text
            linked = await http.post(f"/api/v1/users/{email}/link", json={"slack": slack})
            assert linked.status_code == 200, linked.text
        created = await http.post("/api/v1/keys/", json={"name": "agent", "role": "agent"})
        assert created.status_code == 201, created.text
    return created.json()["secret"], users


async def _post(live: LiveServer, body: str, **sign: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as slack:
        return await slack.post(
            f"{live.url}/slack/events", content=body, headers=signed(body, **sign)
        )


async def _status(live: LiveServer, request_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        got = await http.get(f"/api/v1/approvals/{request_id}")
    assert got.status_code == 200, got.text
    request: dict[str, Any] = got.json()["request"]
    return request


async def _posted(fake: FakeSlack, count: int = 1) -> dict[str, Any]:
    async def message() -> dict[str, Any] | None:
        posted = fake.made("chat.postMessage")
        return posted[count - 1] if len(posted) >= count else None

    return await eventually(message)


def _buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    blocks = message["blocks"]
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1
    return {e["text"]["text"]: e for e in actions[0]["elements"]}


def _refusals(fake: FakeSlack, user: str) -> list[str]:
    return [str(e["text"]) for e in fake.made("chat.postEphemeral") if e["user"] == user]


async def test_a_signed_click_approves_forgeries_and_others_change_nothing(
    slack_server: LiveServer, fake_slack: tuple[FakeSlack, str]
) -> None:
    fake = fake_slack[0]
    agent_key, _users = await _setup(slack_server)
    async with agent(slack_server, agent_key, "auto") as client:
        waiting = asyncio.create_task(
            raw_call(client, "demo__echo", {"text": SECRET_ARG, "justification": "release notes"})
        )
        message = await _posted(fake)
        assert "#deploys" == message["channel"]
        rendered = json.dumps(message)
        for shown in ("echo", "demo", "release notes", "[REDACTED]", "<@UADA>", "<@UVI>"):
            assert shown in rendered
        assert SECRET_ARG not in rendered
        buttons = _buttons(message)
        approve, deny = buttons["Approve"], buttons["Deny"]
        request_id = approve["action_id"].removeprefix("preloop_approve:")
        assert request_id.startswith("apr_")
        assert "preloop_deny:" + request_id == deny["action_id"]
        account = approve["value"]
        ada_click = click("UADA", approve["action_id"], account)

        # A forged signature, and a correctly signed but stale request: 401, nothing changes.
        forged = await _post(slack_server, ada_click, secret="not-the-signing-secret")
        assert 401 == forged.status_code
        stale = await _post(slack_server, ada_click, age=6 * 60)
        assert 401 == stale.status_code
        assert "pending" == (await _status(slack_server, request_id))["status"]

        # A linked viewer and an unlinked Slack user: an ephemeral refusal, nothing changes.
        for user in ("UVI", "UNOBODY"):
            answer = await _post(slack_server, click(user, approve["action_id"], account))
            assert 200 == answer.status_code
            refusals = _refusals(fake, user)
            assert len(refusals) == 1
            assert refusals[0].startswith("Refused")
        assert "not linked" in _refusals(fake, "UNOBODY")[0]
        assert "pending" == (await _status(slack_server, request_id))["status"]
        assert not waiting.done()
        assert [] == fake.made("chat.update")

        # ada's signed click approves; the agent gets its result; the message says so.
        approved = await _post(slack_server, ada_click)
        assert 200 == approved.status_code
        async with asyncio.timeout(30):
            result = await waiting
        assert SECRET_ARG == text_of(result)
        decided = await _status(slack_server, request_id)
        assert "approved" == decided["status"]
        admin = {"Authorization": f"Bearer {slack_server.admin_key}"}
        async with httpx.AsyncClient(base_url=slack_server.url, headers=admin) as http:
            assert Decider(_users["ada@example.com"], "ada@example.com", "slack:UADA") == (
                await who_decided(http, request_id)
            )

        async def updated() -> dict[str, Any] | None:
            done = fake.made("chat.update")
            return done[0] if done else None

        update = await eventually(updated)
        assert (CHANNEL_ID, "1700000000.000001") == (update["channel"], update["ts"])
        assert "approved" in update["text"]
        assert "ada@example.com" in update["text"]
        assert "actions" not in json.dumps(update["blocks"])

        # A late click on the decided request is refused too.
        await _post(slack_server, click("UADA", deny["action_id"], account))
        assert _refusals(fake, "UADA")
        assert [] == fake.made("views.open")


async def test_deny_through_the_modal_and_no_self_approval(
    slack_server: LiveServer, fake_slack: tuple[FakeSlack, str]
) -> None:
    fake = fake_slack[0]
    _agent_key, _users = await _setup(slack_server)
    headers = {"Authorization": f"Bearer {slack_server.admin_key}"}
    async with httpx.AsyncClient(base_url=slack_server.url, headers=headers) as http:
        owned = await http.post(
            "/api/v1/keys/",
            json={"name": "ada-agent", "role": "agent", "user_email": "ada@example.com"},
        )
    assert owned.status_code == 201, owned.text
    async with agent(slack_server, owned.json()["secret"], "auto") as client:
        waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": "own"}))
        buttons = _buttons(await _posted(fake))
        request_id = buttons["Approve"]["action_id"].removeprefix("preloop_approve:")
        account = buttons["Approve"]["value"]

        # ada's own agent asked: ada may never decide it, by either button.
        for name in ("Approve", "Deny"):
            answer = await _post(slack_server, click("UADA", buttons[name]["action_id"], account))
            assert 200 == answer.status_code
        refusals = _refusals(fake, "UADA")
        assert len(refusals) == 2
        assert all("never decide" in r for r in refusals)
        assert [] == fake.made("views.open")
        assert "pending" == (await _status(slack_server, request_id))["status"]
        waiting.cancel()

    # Another agent's call: ada denies it through the modal, with a reason.
    async with httpx.AsyncClient(base_url=slack_server.url, headers=headers) as http:
        other = await http.post("/api/v1/keys/", json={"name": "other", "role": "agent"})
    async with agent(slack_server, other.json()["secret"], "auto") as client:
        waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": "deny me"}))
        buttons = _buttons(await _posted(fake, 2))
        request_id = buttons["Deny"]["action_id"].removeprefix("preloop_deny:")
        await _post(slack_server, click("UADA", buttons["Deny"]["action_id"], account))
        opened = fake.made("views.open")
        assert len(opened) == 1
        assert "trigger-UADA" == opened[0]["trigger_id"]
        view = opened[0]["view"]
        view = json.loads(view) if isinstance(view, str) else view
        assert "pending" == (await _status(slack_server, request_id))["status"]

        submission = {
            "type": "view_submission",
            "team": {"id": "T1"},
            "user": {"id": "UADA"},
            "api_app_id": "A1",
            "view": {
                "id": "V1",
                "type": "modal",
                "callback_id": view["callback_id"],
                "private_metadata": view["private_metadata"],
                "state": {
                    "values": {
                        "reason": {
                            "reason_input": {"type": "plain_text_input", "value": "not on a Friday"}
                        }
                    }
                },
            },
        }
        body = urlencode({"payload": json.dumps(submission)})
        # Forged: nothing changes.
        assert 401 == (await _post(slack_server, body, secret="wrong")).status_code
        assert "pending" == (await _status(slack_server, request_id))["status"]
        # A viewer submitting the same form: refused in the modal, nothing changes.
        viewer = json.loads(json.dumps(submission))
        viewer["user"]["id"] = "UVI"
        refused = await _post(slack_server, urlencode({"payload": json.dumps(viewer)}))
        assert 200 == refused.status_code
        assert "errors" == refused.json()["response_action"]
        assert "pending" == (await _status(slack_server, request_id))["status"]

        submitted = await _post(slack_server, body)
        assert 200 == submitted.status_code
        async with asyncio.timeout(30):
            result = await waiting
        assert result.get("isError") is True
        decided = await _status(slack_server, request_id)
        assert ("denied", "not on a Friday") == (decided["status"], decided["comment"])

        async def updated() -> dict[str, Any] | None:
            done = [u for u in fake.made("chat.update") if "denied" in u["text"]]
            return done[0] if done else None

        update = await eventually(updated)
        assert "not on a Friday" in update["text"]
        assert "ada@example.com" in update["text"]


async def test_the_preloop_command_lists_the_pending_requests_the_user_may_decide(
    slack_server: LiveServer, fake_slack: tuple[FakeSlack, str]
) -> None:
    fake = fake_slack[0]
    agent_key, _users = await _setup(slack_server)
    await _approver_not_in_the_workflow(slack_server, "bo@example.com", slack="UBO")
    async with agent(slack_server, agent_key, "auto") as client:
        waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": "listed"}))
        buttons = _buttons(await _posted(fake))
        request_id = buttons["Approve"]["action_id"].removeprefix("preloop_approve:")
        command = {
            "command": "/preloop",
            "text": "",
            "team_id": "T1",
            "channel_id": CHANNEL_ID,
            "trigger_id": "t1",
            "response_url": "https://hooks.slack.invalid/1",
        }

        async def preloop(slack_user: str) -> str:
            answer = await _post(slack_server, urlencode(command | {"user_id": slack_user}))
            assert 200 == answer.status_code, answer.text
            assert "ephemeral" == answer.json()["response_type"]
            text: str = answer.json()["text"]
            return text

        listed = await preloop("UADA")  # a listed approver
        assert request_id in listed
        assert "other pending" not in listed
        for cannot in ("UBO", "UVI"):  # an approver the workflow does not list; a viewer
            refused = await preloop(cannot)
            assert request_id not in refused
            assert "Nothing pending that you may decide." in refused
            assert "1 other pending request you may not decide." in refused
        unknown = await _post(slack_server, urlencode(command | {"user_id": "UNOBODY"}))
        assert request_id not in unknown.text
        assert "not linked" in unknown.text
        waiting.cancel()


async def _approver_not_in_the_workflow(live: LiveServer, email: str, *, slack: str) -> None:
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        added = await http.post("/api/v1/users/", json={"email": email})
        assert added.status_code == 201, added.text
        key = await http.post(
            "/api/v1/keys/", json={"name": "bo", "role": "approver", "user_email": email}
        )
        assert key.status_code == 201, key.text
        linked = await http.post(f"/api/v1/users/{email}/link", json={"slack": slack})
        assert linked.status_code == 200, linked.text


async def test_a_bot_token_without_a_signing_secret_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        {"PRELOOP_SLACK_BOT_TOKEN": BOT_TOKEN, "PRELOOP_DATA_DIR": str(tmp_path)},
        env_file=tmp_path / "none",
    )
    with pytest.raises(ConfigError, match="PRELOOP_SLACK_SIGNING_SECRET"):
        await open_hub(settings, storage=InMemoryStorage())


async def test_a_new_process_updates_the_messages_an_earlier_one_posted(
    fake_slack: tuple[FakeSlack, str],
) -> None:
    fake, api_url = fake_slack
    storage = InMemoryStorage()
    clock = FrozenClock(datetime(2026, 11, 24, 6, 0, tzinfo=UTC))
    await storage.accounts.add(Account(id="acct_1", name="acme", created_at=clock.now()))
    request = ApprovalRequest(
        id="apr_1",
        account_id="acct_1",
        principal_key_id="key_1",
        server="demo",
        tool="echo",
        args_digest="d",
        policy_version=1,
        workflow="by-slack",
        created_at=clock.now(),
    )

    def notifier() -> SlackNotifier:  # a fresh one each time: nothing kept in the process
        return SlackNotifier(
            AsyncWebClient(token=BOT_TOKEN, base_url=api_url),
            default_channel="#fallback",
            users=storage.users,
            messages=storage.channel_messages,
            clock=clock,
        )

    await notifier().deliver(Notice(request=request, recipients=()))
    await notifier().deliver(Notice(request=request, recipients=(), escalation=True))
    assert ["#fallback", "#fallback"] == [m["channel"] for m in fake.made("chat.postMessage")]
    decided = msgspec.structs.replace(
        request, status=ApprovalStatus.APPROVED, decided_at=clock.now(), decided_by="key_9"
    )
    await notifier().settle(decided)
    updates = fake.made("chat.update")
    assert ["1700000000.000001", "1700000000.000002"] == [u["ts"] for u in updates]
    assert all("approved* by key_9" in u["text"] for u in updates)


@pytest.mark.parametrize("form", [False, True])
async def test_a_body_nested_too_deeply_is_a_400_not_a_500(
    slack_server: LiveServer, form: bool
) -> None:
    """bolt parses the body before it checks the signature: a RecursionError there, from
    anyone, was a 500."""
    deep = "[" * 5000 + "]" * 5000
    body = urlencode({"payload": deep}) if form else deep
    headers = signed(body, secret="not-the-signing-secret")
    if not form:
        headers["Content-Type"] = "application/json"
    async with httpx.AsyncClient(timeout=30) as anyone:
        answer = await anyone.post(
            f"{slack_server.url}/slack/events", content=body, headers=headers
        )
    assert 400 == answer.status_code, answer.text
    assert "nested too deeply" in answer.text
