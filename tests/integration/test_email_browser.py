"""The email confirmation page in a real browser: headless Chromium opens the approve link a
real SMTP server (aiosmtpd) received, shows the call's details, and the click on its button
decides; the agent waiting on its call gets the result.

Chromium is driven through Playwright with the system's own binary (Debian's ``chromium``;
``.ci/run`` installs it): Playwright's browser downloads are never used. JavaScript is off in
the browser: the page must work as plain HTML, a form and a POST. Without a Chromium binary
the test skips, except on CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.fakes.mail import Mailbox
from tests.integration.mcp.support import REPO, agent, approval_status, eventually, raw_call

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ENV = "CHROME_PATH"  # an explicit binary wins over the PATH (chrome-launcher's name)

POLICY = """\
version: "1.0"
metadata: {name: email in a browser}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
approval_workflows:
  - name: by-email
    timeout_seconds: 300
    approvers: ["user:ada@example.com"]
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


def find_chromium() -> str | None:
    """The Chromium binary to drive: ``$CHROME_PATH``, else the first on PATH."""
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


@pytest.fixture
def chromium() -> str:
    return chromium_or_skip()


def chromium_or_skip() -> str:
    """The Chromium binary; the test skips without one, except on CI, where it fails."""
    found = find_chromium()
    if found is None:
        reason = f"no Chromium binary ({', '.join(CHROMIUM_NAMES)} on PATH, or ${CHROMIUM_ENV})"
        ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
        if ci:
            pytest.fail(f"{reason}; CI must run the browser test (apt-get install chromium)")
        pytest.skip(reason)
    return found


@pytest.fixture
def email_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mailbox: tuple[Mailbox, int]
) -> Iterator[LiveServer]:
    monkeypatch.chdir(REPO)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY % {"python": sys.executable})
    settings = make_settings(
        tmp_path,
        PRELOOP_POLICY_FILE=str(policy_file),
        PRELOOP_SMTP_HOST="127.0.0.1",
        PRELOOP_SMTP_PORT=str(mailbox[1]),
        PRELOOP_SMTP_SECURITY="none",
        PRELOOP_SMTP_SENDER="approvals@preloop.example",
        PRELOOP_SERVER_PUBLIC_URL="https://preloop.example",
    )
    with run_live(settings) as live:
        yield live


async def _people(live: LiveServer) -> str:
    """ada, an approver; the agent's key (returned)."""
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        added = await http.post("/api/v1/users/", json={"email": "ada@example.com"})
        assert added.status_code == 201, added.text
        key = await http.post(
            "/api/v1/keys/",
            json={"name": "ada", "role": "approver", "user_email": "ada@example.com"},
        )
        assert key.status_code == 201, key.text
        created = await http.post("/api/v1/keys/", json={"name": "agent", "role": "agent"})
        assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    return secret


def _approve_link(raw: bytes) -> str:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    found = re.search(r"^Approve:\s+(\S+)", plain.get_content(), flags=re.MULTILINE)
    assert found is not None
    return found.group(1)


async def test_the_confirmation_page_clicked_in_chromium_approves_the_waiting_call(
    chromium: str, email_server: LiveServer, mailbox: tuple[Mailbox, int]
) -> None:
    from playwright.async_api import async_playwright  # only where a browser will run

    box = mailbox[0]
    agent_key = await _people(email_server)
    admin = {"Authorization": f"Bearer {email_server.admin_key}"}
    async with (
        agent(email_server, agent_key, "auto") as client,
        httpx.AsyncClient(base_url=email_server.url, headers=admin, timeout=30) as http,
        async_playwright() as playwright,
    ):
        waiting = asyncio.create_task(
            raw_call(client, "demo__echo", {"text": "hello browser", "justification": "docs"})
        )

        async def mail() -> bytes | None:
            got = box.to("ada@example.com")
            return got[0][1] if got else None

        link = _approve_link(await eventually(mail))
        # The live server's ephemeral port is not the public URL the mail names.
        assert link.startswith("https://preloop.example/email/links/")
        url = email_server.url + urlsplit(link).path
        pending = (await http.get("/api/v1/approvals/", params={"status": "pending"})).json()
        request_id = pending[0]["id"]

        browser = await playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            context = await browser.new_context(java_script_enabled=False)
            page = await context.new_page()
            complaints: list[str] = []  # e.g. a Content-Security-Policy violation
            page.on("console", lambda m: complaints.append(m.text) if m.type == "error" else None)
            page.on("requestfailed", lambda r: complaints.append(f"failed: {r.url}"))
            shown = await page.goto(url)
            assert shown is not None
            assert 200 == shown.status
            assert "Approve demo/echo? · Preloop" == await page.title()
            details = await page.inner_text("table")
            for expected in ("echo", "demo", "hello browser", "docs", "agent", request_id):
                assert expected in details
            assert "pending" == await approval_status(http, request_id)  # showing decides nothing
            assert not waiting.done()

            await page.fill("textarea[name=comment]", "checked in a browser")
            async with page.expect_navigation() as navigation:
                await page.get_by_role("button", name="Approve this call").click()
            answer = await navigation.value
            assert answer is not None
            assert (200, "POST") == (answer.status, answer.request.method)
            assert "Request approved" == await page.inner_text("h1")
            assert request_id in await page.inner_text("body")
            assert [] == complaints  # no blocked style, form action or resource on the way

            async with asyncio.timeout(30):
                result = await waiting
            assert "hello browser" == result["content"][0]["text"]

            # The link again: the page now says the request is decided, with no button.
            again = await page.goto(url)
            assert again is not None
            assert 409 == again.status
            assert "already approved" in await page.inner_text("h1")
            assert 0 == await page.locator("button").count()
        finally:
            await browser.close()

        decided = (await http.get(f"/api/v1/approvals/{request_id}")).json()
        assert ("approved", "checked in a browser") == (
            decided["request"]["status"],
            decided["request"]["comment"],
        )
        assert [("email", "approve")] == [(v["channel"], v["choice"]) for v in decided["votes"]]
