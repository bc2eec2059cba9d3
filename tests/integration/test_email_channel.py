"""The email channel end to end: a real SMTP server (aiosmtpd) receives the mail, the test
parses each recipient's links and follows them over HTTP against the real server on uvicorn,
while a real MCP agent waits for its call.

The live server listens on an ephemeral port, so ``PRELOOP_SERVER_PUBLIC_URL`` (built from
the configured port) cannot name it: links are followed with their path on the live URL.
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from hub.links import DecisionLink, LinkSigner, new_link_id
from server.bootstrap import LINK_SECRET_FILE, open_hub
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.fakes.mail import Mailbox
from tests.integration.mcp.support import (
    REPO,
    agent,
    approval_status,
    eventually,
    raw_call,
    text_of,
)
from tests.integration.who_decided import Decider, who_decided

SECRET_ARG = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # a GitHub-token-shaped value

POLICY = """\
version: "1.0"
metadata: {name: email test}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
approval_workflows:
  - name: by-email
    timeout_seconds: 120
    approvers: ["user:ada@example.com", "team:ops", "user:vi@example.com"]
    channels: [email]
tools:
  - name: echo
    server: demo
    action: require_approval
    approval_workflow: by-email
    justification: optional
defaults:
  action: deny
  unknown_tools: deny
"""


@contextmanager
def _serve(tmp_path: Path, smtp_port: int, **env: str) -> Iterator[LiveServer]:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY % {"python": sys.executable})
    settings = make_settings(
        tmp_path,
        PRELOOP_POLICY_FILE=str(policy_file),
        PRELOOP_SMTP_HOST="127.0.0.1",
        PRELOOP_SMTP_PORT=str(smtp_port),
        PRELOOP_SMTP_SECURITY="none",
        PRELOOP_SMTP_SENDER="approvals@preloop.example",
        PRELOOP_SERVER_PUBLIC_URL="https://preloop.example",
        **env,
    )
    with run_live(settings) as live:
        yield live


@pytest.fixture
def email_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mailbox: tuple[Mailbox, int]
) -> Iterator[LiveServer]:
    monkeypatch.chdir(REPO)
    with _serve(tmp_path, mailbox[1]) as live:
        yield live


class People:
    """ada and bo (approvers; bo through team ops), vi (listed but only a viewer), the agent."""

    def __init__(self, agent_key: str, keys: dict[str, str]) -> None:
        self.agent_key = agent_key
        self.keys = keys  # email -> that person's API key


async def _setup(live: LiveServer) -> tuple[People, dict[str, str]]:
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    users: dict[str, str] = {}
    keys: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        for email, role in [
            ("ada@example.com", "approver"),
            ("bo@example.com", "approver"),
            ("vi@example.com", "viewer"),
        ]:
            added = await http.post("/api/v1/users/", json={"email": email})
            assert added.status_code == 201, added.text
            users[email] = added.json()["id"]
            key = await http.post(
                "/api/v1/keys/",
                json={"name": email.split("@")[0], "role": role, "user_email": email},
            )
            assert key.status_code == 201, key.text
            keys[email] = key.json()["secret"]
        team = await http.post(
            "/api/v1/teams/", json={"name": "ops", "members": ["bo@example.com"]}
        )
        assert team.status_code == 201, team.text
        linked = await http.post(
            "/api/v1/users/ada@example.com/link", json={"email": "ada@mail.example"}
        )
        assert linked.status_code == 200, linked.text
        created = await http.post("/api/v1/keys/", json={"name": "agent", "role": "agent"})
        assert created.status_code == 201, created.text
    return People(created.json()["secret"], keys), users


def _parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _links(message: EmailMessage) -> dict[str, str]:
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    text = plain.get_content()
    found = dict(re.findall(r"^(Approve|Deny):\s+(\S+)", text, flags=re.MULTILINE))
    return {"approve": found["Approve"], "deny": found["Deny"]}


def _on(live: LiveServer, link: str) -> str:
    """The link's path on the live server (see the module docstring)."""
    assert link.startswith("https://preloop.example/email/links/")
    return live.url + urlsplit(link).path


