"""The Mattermost channel end to end: the real mattermostdriver posts to a local fake of the
Mattermost REST API (uvicorn), the test clicks the post's buttons by sending Mattermost's
callback to the real server on uvicorn, while a real MCP agent waits for its call.

There is no installable Mattermost server: the fake answers ``GET /api/v4/users/me``,
``POST /api/v4/posts`` and ``PUT /api/v4/posts/{id}/patch`` and records what it received.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest

from bots.mattermost import ActionSigner, ActionToken
from hub.links import DecisionLink, LinkSigner, new_link_id
from hub.notifier import Notice
from hub.records import ApprovalRequest, ApprovalStatus
from server.bootstrap import LINK_SECRET_FILE, open_hub
from tests.integration.conftest import Api, LiveServer, make_settings, run_live
from tests.integration.fakes.mattermost import FakeMattermost
from tests.integration.mcp.support import (
    REPO,
    agent,
    approval_status,
    eventually,
    raw_call,
    text_of,
)
from tests.integration.replicas import serve_replica
from tests.integration.who_decided import Decider, who_decided

BOT_TOKEN = "mm-bot-token-" + "x" * 20
SECRET_ARG = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"

POLICY = """\
version: "1.0"
metadata: {name: mattermost test}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
approval_workflows:
  - name: by-chat
    timeout_seconds: 120
    approvers: ["user:ada@example.com", "user:bo@example.com"]
    channels: [mattermost]
    channel_settings: {mattermost: {channel: "chan-deploys"}}
  - name: two-of-chat
    timeout_seconds: 120
    approvers: ["user:ada@example.com", "user:bo@example.com"]
    required_approvals: 2
    channels: [mattermost]
tools:
  - name: add
    server: demo
    action: require_approval
    approval_workflow: two-of-chat
  - name: echo
    server: demo
    action: require_approval
    approval_workflow: by-chat
    justification: optional
defaults:
  action: deny
  unknown_tools: deny
"""


@pytest.fixture
def mm_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mattermost: tuple[FakeMattermost, str]
) -> Iterator[LiveServer]:
    monkeypatch.chdir(REPO)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY % {"python": sys.executable})
    settings = make_settings(
        tmp_path,
        PRELOOP_POLICY_FILE=str(policy_file),
        PRELOOP_MATTERMOST_URL=mattermost[1],
        PRELOOP_MATTERMOST_TOKEN=BOT_TOKEN,
        PRELOOP_MATTERMOST_CHANNEL_ID="chan-default",
        PRELOOP_SERVER_PUBLIC_URL="https://preloop.example",
    )
    with run_live(settings) as live:
        yield live


async def _setup(live: LiveServer) -> tuple[str, dict[str, str]]:
    """ada (approver, linked as mm-ada), bo (approver, not linked), the agent's key."""
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    users: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        for email in ("ada@example.com", "bo@example.com"):
            added = await http.post("/api/v1/users/", json={"email": email})
            assert added.status_code == 201, added.text
            users[email] = added.json()["id"]
            key = await http.post(
                "/api/v1/keys/",
                json={"name": email.split("@")[0], "role": "approver", "user_email": email},
            )
            assert key.status_code == 201, key.text
        linked = await http.post(
            "/api/v1/users/ada@example.com/link", json={"mattermost": "mm-ada"}
        )
        assert linked.status_code == 200, linked.text
        created = await http.post("/api/v1/keys/", json={"name": "agent", "role": "agent"})
        assert created.status_code == 201, created.text
    return created.json()["secret"], users


