"""Fifty decisions on one held call at once, from four channels: exactly one outcome.

One live server (uvicorn on 127.0.0.1; SQLite, and PostgreSQL where real concurrency bites)
with every channel configured: Slack (the fake Web API; signed clicks and deny-modal
submissions to ``/slack/events``), Mattermost (the fake REST API; button callbacks with the
post's signed context token), email (a real SMTP server; each recipient's links' confirmation
POST) and the REST API (approvers' own keys, and paired device credentials). A real MCP agent
calls the test upstream's ``slow`` tool, which the policy holds for approval; then fifty
decisions, approve and deny, from distinct and repeated people across the channels, are sent
together with ``asyncio.gather``.

What must hold whatever the interleaving: every decision gets a proper answer (a decision, a
recorded vote, or a clear refusal; never a 5xx); exactly one of them moves the request, and
the audit has exactly one ``approval.decided``; the votes on record are the ones that counted
(quorum 1: exactly the winner's); the agent gets one answer that agrees with the outcome; the
tool ran once if approved and never if denied. The upstream's own sequence counter says how
often it ran: its ``slow`` tool ticks once as it starts and once as it finishes, so an
allowed follow-up call starts at 3 after one run and at 1 after none.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from bots.slack import DENY_VIEW
from hub.devices import DEVICE_CHANNEL
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.fakes.mail import Mailbox
from tests.integration.fakes.mattermost import FakeMattermost
from tests.integration.fakes.slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    click,
    signed,
)
from tests.integration.mcp.support import REPO, agent, eventually, raw_call, tool_calls

MM_TOKEN = "mm-bot-token-" + "x" * 20
DECISIONS = 50
PEOPLE = ("ada", "bo", "cy", "di", "ed", "flo", "gus", "hal")
SLACK = {"ada": "UADA", "bo": "UBO", "cy": "UCY"}
MATTERMOST = {"cy": "mm-cy", "di": "mm-di", "ada": "mm-ada"}
DEVICES = ("gus", "hal", "ed")

POLICY = """\
version: "1.0"
metadata: {name: concurrent decisions}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
approval_workflows:
  - name: everywhere
    timeout_seconds: 600
    required_approvals: %(quorum)d
    approvers: [%(approvers)s]
    channels: [slack, mattermost, email]
    channel_settings: {slack: {channel: "#deploys"}, mattermost: {channel: "chan-deploys"}}
tools:
  - name: slow
    server: demo
    action: allow
    conditions:
      - expression: args.seconds == 1
        action: require_approval
        approval_workflow: everywhere