async def test_an_email_link_approves_and_the_waiting_call_runs(
    email_server: LiveServer, mailbox: tuple[Mailbox, int]
) -> None:
    box = mailbox[0]
    people, _users = await _setup(email_server)
    admin = {"Authorization": f"Bearer {email_server.admin_key}"}
    async with (
        agent(email_server, people.agent_key, "auto") as client,
        httpx.AsyncClient(base_url=email_server.url, headers=admin, timeout=30) as http,
        httpx.AsyncClient(timeout=30) as browser,  # no API key: the link is the credential
    ):
        waiting = asyncio.create_task(
            raw_call(client, "demo__echo", {"text": SECRET_ARG, "justification": "release notes"})
        )

        async def three_mails() -> list[tuple[str, bytes]] | None:
            got = list(box.messages)
            return got if len(got) >= 3 else None

        received = await eventually(three_mails)
        assert {"ada@mail.example", "bo@example.com", "vi@example.com"} == {
            rcpt for rcpt, _ in received
        }
        mail = _parse(box.to("ada@mail.example")[0][1])
        request_id = re.search(r"\((apr_[^)]+)\)", str(mail["Subject"])).group(1)  # type: ignore[union-attr]
        assert not waiting.done()

        # The mail: plain text and HTML, the call's details, no secrets.
        assert "demo/echo" in str(mail["Subject"])
        assert "approvals@preloop.example" == str(mail["From"])
        html_part = mail.get_body(preferencelist=("html",))
        assert html_part is not None
        links = _links(mail)
        assert links["approve"] in html_part.get_content().replace("&amp;", "&")
        raw = box.to("ada@mail.example")[0][1].decode()
        link_secret = (email_server.settings.data_path / LINK_SECRET_FILE).read_text().strip()
        for secret in (SECRET_ARG, link_secret, email_server.admin_key, people.agent_key):
            assert secret not in raw
        assert "release notes" in raw
        assert "[REDACTED]" in raw
        bo_links = _links(_parse(box.to("bo@example.com")[0][1]))
        vi_links = _links(_parse(box.to("vi@example.com")[0][1]))
        assert bo_links["approve"] != links["approve"]  # per recipient

        # Tampered: refused with a page, nothing changes.
        tampered = links["approve"][:-3] + (
            "AAA" if not links["approve"].endswith("AAA") else "BBB"
        )
        for method in ("GET", "POST"):
            answer = await browser.request(method, _on(email_server, tampered))
            assert (403, "text/html") == (answer.status_code, answer.headers["content-type"][:9])
            assert "not valid" in answer.text
        swapped = links["approve"].split(".")[0] + "." + bo_links["approve"].split(".")[1]
        assert 403 == (await browser.post(_on(email_server, swapped))).status_code

        # A recipient who may not decide (a viewer): refused, nothing changes.
        refused = await browser.post(_on(email_server, vi_links["approve"]))
        assert 403 == refused.status_code
        assert "may not decide" in refused.text
        assert "pending" == await approval_status(http, request_id)

        # GET only shows the confirmation page (mail scanners follow links).
        page = await browser.get(_on(email_server, links["approve"]))
        assert 200 == page.status_code
        for shown in ("echo", "demo", "release notes", "Approve this call", "agent"):
            assert shown in page.text
        assert "no-store" == page.headers["cache-control"]
        assert "no-referrer" == page.headers["referrer-policy"]
        assert "pending" == await approval_status(http, request_id)
        assert not waiting.done()

        # The page's POST decides, as ada; the waiting call runs.
        approved = await browser.post(
            _on(email_server, links["approve"]), data={"comment": "ship it", "confirm": "yes"}
        )
        assert 200 == approved.status_code, approved.text
        assert "approved" in approved.text
        async with asyncio.timeout(30):
            result = await waiting
        assert SECRET_ARG == text_of(result)
        decided = (await http.get(f"/api/v1/approvals/{request_id}")).json()["request"]
        assert ("approved", "ship it") == (decided["status"], decided["comment"])

        # Replayed: refused, nothing changes; the other links cannot change it either.
        replay = await browser.post(_on(email_server, links["approve"]))
        assert 409 == replay.status_code
        assert "already used" in replay.text
        late = await browser.post(_on(email_server, bo_links["deny"]))
        assert 409 == late.status_code
        assert 409 == (await browser.get(_on(email_server, links["deny"]))).status_code
        assert "approved" == await approval_status(http, request_id)

        votes = (
            await http.get("/api/v1/audit/", params={"kind": "approval.voted", "order": "oldest"})
        ).json()
        assert [("email", _users["ada@example.com"])] == [
            (v["data"]["channel"], v["actor"]) for v in votes
        ]
        token = urlsplit(links["approve"]).path.rsplit("/", 1)[1]
        link_id = LinkSigner(link_secret).verify(token, datetime.now(UTC)).id
        assert Decider(_users["ada@example.com"], "ada@example.com", f"email:{link_id}") == (
            await who_decided(http, request_id)
        )


def _forged(live: LiveServer, **fields: Any) -> str:
    """A link signed with the server's own secret (as if mailed), with chosen fields."""
    secret = (live.settings.data_path / LINK_SECRET_FILE).read_text().strip()
    link = DecisionLink(
        **{
            "id": new_link_id(),
            "choice": "approve",
            "expires_at": int((datetime.now(UTC) + timedelta(hours=1)).timestamp()),
            **fields,
        }
    )
    return f"{live.url}/email/links/{LinkSigner(secret).sign(link)}"