def _buttons(post_body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    actions = post_body["props"]["attachments"][0]["actions"]
    return {a["id"]: a for a in actions}


async def _click(
    live: LiveServer, button: dict[str, Any], user_id: str, **context: Any
) -> httpx.Response:
    """Mattermost's callback for a click, sent to the live server (the URL's path on it)."""
    integration = button["integration"]
    assert integration["url"] == "https://preloop.example/mattermost/actions"
    body = {
        "user_id": user_id,
        "user_name": "someone",
        "channel_id": "chan-deploys",
        "post_id": "post1",
        "context": {**integration["context"], **context},
    }
    async with httpx.AsyncClient(timeout=30) as chat:  # no API key: the token is the proof
        return await chat.post(live.url + urlsplit(integration["url"]).path, json=body)


async def test_a_linked_approver_clicks_approve_and_the_waiting_call_runs(
    mm_server: LiveServer, mattermost: tuple[FakeMattermost, str]
) -> None:
    fake = mattermost[0]
    agent_key, users = await _setup(mm_server)
    admin = {"Authorization": f"Bearer {mm_server.admin_key}"}
    async with (
        agent(mm_server, agent_key, "auto") as client,
        httpx.AsyncClient(base_url=mm_server.url, headers=admin, timeout=30) as http,
    ):
        waiting = asyncio.create_task(
            raw_call(client, "demo__echo", {"text": SECRET_ARG, "justification": "release notes"})
        )

        async def one_post() -> dict[str, Any] | None:
            got = fake.created()
            return got[0] if got else None

        posted = await eventually(one_post)
        pending = (await http.get("/api/v1/approvals/", params={"status": "pending"})).json()
        request_id = pending[0]["id"]
        assert not waiting.done()

        # The post: the workflow's channel, the call's details, two buttons, no secrets.
        assert "chan-deploys" == posted["channel_id"]
        assert "demo/echo" in posted["message"]
        text = posted["props"]["attachments"][0]["text"]
        for shown in (request_id, "release notes", "[REDACTED]"):
            assert shown in text
        buttons = _buttons(posted)
        assert {"approve", "deny"} == set(buttons)
        context = buttons["approve"]["integration"]["context"]
        assert (request_id, "approve") == (context["request_id"], context["action"])
        assert context["token"] != buttons["deny"]["integration"]["context"]["token"]
        link_secret = (mm_server.settings.data_path / LINK_SECRET_FILE).read_text().strip()
        everything = repr(fake.requests)
        for secret in (SECRET_ARG, link_secret, mm_server.admin_key, agent_key):
            assert secret not in everything
        # The real driver logged in with the bot token.
        assert ("GET", "/api/v4/users/me", f"Bearer {BOT_TOKEN}") == fake.requests[0][:3]

        # Refusals: each one changes nothing.
        token = context["token"]
        tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
        refused = await _click(mm_server, buttons["approve"], "mm-ada", token=tampered)
        assert 403 == refused.status_code
        assert "not valid" in refused.json()["ephemeral_text"]
        # The deny button's token does not approve, whatever the context claims.
        swapped = buttons["approve"]["integration"]["context"]["token"].split(".")[0] + (
            "." + buttons["deny"]["integration"]["context"]["token"].split(".")[1]
        )
        assert (
            403
            == (await _click(mm_server, buttons["approve"], "mm-ada", token=swapped)).status_code
        )
        # An email link is no Mattermost token (same secret, another key); nor is nothing.
        email_link = LinkSigner(link_secret).sign(
            DecisionLink(
                id=new_link_id(),
                account_id=pending[0]["account_id"],
                request_id=request_id,
                user_id=users["ada@example.com"],
                choice="approve",
                expires_at=int((datetime.now(UTC) + timedelta(hours=1)).timestamp()),
            )
        )
        for foreign in (email_link, ""):
            answer = await _click(mm_server, buttons["approve"], "mm-ada", token=foreign)
            assert 403 == answer.status_code
        # A genuine but expired button.
        expired = ActionSigner(link_secret).sign(
            ActionToken(
                account_id=pending[0]["account_id"],
                request_id=request_id,
                action="approve",
                expires_at=int((datetime.now(UTC) - timedelta(seconds=1)).timestamp()),
            )
        )
        late_button = await _click(mm_server, buttons["approve"], "mm-ada", token=expired)
        assert 200 == late_button.status_code
        assert "expired" in late_button.json()["ephemeral_text"]
        unlinked = await _click(mm_server, buttons["approve"], "mm-stranger")
        assert 200 == unlinked.status_code
        assert "not linked" in unlinked.json()["ephemeral_text"]
        assert "update" not in unlinked.json()
        assert "pending" == await approval_status(http, request_id)
        assert not waiting.done()
        assert [] == fake.patches()

        # ada approves from Mattermost: the call runs, the post is rewritten without buttons.
        approved = await _click(mm_server, buttons["approve"], "mm-ada")
        assert 200 == approved.status_code, approved.text
        update = approved.json()["update"]
        assert "Approved" in update["message"]
        assert "ada@example.com" in update["message"]
        assert [] == update["props"]["attachments"][0]["actions"]
        async with asyncio.timeout(30):
            result = await waiting
        assert SECRET_ARG == text_of(result)
        assert "approved" == await approval_status(http, request_id)

        async def settled() -> list[tuple[str, dict[str, Any]]] | None:
            return fake.patches() or None

        path, patched = (await eventually(settled))[0]
        assert "/api/v4/posts/post1/patch" == path
        assert "ada@example.com" in patched["message"]
        assert "approved" in patched["props"]["attachments"][0]["text"]
        assert [] == patched["props"]["attachments"][0]["actions"]

        # A late click on the old post changes nothing.
        late = await _click(mm_server, buttons["deny"], "mm-ada")
        assert 200 == late.status_code
        assert "Nothing was changed" in late.json()["ephemeral_text"]
        assert "approved" == await approval_status(http, request_id)

        votes = (
            await http.get("/api/v1/audit/", params={"kind": "approval.voted", "order": "oldest"})
        ).json()
        assert [("mattermost", users["ada@example.com"])] == [
            (v["data"]["channel"], v["actor"]) for v in votes
        ]
        assert Decider(users["ada@example.com"], "ada@example.com", "mattermost:mm-ada") == (
            await who_decided(http, request_id)
        )


async def test_the_agents_own_user_may_not_approve_from_mattermost(
    mm_server: LiveServer, mattermost: tuple[FakeMattermost, str]
) -> None:
    fake = mattermost[0]
    _agent_key, _users = await _setup(mm_server)
    admin = {"Authorization": f"Bearer {mm_server.admin_key}"}
    async with httpx.AsyncClient(base_url=mm_server.url, headers=admin, timeout=30) as http:
        owned = await http.post(
            "/api/v1/keys/",
            json={"name": "ada-agent", "role": "agent", "user_email": "ada@example.com"},
        )
        assert owned.status_code == 201, owned.text
        async with agent(mm_server, owned.json()["secret"], "auto") as client:
            waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": "own"}))

            async def one_post() -> dict[str, Any] | None:
                got = fake.created()
                return got[0] if got else None

            posted = await eventually(one_post)
            request_id = _buttons(posted)["approve"]["integration"]["context"]["request_id"]
            refused = await _click(mm_server, _buttons(posted)["approve"], "mm-ada")
            assert 200 == refused.status_code
            answer = refused.json()
            assert "never decide" in answer["ephemeral_text"]
            assert "update" not in answer
            assert "pending" == await approval_status(http, request_id)
            assert not waiting.done()
            assert [] == fake.patches()

            # Malformed callbacks are refused, never a 500.
            async with httpx.AsyncClient(base_url=mm_server.url, timeout=30) as chat:
                for body in (b"not json", b"[]", b'{"context": {}}', b'{"user_id": 1}'):
                    answer = await chat.post("/mattermost/actions", content=body)
                    assert 403 == answer.status_code, body
                    assert "not valid" in answer.json()["ephemeral_text"]
            assert "pending" == await approval_status(http, request_id)
            waiting.cancel()


async def test_a_quorum_waits_for_the_second_click(
    mm_server: LiveServer, mattermost: tuple[FakeMattermost, str]
) -> None:
    fake = mattermost[0]
    agent_key, _users = await _setup(mm_server)
    admin = {"Authorization": f"Bearer {mm_server.admin_key}"}
    async with (
        agent(mm_server, agent_key, "auto") as client,
        httpx.AsyncClient(base_url=mm_server.url, headers=admin, timeout=30) as http,
    ):
        linked = await http.post("/api/v1/users/bo@example.com/link", json={"mattermost": "mm-bo"})
        assert linked.status_code == 200, linked.text
        waiting = asyncio.create_task(raw_call(client, "demo__add", {"a": 2, "b": 3}))

        async def one_post() -> dict[str, Any] | None:
            got = fake.created()
            return got[0] if got else None

        posted = await eventually(one_post)
        assert "chan-default" == posted["channel_id"]  # the workflow names no channel
        buttons = _buttons(posted)
        request_id = buttons["approve"]["integration"]["context"]["request_id"]

        first = await _click(mm_server, buttons["approve"], "mm-ada")
        assert 200 == first.status_code, first.text
        assert "1 of 2" in first.json()["ephemeral_text"]
        assert "update" not in first.json()
        assert "pending" == await approval_status(http, request_id)
        assert not waiting.done()

        second = await _click(mm_server, buttons["approve"], "mm-bo")
        assert 200 == second.status_code, second.text
        assert "Approved" in second.json()["update"]["message"]
        async with asyncio.timeout(30):
            result = await waiting
        assert {"sum": 5} == result["structuredContent"]
        assert "approved" == await approval_status(http, request_id)


async def test_the_callback_answers_404_when_mattermost_is_not_configured(api: Api) -> None:
    answer = await api.client.post(
        "/mattermost/actions", json={"user_id": "mm-ada", "context": {"token": "x.y"}}
    )
    assert 404 == answer.status_code
    assert "not configured" in answer.json()["ephemeral_text"]


async def test_a_new_hub_on_the_same_database_updates_the_posts_an_earlier_one_made(
    tmp_path: Path, mattermost: tuple[FakeMattermost, str]
) -> None:
    fake, url = mattermost
    settings = make_settings(
        tmp_path,
        PRELOOP_MATTERMOST_URL=url,
        PRELOOP_MATTERMOST_TOKEN=BOT_TOKEN,
        PRELOOP_MATTERMOST_CHANNEL_ID="chan-default",
        PRELOOP_SERVER_PUBLIC_URL="https://preloop.example",
    )
    first = await open_hub(settings)  # SQLite in the data directory
    try:
        account = await first.identity.default_account()
        now = datetime.now(UTC)
        request = ApprovalRequest(
            id="apr_1",
            account_id=account.id,
            principal_key_id="key_1",
            server="demo",
            tool="echo",
            args_digest="d",
            policy_version=1,
            workflow="by-chat",
            created_at=now,
        )
        assert first.mattermost is not None
        await first.mattermost.deliver(Notice(request=request, recipients=()))
        await first.mattermost.deliver(Notice(request=request, recipients=(), escalation=True))
    finally:
        await first.close()
    assert 2 == len(fake.created())

    second = await open_hub(settings)  # a restart, or another replica: nothing in memory
    try:
        decided = msgspec.structs.replace(
            request, status=ApprovalStatus.APPROVED, decided_at=now, decided_by="key_9"
        )
        assert second.mattermost is not None
        await second.mattermost.settle(decided)
    finally:
        await second.close()

    patches = fake.patches()
    assert ["/api/v4/posts/post1/patch", "/api/v4/posts/post2/patch"] == [p for p, _ in patches]
    assert all(body["message"].startswith("**Approved**") for _, body in patches)
    assert all("by key_9" in body["message"] for _, body in patches)
    assert all([] == body["props"]["attachments"][0]["actions"] for _, body in patches)


@pytest.mark.postgres
async def test_two_replicas_post_and_rewrite_each_request_once(
    tmp_path: Path, postgres_url: str, mattermost: tuple[FakeMattermost, str]
) -> None:
    """Both replicas receive every event through PostgreSQL; the claims let one post."""
    fake, url = mattermost
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % {"python": sys.executable})
    env = {
        "PRELOOP_POLICY_FILE": str(policy),
        "PRELOOP_MATTERMOST_URL": url,
        "PRELOOP_MATTERMOST_TOKEN": BOT_TOKEN,
        "PRELOOP_SERVER_PUBLIC_URL": "https://preloop.example",
        "PRELOOP_NOTIFICATIONS_LINK_SECRET": "s" * 40,  # one secret for the replicas
    }
    with serve_replica(tmp_path / "a", postgres_url, cwd=REPO, **env) as a:  # noqa: SIM117
        with serve_replica(
            tmp_path / "b", postgres_url, cwd=REPO, admin_key=a.admin_key, **env
        ) as b:
            agent_key, ada_key = await _agent_and_approver(a)
            for round_ in (1, 2):  # a duplicate of round 1 would have come by the end of 2
                async with agent(a, agent_key, "auto") as client:
                    waiting = asyncio.create_task(
                        raw_call(client, "demo__echo", {"text": f"round {round_}"})
                    )
                    await eventually(lambda n=round_: _at_least(fake.created(), n))
                    async with httpx.AsyncClient(base_url=b.url, timeout=30) as on_b:
                        pending = await on_b.get(
                            "/api/v1/approvals/",
                            params={"status": "pending"},
                            headers={"Authorization": f"Bearer {ada_key}"},
                        )
                        assert pending.status_code == 200, pending.text
                        [request] = pending.json()
                        approved = await on_b.post(
                            f"/api/v1/approvals/{request['id']}/approve",
                            json={},
                            headers={"Authorization": f"Bearer {ada_key}"},
                        )
                    assert approved.status_code == 200, approved.text
                    async with asyncio.timeout(30):
                        result = await waiting
                    assert result.get("isError") in (None, False), result
                    await eventually(lambda n=round_: _at_least(fake.patches(), n))

    assert ["round 1", "round 2"] == [_round(post) for post in fake.created()]
    assert ["/api/v4/posts/post1/patch", "/api/v4/posts/post2/patch"] == [
        path for path, _ in fake.patches()
    ]


def _round(post: dict[str, Any]) -> str:
    text: str = post["props"]["attachments"][0]["text"]
    return "round 1" if "round 1" in text else "round 2" if "round 2" in text else text


async def _at_least(items: list[Any], count: int) -> bool | None:
    return True if len(items) >= count else None


async def _agent_and_approver(live: LiveServer) -> tuple[str, str]:
    """An agent key and ada's approver key (ada is one of the workflows' approvers)."""
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        added = await http.post("/api/v1/users/", json={"email": "ada@example.com"})
        assert added.status_code == 201, added.text
        keys = []
        for body in (
            {"name": "agent", "role": "agent"},
            {"name": "ada", "role": "approver", "user_email": "ada@example.com"},
        ):
            created = await http.post("/api/v1/keys/", json=body)
            assert created.status_code == 201, created.text
            keys.append(created.json()["secret"])
    return keys[0], keys[1]