defaults:
  action: deny
  unknown_tools: deny
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """``None`` for the server's own SQLite file; else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


def email_of(person: str) -> str:
    return f"{person}@example.com"


@contextmanager
def _serve(
    tmp_path: Path,
    quorum: int,
    slack_api: str,
    mattermost_url: str,
    smtp_port: int,
    database_url: str | None,
) -> Iterator[LiveServer]:
    policy_file = tmp_path / "policy.yaml"
    approvers = ", ".join(f'"user:{email_of(p)}"' for p in PEOPLE)
    policy_file.write_text(
        POLICY % {"python": sys.executable, "quorum": quorum, "approvers": approvers}
    )
    env = {
        "PRELOOP_POLICY_FILE": str(policy_file),
        "PRELOOP_SLACK_BOT_TOKEN": BOT_TOKEN,
        "PRELOOP_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PRELOOP_SLACK_API_URL": slack_api,
        "PRELOOP_MATTERMOST_URL": mattermost_url,
        "PRELOOP_MATTERMOST_TOKEN": MM_TOKEN,
        "PRELOOP_MATTERMOST_CHANNEL_ID": "chan-default",
        "PRELOOP_SMTP_HOST": "127.0.0.1",
        "PRELOOP_SMTP_PORT": str(smtp_port),
        "PRELOOP_SMTP_SECURITY": "none",
        "PRELOOP_SMTP_SENDER": "approvals@preloop.example",
        "PRELOOP_SERVER_PUBLIC_URL": "https://preloop.example",
    }
    if database_url is not None:
        env["PRELOOP_DATABASE_URL"] = database_url
    with run_live(make_settings(tmp_path, **env)) as live:
        yield live


@dataclass
class Site:
    """The live server and what its people hold: API keys, device credentials, the agent's
    key; once a call is held, the Slack, Mattermost and email handles on its request."""

    live: LiveServer
    http: httpx.AsyncClient  # admin
    users: dict[str, str] = field(default_factory=dict)  # person -> user id
    keys: dict[str, str] = field(default_factory=dict)  # person -> approver API key
    devices: dict[str, str] = field(default_factory=dict)  # person -> device credential
    agent_key: str = ""
    request_id: str = ""
    account_id: str = ""
    mm_buttons: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[str, dict[str, str]] = field(default_factory=dict)  # person -> choice -> path


@asynccontextmanager
async def _setup(live: LiveServer) -> AsyncIterator[Site]:
    admin = {"Authorization": f"Bearer {live.admin_key}"}
    async with httpx.AsyncClient(base_url=live.url, headers=admin, timeout=60) as http:
        site = Site(live=live, http=http)
        for person in PEOPLE:
            email = email_of(person)
            added = await http.post("/api/v1/users/", json={"email": email})
            assert added.status_code == 201, added.text
            site.users[person] = added.json()["id"]
            key = await http.post(
                "/api/v1/keys/", json={"name": person, "role": "approver", "user_email": email}
            )
            assert key.status_code == 201, key.text
            site.keys[person] = key.json()["secret"]
            identities = {}
            if person in SLACK:
                identities["slack"] = SLACK[person]
            if person in MATTERMOST:
                identities["mattermost"] = MATTERMOST[person]
            if identities:
                linked = await http.post(f"/api/v1/users/{email}/link", json=identities)
                assert linked.status_code == 200, linked.text
        for person in DEVICES:
            token = await http.post("/api/v1/pairing-tokens/", json={"user": email_of(person)})
            assert token.status_code == 201, token.text
            paired = await http.post(
                "/api/v1/devices/pair",
                json={
                    "token": token.json()["token"],
                    "name": f"{person}'s phone",
                    "platform": "ios",
                },
            )
            assert paired.status_code == 201, paired.text
            site.devices[person] = paired.json()["credential"]
        created = await http.post("/api/v1/keys/", json={"name": "agent", "role": "agent"})
        assert created.status_code == 201, created.text
        site.agent_key = created.json()["secret"]
        yield site


def _parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _mail_links(raw: bytes) -> dict[str, str]:
    plain = _parse(raw).get_body(preferencelist=("plain",))
    assert plain is not None
    found = dict(re.findall(r"^(Approve|Deny):\s+(\S+)", plain.get_content(), re.MULTILINE))
    return {"approve": urlsplit(found["Approve"]).path, "deny": urlsplit(found["Deny"]).path}


async def _held(site: Site, slack: FakeSlack, mm: FakeMattermost, box: Mailbox) -> None:
    """Wait until every channel has announced the held call; note how to decide it."""

    async def announced() -> bool | None:
        everyone = {email_of(p) for p in PEOPLE}
        mailed = {rcpt for rcpt, _ in box.messages}
        ready = slack.made("chat.postMessage") and mm.created() and everyone <= mailed
        return True if ready else None

    await eventually(announced, within=60)
    message = slack.made("chat.postMessage")[0]
    blocks = message["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    approve = next(b for b in blocks if b["type"] == "actions")["elements"][0]
    site.request_id = approve["action_id"].removeprefix("preloop_approve:")
    site.account_id = approve["value"]
    actions = mm.created()[0]["props"]["attachments"][0]["actions"]
    site.mm_buttons = {a["id"]: a for a in actions}
    for person in PEOPLE:
        site.links[person] = _mail_links(box.to(email_of(person))[0][1])


# --- one decision per channel, each answering what it did: decided, voted or refused --------

DECIDED, VOTED, REFUSED, UNKNOWN = "decided", "voted", "refused", "unknown"


@dataclass(frozen=True)
class Answer:
    channel: str
    person: str
    approve: bool
    status: int
    outcome: str  # DECIDED, VOTED, REFUSED, or UNKNOWN for a Slack click (read its ephemerals)
    said: str


async def _rest(site: Site, client: httpx.AsyncClient, person: str, approve: bool) -> Answer:
    verb = "approve" if approve else "deny"
    answer = await client.post(
        f"{site.live.url}/api/v1/approvals/{site.request_id}/{verb}",
        json={"comment": f"{person} by key"},
        headers={"Authorization": f"Bearer {site.keys[person]}"},
    )
    return _json_answer("rest", person, approve, answer)


async def _device(site: Site, client: httpx.AsyncClient, person: str, approve: bool) -> Answer:
    verb = "approve" if approve else "deny"
    answer = await client.post(
        f"{site.live.url}/api/v1/devices/me/approvals/{site.request_id}/{verb}",
        json={"comment": f"{person} by phone"},
        headers={"Authorization": f"Bearer {site.devices[person]}"},
    )
    return _json_answer("device", person, approve, answer)


def _json_answer(channel: str, person: str, approve: bool, answer: httpx.Response) -> Answer:
    if answer.status_code == 200:
        status = answer.json()["status"]
        outcome = VOTED if status == "pending" else DECIDED
        return Answer(channel, person, approve, 200, outcome, status)
    return Answer(channel, person, approve, answer.status_code, REFUSED, answer.text)


async def _email(site: Site, client: httpx.AsyncClient, person: str, approve: bool) -> Answer:
    path = site.links[person]["approve" if approve else "deny"]
    answer = await client.post(f"{site.live.url}{path}", data={"comment": "", "confirm": "yes"})
    body = re.search(r"<body[^>]*>(.*)</body>", answer.text, flags=re.DOTALL)
    said = " ".join(
        html.unescape(re.sub(r"<[^>]+>", " ", body[1] if body else answer.text)).split()
    )
    if answer.status_code == 200 and said.startswith("Request "):
        outcome = DECIDED
    elif answer.status_code == 200 and "recorded" in said:
        outcome = VOTED
    else:
        outcome = REFUSED
    return Answer("email", person, approve, answer.status_code, outcome, said)


async def _mattermost(site: Site, client: httpx.AsyncClient, person: str, approve: bool) -> Answer:
    integration = site.mm_buttons["approve" if approve else "deny"]["integration"]
    body = {
        "user_id": MATTERMOST[person],
        "user_name": person,
        "channel_id": "chan-deploys",
        "post_id": "post1",
        "context": integration["context"],
    }
    answer = await client.post(f"{site.live.url}{urlsplit(integration['url']).path}", json=body)
    if answer.status_code != 200:
        return Answer("mattermost", person, approve, answer.status_code, REFUSED, answer.text)
    reply = answer.json()
    if "update" in reply:
        return Answer("mattermost", person, approve, 200, DECIDED, json.dumps(reply)[:200])
    text = str(reply.get("ephemeral_text", ""))
    outcome = VOTED if text.startswith("Your approval is recorded") else REFUSED
    return Answer("mattermost", person, approve, 200, outcome, text)


async def _slack(site: Site, client: httpx.AsyncClient, person: str, approve: bool) -> Answer:
    user = SLACK[person]
    if approve:
        body = click(user, f"preloop_approve:{site.request_id}", site.account_id)
    else:  # a deny is the modal's submission, with its reason
        metadata = {"account_id": site.account_id, "request_id": site.request_id, "channel": ""}
        submission = {
            "type": "view_submission",
            "team": {"id": "T1"},
            "user": {"id": user},
            "api_app_id": "A1",
            "view": {
                "id": f"V{person}",
                "type": "modal",
                "callback_id": DENY_VIEW,
                "private_metadata": json.dumps(metadata),
                "state": {
                    "values": {
                        "reason": {"reason_input": {"type": "plain_text_input", "value": "no"}}
                    }
                },
            },
        }
        body = urlencode({"payload": json.dumps(submission)})
    answer = await client.post(f"{site.live.url}/slack/events", content=body, headers=signed(body))
    if approve or answer.status_code != 200:
        # An approve click is always acknowledged; what it did is told in ephemerals.
        outcome = UNKNOWN if answer.status_code == 200 else REFUSED
        return Answer("slack", person, approve, answer.status_code, outcome, answer.text)
    refused = answer.content and answer.json().get("response_action") == "errors"
    return Answer("slack", person, approve, 200, REFUSED if refused else DECIDED, answer.text)


VOTE_CHANNEL = {  # the channel a vote records, by the way it was sent
    "slack": "slack",
    "mattermost": "mattermost",
    "email": "email",
    "rest": "api",
    "device": DEVICE_CHANNEL,
}
CHANNELS = {
    "slack": (_slack, tuple(SLACK)),
    "mattermost": (_mattermost, tuple(MATTERMOST)),
    "email": (_email, PEOPLE),
    "rest": (_rest, PEOPLE),
    "device": (_device, DEVICES),
}


def _plan(*, all_approve: bool) -> list[tuple[str, str, bool]]:
    """Fifty (channel, person, approve): every channel, people repeated across and within
    channels (the same person by Slack and by key; the same email link twice)."""
    names = list(CHANNELS)
    plan = []
    for i in range(DECISIONS):
        channel = names[i % len(names)]
        people = CHANNELS[channel][1]
        person = people[(i // len(names)) % len(people)]
        plan.append((channel, person, all_approve or i % 3 != 1))
    return plan


async def _fire(site: Site, plan: list[tuple[str, str, bool]]) -> list[Answer]:
    limits = httpx.Limits(max_connections=DECISIONS, max_keepalive_connections=DECISIONS)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        calls: list[Awaitable[Answer]] = [
            CHANNELS[channel][0](site, client, person, approve) for channel, person, approve in plan
        ]
        return list(await asyncio.gather(*calls))


def _slack_tally(slack: FakeSlack, answers: list[Answer]) -> tuple[int, int, int]:
    """(decided, voted, refused) among the Slack approve clicks, from the ephemerals they
    caused (a click that decided says nothing: the message itself is updated)."""
    clicks = sum(1 for a in answers if a.outcome == UNKNOWN)
    said = [str(e["text"]) for e in slack.made("chat.postEphemeral")]
    voted = sum(1 for text in said if text.startswith("Your approval is recorded"))
    refused = len(said) - voted
    return clicks - voted - refused, voted, refused


async def _audit(site: Site, kind: str) -> list[dict[str, Any]]:
    got = await site.http.get(
        "/api/v1/audit/", params={"kind": kind, "order": "oldest", "limit": 1000}
    )
    assert got.status_code == 200, got.text
    return [e for e in got.json() if e["data"].get("request_id") == site.request_id]


async def _check_held_call_audited_once(site: Site, status: str) -> None:
    """One ``tool.call`` event for the held call: ran (``ok``) if approved, else denied."""
    calls = [c for c in await tool_calls(site.live) if c.get("approval_id") == site.request_id]
    assert [("slow", "ok" if status == "approved" else "denied")] == [
        (c["tool"], c["status"]) for c in calls
    ]


async def _runs_so_far(client: Any) -> int:
    """How often the upstream's ``slow`` ran, from its own sequence counter (an allowed call
    that starts at ``2 * runs + 1``)."""
    result = await raw_call(client, "demo__slow", {"seconds": 0})
    assert not result.get("isError"), result
    started: int = result["structuredContent"]["started"]
    return (started - 1) // 2


class Race(NamedTuple):
    site: Site
    answers: list[Answer]
    result: dict[str, Any]  # what the agent got
    runs: int  # how often the upstream ran the held call
    detail: dict[str, Any]  # the request and its votes, from the REST API


@asynccontextmanager
async def _race(
    tmp_path: Path,
    database_url: str | None,
    quorum: int,
    *,
    all_approve: bool,
    fakes: tuple[tuple[FakeSlack, str], tuple[FakeMattermost, str], tuple[Mailbox, int]],
) -> AsyncIterator[Race]:
    """Hold the agent's call, fire the fifty decisions, wait for the agent's answer; yields
    while the server still runs."""
    (slack, slack_api), (mm, mm_url), (box, smtp_port) = fakes
    with _serve(tmp_path, quorum, slack_api, mm_url, smtp_port, database_url) as live:
        async with _setup(live) as site, agent(live, site.agent_key, "auto") as client:
            waiting = asyncio.create_task(raw_call(client, "demo__slow", {"seconds": 1}))
            await _held(site, slack, mm, box)
            assert not waiting.done()
            answers = await _fire(site, _plan(all_approve=all_approve))
            async with asyncio.timeout(60):
                result = await waiting
            runs = await _runs_so_far(client)
            detail = (await site.http.get(f"/api/v1/approvals/{site.request_id}")).json()
            yield Race(site, answers, result, runs, detail)


def _check_common(race: Race, slack: FakeSlack) -> tuple[int, int]:
    """The invariants for any quorum; (decisions that moved the request, votes counted)."""
    answers, result, runs, detail = race.answers, race.result, race.runs, race.detail
    assert DECISIONS == len(answers)
    assert {"slack", "mattermost", "email", "rest", "device"} == {a.channel for a in answers}
    # Proper answers only: 200 (Slack and Mattermost refuse inside a 200) or 409, each
    # refusal saying why: the request is already decided, the link already used, or (with a
    # quorum) this person already voted.
    assert [] == [a for a in answers if a.status not in (200, 409)]
    refusals = [a for a in answers if a.outcome == REFUSED]
    assert all(a.status == 409 for a in refusals if a.channel in ("rest", "device", "email"))
    slack_said = [str(e["text"]) for e in slack.made("chat.postEphemeral")]
    said = [a.said for a in refusals] + [t for t in slack_said if t.startswith("Refused")]
    assert [] == [text for text in said if "already" not in text]

    slack_decided, slack_voted, _ = _slack_tally(slack, answers)
    decided = slack_decided + sum(1 for a in answers if a.outcome == DECIDED)
    voted = slack_voted + sum(1 for a in answers if a.outcome == VOTED)
    assert 1 == decided, Counter((a.channel, a.outcome) for a in answers)

    request = detail["request"]
    assert request["status"] in ("approved", "denied")
    if request["status"] == "approved":
        assert not result.get("isError"), result
        assert {"started", "finished"} == set(result["structuredContent"])
        assert 1 == runs
    else:
        assert result.get("isError") is True, result
        assert 0 == runs
    return decided, voted


async def test_fifty_concurrent_decisions_have_exactly_one_outcome(
    database_url: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_slack: tuple[FakeSlack, str],
    mattermost: tuple[FakeMattermost, str],
    mailbox: tuple[Mailbox, int],
) -> None:
    monkeypatch.chdir(REPO)
    async with _race(
        tmp_path, database_url, 1, all_approve=False, fakes=(fake_slack, mattermost, mailbox)
    ) as race:
        await _check_one_of_fifty(race, fake_slack[0])


async def _check_one_of_fifty(race: Race, slack: FakeSlack) -> None:
    site, answers, detail = race.site, race.answers, race.detail
    assert {True, False} == {a.approve for a in answers}
    decided, voted = _check_common(race, slack)
    assert (1, 0) == (decided, voted)

    # Quorum 1: the one vote on record is the winner's, and it agrees with the outcome.
    request_ = detail["request"]
    votes = detail["votes"]
    assert 1 == len(votes), votes
    expected_choice = "approve" if request_["status"] == "approved" else "deny"
    assert expected_choice == votes[0]["choice"]
    assert votes[0]["approver"] in site.users.values()  # a person, by whichever channel
    winners = [a for a in answers if a.outcome == DECIDED]
    for winner in winners:  # a Slack approve click that won is only seen through the vote
        assert (winner.approve, site.users[winner.person], VOTE_CHANNEL[winner.channel]) == (
            request_["status"] == "approved",
            votes[0]["approver"],
            votes[0]["channel"],
        )

    await _check_held_call_audited_once(site, request_["status"])

    # The audit: one vote, one decision, by the same caller.
    voted_events = await _audit(site, "approval.voted")
    decided_events = await _audit(site, "approval.decided")
    assert [request_["status"]] == [e["data"]["status"] for e in decided_events]
    assert [request_["decided_by"]] == [e["actor"] for e in voted_events]
    assert [request_["decided_by"]] == [e["actor"] for e in decided_events]


async def test_concurrent_approvals_with_a_quorum_of_two_move_the_request_once(
    database_url: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_slack: tuple[FakeSlack, str],
    mattermost: tuple[FakeMattermost, str],
    mailbox: tuple[Mailbox, int],
) -> None:
    monkeypatch.chdir(REPO)
    async with _race(
        tmp_path, database_url, 2, all_approve=True, fakes=(fake_slack, mattermost, mailbox)
    ) as race:
        await _check_quorum_of_two(race, fake_slack[0])


async def _check_quorum_of_two(race: Race, slack: FakeSlack) -> None:
    site, detail = race.site, race.detail
    decided, voted = _check_common(race, slack)
    request_ = detail["request"]
    assert "approved" == request_["status"]
    # One vote waited for a second; the second approved; every other was refused.
    assert (1, 1) == (decided, voted)
    votes = detail["votes"]
    assert 2 == len({v["approver"] for v in votes}) == len(votes), votes
    assert {"approve"} == {v["choice"] for v in votes}
    await _check_held_call_audited_once(site, "approved")
    voted_events = await _audit(site, "approval.voted")
    decided_events = await _audit(site, "approval.decided")
    assert [1, 2] == [e["data"]["approvals"] for e in voted_events]
    assert ["approved"] == [e["data"]["status"] for e in decided_events]
    assert [request_["decided_by"]] == [e["actor"] for e in decided_events]
    assert request_["decided_by"] == voted_events[1]["actor"]  # the second vote decided
