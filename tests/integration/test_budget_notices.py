"""Budget notices end to end: the real server on uvicorn with the Slack channel (a local fake
of Slack's Web API, driven by the real slack_sdk client) and the email channel (a real SMTP
server, aiosmtpd). A warn budget names a workflow whose channels are Slack and email; usage
past its soft limit (reserved and settled through the server's own ``hub.budgets``, as the
model gateway does) makes one plain Slack message in the workflow's channel and one mail to
its approver, and nothing more when the spending goes on. On PostgreSQL, two replicas that
both receive the event announce it once per channel.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from click.testing import CliRunner

from hub.errors import PreloopError
from hub.events import SYSTEM_TOPIC, BudgetCrossed, Event
from hub.model_gateway.records import Attribution, BudgetPeriod, BudgetScope
from hub.notifier import Announcement, Notice
from hub.ports import AuditQuery
from hub.records import ApprovalRequest
from server.bootstrap import open_hub
from server.cli.main import cli
from server.hub_services import Hub
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.fakes.mail import Mailbox
from tests.integration.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.integration.mcp.support import REPO, eventually

T = TypeVar("T")

POLICY = """\
version: "1.0"
metadata: {name: budget notices}
approval_workflows:
  - name: spend-watch
    approvers: ["user:ada@example.com"]
    channels: [slack, email]
    channel_settings: {slack: {channel: "#spend"}}
tools: []
defaults:
  action: deny
"""


@dataclass
class Running:
    """The live server, and its hub on the server's own event loop."""

    live: LiveServer
    hub: Hub
    loop: asyncio.AbstractEventLoop

    async def on_server(self, work: Awaitable[T]) -> T:
        """Run ``work`` on the server's loop (where its hub lives) and wait for it."""
        done: Future[T] = asyncio.run_coroutine_threadsafe(work, self.loop)  # type: ignore[arg-type]
        return await asyncio.wait_for(asyncio.wrap_future(done), timeout=30)


@pytest.fixture
def server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_slack: tuple[FakeSlack, str],
    mailbox: tuple[Mailbox, int],
) -> Iterator[Running]:
    monkeypatch.chdir(REPO)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY)
    settings = make_settings(
        tmp_path,
        PRELOOP_POLICY_FILE=str(policy_file),
        PRELOOP_SLACK_BOT_TOKEN=BOT_TOKEN,
        PRELOOP_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        PRELOOP_SLACK_API_URL=fake_slack[1],
        PRELOOP_SMTP_HOST="127.0.0.1",
        PRELOOP_SMTP_PORT=str(mailbox[1]),
        PRELOOP_SMTP_SECURITY="none",
        PRELOOP_SMTP_SENDER="preloop@preloop.example",
    )
    opened: list[tuple[Hub, asyncio.AbstractEventLoop]] = []

    async def ready(hub: Hub) -> None:
        opened.append((hub, asyncio.get_running_loop()))

    with run_live(settings, on_ready=ready) as live:
        [(hub, loop)] = opened
        yield Running(live=live, hub=hub, loop=loop)


async def _setup(live: LiveServer) -> dict[str, Any]:
    """ada (an approver with Slack id UADA) and a warn budget told to ``spend-watch``."""
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        added = await http.post("/api/v1/users/", json={"email": "ada@example.com"})
        assert added.status_code == 201, added.text
        key = await http.post(
            "/api/v1/keys/",
            json={"name": "ada", "role": "approver", "user_email": "ada@example.com"},
        )
        assert key.status_code == 201, key.text
        linked = await http.post("/api/v1/users/ada@example.com/link", json={"slack": "UADA"})
        assert linked.status_code == 200, linked.text
        budget = await http.post(
            "/api/v1/budgets/",
            json={
                "name": "team-day",
                "soft_limit": "8",
                "hard_limit": "10",
                "on_soft": "warn",
                "approval_workflow": "spend-watch",
            },
        )
        assert budget.status_code == 201, budget.text
        answer: dict[str, Any] = budget.json()
        answer["ada_key"] = key.json()["secret"]
        return answer


async def _spend(server: Running, estimate: str, actual: str) -> tuple[str, ...]:
    """One model request's worth of budget: reserve ``estimate``, settle ``actual``."""
    account = await server.on_server(server.hub.identity.default_account())
    who = Attribution(account_id=account.id, api_key_id="key_agent", principal="agent")
    admission = await server.on_server(
        server.hub.budgets.admit(who, model="gpt-4o", estimate=Decimal(estimate))
    )
    await server.on_server(server.hub.budgets.settle(admission, Decimal(actual)))
    return admission.warnings


