"""The channels' inbound handlers without a web framework: raw request pieces in, a
``Reply`` out (bots/_replies.py), on in-memory services. The servers' routes only mount
them (server/channel_routes.py); the end-to-end behaviour is in tests/integration."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import urlencode

import msgspec
import pytest

from bots._replies import Reply
from bots.email import EmailLinkPages
from bots.mattermost import ActionSigner, ActionToken, MattermostActions
from bots.slack.interactions import SlackEvents
from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.channel_decisions import ChannelDecisions
from hub.clock import FrozenClock
from hub.events import InMemoryEventBus
from hub.identity import IdentityService
from hub.keys import Caller
from hub.links import DecisionLink, LinkSigner
from hub.memory import InMemoryStorage
from hub.policy import ApprovalWorkflow, Decision
from hub.policy.model import Action
from hub.records import ApprovalRequest, ApprovalStatus, Role
from hub.settings import SlackSettings

SECRET = "s" * 40


class World(msgspec.Struct):
    storage: InMemoryStorage
    clock: FrozenClock
    identity: IdentityService
    approvals: ApprovalService
    decisions: ChannelDecisions
    links: LinkSigner
    account_id: str

    async def approver(self, email: str, identities: dict[str, str]) -> None:
        await self.identity.add_user(self.account_id, email=email, name="", actor="t")
        await self.identity.create_key(
            self.account_id, name="k", role=Role.APPROVER, actor="t", user_email=email
        )
        await self.identity.link_user(self.account_id, email, identities, actor="t")

    async def request(self, required_approvals: int = 1) -> ApprovalRequest:
        created = await self.identity.create_key(
            self.account_id, name="agent", role=Role.AGENT, actor="t"
        )
        agent: Caller = await self.identity.authenticate(created.secret)
        return await self.approvals.open(
            caller=agent,
            server="shell",
            tool="bash",
            args={"command": "deploy"},
            justification=None,
            policy_version=1,
            workflow=msgspec.convert(
                {"name": "wf", "required_approvals": required_approvals}, ApprovalWorkflow
            ),
            decision=Decision(action=Action.REQUIRE_APPROVAL, rule="bash#1", workflow="wf"),
        )

    def mattermost(self) -> MattermostActions:
        return MattermostActions(
            self.decisions, ActionSigner(SECRET), users=self.storage.users, clock=self.clock
        )

    def email(self) -> EmailLinkPages:
        s = self.storage
        return EmailLinkPages(
            self.decisions,
            self.links,
            used_links=s.used_links,
            users=s.users,
            api_keys=s.api_keys,
            clock=self.clock,
        )


@pytest.fixture
async def world() -> World:
    storage, clock = InMemoryStorage(), FrozenClock()
    auditor = Auditor(storage.audit, clock)
    identity = IdentityService(storage, clock, auditor)
    approvals = ApprovalService(storage, clock, auditor, InMemoryEventBus())
    account = await identity.default_account()
    return World(
        storage=storage,
        clock=clock,
        identity=identity,
        approvals=approvals,
        decisions=ChannelDecisions(approvals, identity, storage),
        links=LinkSigner(SECRET),
        account_id=account.id,
    )


def _said(reply: Reply) -> tuple[int, str]:
    return reply.status, str(json.loads(reply.body).get("ephemeral_text", ""))


def _click(world: World, request: ApprovalRequest, user_id: str, *, seconds: int = 60) -> bytes:
    token = ActionSigner(SECRET).sign(
        ActionToken(
            account_id=world.account_id,
            request_id=request.id,
            action="approve",
            expires_at=int((world.clock.now() + timedelta(seconds=seconds)).timestamp()),
        )
    )
    return msgspec.json.encode({"user_id": user_id, "context": {"token": token}})


async def test_a_mattermost_click_from_an_unlinked_user_is_refused(world: World) -> None:
    await world.approver("ada@example.com", {"mattermost": "mm-ada"})
    request = await world.request()

    status, text = _said(await world.mattermost().click(_click(world, request, "mm-nobody")))

    assert 200 == status
    assert text.startswith("your Mattermost account is not linked to a Preloop user")
    assert "preloop users link --mattermost mm-nobody" in text
    assert text.endswith("Nothing was changed.")
    assert [] == list(await world.approvals.votes(world.account_id, request.id))


async def test_a_mattermost_vote_says_how_many_approvals_so_far(world: World) -> None:
    await world.approver("ada@example.com", {"mattermost": "mm-ada"})
    request = await world.request(required_approvals=2)

    status, text = _said(await world.mattermost().click(_click(world, request, "mm-ada")))

    assert (200, "Your approval is recorded: 1 of 2 so far; the call waits for the rest.") == (
        status,
        text,
    )


async def test_a_mattermost_decision_replaces_the_post(world: World) -> None:
    await world.approver("ada@example.com", {"mattermost": "mm-ada"})
    request = await world.request()

    reply = await world.mattermost().click(_click(world, request, "mm-ada"))

    assert (200, "application/json") == (reply.status, reply.media_type)
    assert json.loads(reply.body)["update"]["message"].startswith("**Approved**")


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        (b'{"user_id": "mm-ada", "context": {"token": "x.y"}}', 403, "not valid"),
        (b"[[[", 403, "not valid"),
        (None, 200, "expired"),
    ],
)
async def test_a_bad_or_old_mattermost_button_changes_nothing(
    world: World, body: bytes | None, status: int, said: str
) -> None:
    await world.approver("ada@example.com", {"mattermost": "mm-ada"})
    request = await world.request()
    body = body or _click(world, request, "mm-ada", seconds=-1)

    got_status, text = _said(await world.mattermost().click(body))

    assert (status, True) == (got_status, said in text)
    assert [] == list(await world.approvals.votes(world.account_id, request.id))


async def test_an_email_link_confirms_then_decides_once(world: World) -> None:
    await world.approver("ada@example.com", {})
    ada = await world.storage.users.get_by_email(world.account_id, "ada@example.com")
    assert ada is not None
    request = await world.request(required_approvals=2)
    token = world.links.sign(
        DecisionLink(
            id="lnk_1",
            account_id=world.account_id,
            request_id=request.id,
            user_id=ada.id,
            choice="approve",
            expires_at=int((world.clock.now() + timedelta(hours=1)).timestamp()),
        )
    )
    pages = world.email()

    shown = await pages.confirm(token)
    voted = await pages.decide(token, {"comment": "fine"})
    again = await pages.decide(token, {})
    forged = await pages.confirm(token[:-2])

    assert (200, "no-store") == (shown.status, shown.headers["Cache-Control"])
    assert shown.media_type.startswith("text/html")
    assert b"1 of 2 approvals so far" in voted.body
    assert (409, 403) == (again.status, forged.status)
    [vote] = await world.approvals.votes(world.account_id, request.id)
    assert ("email", "email:lnk_1", "fine") == (vote.channel, vote.via, vote.comment)
    pending = await world.approvals.get(world.account_id, request.id)
    assert ApprovalStatus.PENDING is pending.status


async def test_slack_events_refuse_what_slack_did_not_sign(world: World) -> None:
    # A signed click goes on to Slack's API (the fake Slack of tests/integration).
    settings = SlackSettings(bot_token="xoxb-test", signing_secret="signing-secret")
    events = SlackEvents(world.decisions, settings)
    body = urlencode({"payload": json.dumps({"type": "block_actions"})}).encode()
    now = str(int(time.time()))
    headers = {"content-type": "application/x-www-form-urlencoded"}

    got = await events.handle(
        method="GET", path="/slack/events", query="", headers=headers, body=b""
    )
    unsigned = await events.handle(
        method="POST", path="/slack/events", query="", headers=headers, body=body
    )
    wrong = await events.handle(
        method="POST",
        path="/slack/events",
        query="",
        headers=headers | {"x-slack-request-timestamp": now, "x-slack-signature": "v0=00"},
        body=body,
    )
    too_deep = await events.handle(
        method="POST",
        path="/slack/events",
        query="",
        headers={"content-type": "application/json"},
        body=b"[" * 100_000,
    )
    assert (404, 401, 401, 400) == (got.status, unsigned.status, wrong.status, too_deep.status)