async def test_expired_and_self_approval_links_change_nothing(
    email_server: LiveServer, mailbox: tuple[Mailbox, int]
) -> None:
    box = mailbox[0]
    people, users = await _setup(email_server)
    admin = {"Authorization": f"Bearer {email_server.admin_key}"}
    async with (
        agent(email_server, people.agent_key, "auto") as client,
        httpx.AsyncClient(base_url=email_server.url, headers=admin, timeout=30) as http,
        httpx.AsyncClient(timeout=30) as browser,
    ):
        waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": "hi"}))

        async def one_mail() -> bytes | None:
            got = box.to("ada@mail.example")
            return got[0][1] if got else None

        mail = _parse(await eventually(one_mail))
        request_id = re.search(r"\((apr_[^)]+)\)", str(mail["Subject"])).group(1)  # type: ignore[union-attr]
        account = (await http.get(f"/api/v1/approvals/{request_id}")).json()["request"][
            "account_id"
        ]
        common = {"account_id": account, "request_id": request_id}

        expired = _forged(
            email_server,
            **common,
            user_id=users["ada@example.com"],
            expires_at=int((datetime.now(UTC) - timedelta(seconds=1)).timestamp()),
        )
        for method in ("GET", "POST"):
            answer = await browser.request(method, expired)
            assert 410 == answer.status_code
            assert "expired" in answer.text

        # The agent key's owner may never decide the agent's call, even holding a link.
        async with httpx.AsyncClient(base_url=email_server.url, headers=admin) as setup:
            owned = await setup.post(
                "/api/v1/keys/",
                json={"name": "ada-agent", "role": "agent", "user_email": "ada@example.com"},
            )
        assert owned.status_code == 201
        async with agent(email_server, owned.json()["secret"], "auto") as own_client:
            own_call = asyncio.create_task(raw_call(own_client, "demo__echo", {"text": "own"}))

            async def own_request() -> str | None:
                pending = (
                    await http.get("/api/v1/approvals/", params={"status": "pending"})
                ).json()
                ids = [p["id"] for p in pending if p["id"] != request_id]
                return ids[0] if ids else None

            own_id = await eventually(own_request)
            own = _forged(
                email_server,
                account_id=account,
                request_id=own_id,
                user_id=users["ada@example.com"],
            )
            refused = await browser.post(own)
            assert 403 == refused.status_code
            assert "never decide" in refused.text
            assert "pending" == await approval_status(http, own_id)
            own_call.cancel()

        assert "pending" == await approval_status(http, request_id)
        assert not waiting.done()
        waiting.cancel()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens there now


async def test_smtp_down_is_retried_and_audited_and_the_request_still_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    with _serve(
        tmp_path,
        _closed_port(),
        PRELOOP_NOTIFICATIONS_ATTEMPTS="2",
        PRELOOP_NOTIFICATIONS_RETRY_SECONDS="0",
    ) as live:
        people, _users = await _setup(live)
        admin = {"Authorization": f"Bearer {live.admin_key}"}
        async with (
            agent(live, people.agent_key, "auto") as client,
            httpx.AsyncClient(base_url=live.url, headers=admin, timeout=30) as http,
        ):
            waiting = asyncio.create_task(raw_call(client, "demo__echo", {"text": "hi"}))

            async def final_failure() -> list[dict[str, Any]] | None:
                events = (
                    await http.get(
                        "/api/v1/audit/", params={"kind": "notification.failed", "order": "oldest"}
                    )
                ).json()
                done = [e["data"] for e in events if e["data"]["final"]]
                return [e["data"] for e in events] if done else None

            failures = await eventually(final_failure)
            assert [("email", "deliver", 1), ("email", "deliver", 2)] == [
                (f["channel"], f["operation"], f["attempt"]) for f in failures
            ]
            assert failures[0]["error"]
            assert not waiting.done()  # a channel failure never decides
            pending = (await http.get("/api/v1/approvals/", params={"status": "pending"})).json()
            approved = await http.post(
                f"/api/v1/approvals/{pending[0]['id']}/approve",
                json={},
                headers={"Authorization": f"Bearer {people.keys['ada@example.com']}"},
            )
            assert 200 == approved.status_code, approved.text
            async with asyncio.timeout(30):
                result = await waiting
            assert "hi" == text_of(result)


async def test_the_link_secret_is_made_once_and_kept(tmp_path: Path) -> None:

    settings = make_settings(tmp_path)
    first = await open_hub(settings)
    await first.close()
    path = settings.data_path / LINK_SECRET_FILE
    secret = path.read_text().strip()
    again = await open_hub(settings)
    await again.close()
    assert secret == path.read_text().strip()
    assert len(secret) >= 32
    assert 0o600 == path.stat().st_mode & 0o777
    token = again.links.sign(
        DecisionLink(
            id="lnk_1",
            account_id="a",
            request_id="r",
            user_id="u",
            choice="deny",
            expires_at=2**40,
        )
    )
    assert "deny" == LinkSigner(secret).verify(token, datetime.now(UTC)).choice