def _mail(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_a_warn_budget_past_its_soft_limit_is_told_on_slack_and_by_mail(
    server: Running, fake_slack: tuple[FakeSlack, str], mailbox: tuple[Mailbox, int]
) -> None:
    slack, box = fake_slack[0], mailbox[0]
    created = await _setup(server.live)
    assert ("warn", "spend-watch") == (created["on_soft"], created["approval_workflow"])

    assert () == await _spend(server, "1", "7.90")  # under the soft limit: nobody is told
    warnings = await _spend(server, "0.50", "0.40")  # $7.90 + $0.50 passes $8
    assert ('budget "team-day" at $7.90 of soft $8.00',) == warnings

    async def told() -> tuple[dict[str, Any], bytes] | None:
        posted, mailed = slack.made("chat.postMessage"), box.to("ada@example.com")
        return (posted[0], mailed[0][1]) if posted and mailed else None

    message, raw = await eventually(told)
    assert "#spend" == message["channel"]
    assert 'Budget "team-day" passed its soft limit' == message["text"]
    blocks = message["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    assert [] == [b for b in blocks if b["type"] == "actions"]  # no buttons
    body = " ".join(str(b.get("text", {}).get("text", "")) for b in blocks)
    for part in ("team-day", "$7.90 of soft limit $8.00, hard limit $10.00", "Resets:", "<@UADA>"):
        assert part in body

    mail = _mail(raw)
    assert 'Budget "team-day" passed its soft limit' == mail["Subject"]
    assert "auto-generated" == mail["Auto-Submitted"]
    text = mail.get_content()
    assert "Spent: $7.90 of soft limit $8.00, hard limit $10.00" in text
    assert "http" not in text  # no decision links: nobody decides a notice

    # Spending goes on past the soft limit: the period's notice was given once.
    assert 1 == len(await _spend(server, "0.50", "0.50"))
    account = await server.on_server(server.hub.identity.default_account())
    crossed = await server.on_server(
        server.hub.auditor.query(account.id, AuditQuery(kind="budget.soft_crossed"))
    )
    assert 1 == len(crossed)  # one event for the period, so one notice per channel
    assert 1 == len(slack.made("chat.postMessage")) == len(box.to("ada@example.com"))
    for secret in (server.live.admin_key, created["ada_key"], BOT_TOKEN):
        assert secret not in str(slack.calls)
        assert secret.encode() not in raw


@dataclass
class Recording:
    """A channel that records what it is asked to announce."""

    channel: str
    announced: list[Announcement] = field(default_factory=list)

    async def deliver(self, notice: Notice) -> None:
        raise AssertionError("a budget notice is no approval request")

    async def settle(self, request: ApprovalRequest) -> None:
        raise AssertionError("a budget notice is never settled")

    async def announce(self, announcement: Announcement) -> None:
        self.announced.append(announcement)


@pytest.mark.postgres
async def test_two_replicas_on_postgresql_announce_once_per_channel(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, PRELOOP_DATABASE_URL=postgres_url)
    replicas = [await open_hub(settings), await open_hub(settings)]
    try:
        first, second = replicas
        channels = [(Recording("slack"), Recording("email")) for _ in replicas]
        for replica, (slack, email) in zip(replicas, channels, strict=True):
            replica.notifications.register(slack)
            replica.notifications.register(email)
        account = await first.identity.default_account()
        await first.policies.apply(account.id, POLICY, actor="test")
        await first.identity.add_user(account.id, email="ada@example.com", name="", actor="t")
        await first.budgets.add(
            account.id,
            name="team-day",
            scope=BudgetScope.ACCOUNT,
            period=BudgetPeriod.DAY,
            soft_limit=Decimal("8"),
            approval_workflow="spend-watch",
            actor="test",
        )
        who = Attribution(account_id=account.id, api_key_id="key_agent", principal="agent")
        spent = await first.budgets.admit(who, model="m", estimate=Decimal("1"))
        await first.budgets.settle(spent, Decimal("7.9"))

        async with (
            first.bus.subscribe(SYSTEM_TOPIC) as on_first,
            second.bus.subscribe(SYSTEM_TOPIC) as on_second,
        ):
            await first.budgets.admit(who, model="m", estimate=Decimal("0.5"))
            events = [  # each replica receives the event through PostgreSQL
                await asyncio.wait_for(_crossing(on_first), timeout=30),
                await asyncio.wait_for(_crossing(on_second), timeout=30),
            ]
        await asyncio.gather(
            *(r.notifications.handle(e) for r, e in zip(replicas, events, strict=True))
        )

        counts = {
            name: sum(len(pair[index].announced) for pair in channels)
            for index, name in enumerate(("slack", "email"))
        }
        assert {"slack": 1, "email": 1} == counts  # by one replica or the other, not both
        told = [a for pair in channels for channel in pair for a in channel.announced]
        assert {("ada@example.com",)} == {tuple(r.email for r in a.recipients) for a in told}
    finally:
        for replica in replicas:
            await replica.close()


async def _crossing(events: AsyncIterator[Event]) -> BudgetCrossed:
    async for event in events:
        if isinstance(event, BudgetCrossed):
            return event
    raise AssertionError("the bus ended")


def test_the_cli_adds_a_warn_budget_that_tells_a_workflow(server: Running) -> None:
    def budgets_add(*args: str) -> tuple[int, str, str]:
        """Exit status, stdout, and the error (``preloop`` prints it as ``error: ...``)."""
        argv = ["budgets", "add", *args, "--url", server.live.url, "--key", server.live.admin_key]
        result = CliRunner().invoke(cli, argv)
        error = str(result.exception) if isinstance(result.exception, PreloopError) else ""
        return result.exit_code, result.stdout, error

    code, out, _ = budgets_add("watched", "--soft", "5", "--workflow", "spend-watch")
    assert (0, "Past the soft limit it tells workflow spend-watch.") == (
        code,
        out.strip().splitlines()[-1],
    )
    code, _, err = budgets_add("lost", "--soft", "5", "--workflow", "nope")
    assert 0 != code
    assert "workflow 'nope' is not in the active policy (it has: spend-watch)" in err
    code, _, err = budgets_add("hard-only", "--hard", "5", "--workflow", "spend-watch")
    assert 0 != code
    assert "needs a soft limit" in err
