"""Deciding as the person behind a channel identity (hub/channel_decisions.py), and the vote
count a decision carries (docs/decisions/0076)."""

from __future__ import annotations

import pytest

from hub.channel_decisions import ChannelDecisions, ChannelIdentity
from hub.errors import PermissionDeniedError
from hub.records import ApprovalStatus, Role

from . import test_approvals
from .test_approvals import World

world = test_approvals.world  # the fixture

SLACK_ADA = ChannelIdentity(channel="slack", external_id="U_ADA", label="Slack user")


async def _linked(world: World, email: str, identities: dict[str, str]) -> None:
    await world.caller(Role.APPROVER, email=email)
    await world.identity.link_user(world.account_id, email, identities, actor="t")


def _decisions(world: World) -> ChannelDecisions:
    return ChannelDecisions(world.service, world.identity, world.storage)


async def test_a_linked_identity_votes_as_its_person_and_gets_the_count(world: World) -> None:
    await _linked(world, "ada@example.com", {"slack": "U_ADA"})
    await _linked(world, "bo@example.com", {"mattermost": "mm-bo"})
    agent = await world.caller(Role.AGENT)
    request = await world.request(agent, required_approvals=3)
    decisions = _decisions(world)

    first = await decisions.decide(world.account_id, request.id, SLACK_ADA, approve=True)
    second = await decisions.decide(
        world.account_id,
        request.id,
        ChannelIdentity(channel="mattermost", external_id="mm-bo"),
        approve=True,
    )

    assert (first.request.status, first.approvals) == (ApprovalStatus.PENDING, 1)
    assert (second.request.status, second.approvals) == (ApprovalStatus.PENDING, 2)
    votes = await world.service.votes(world.account_id, request.id)
    assert {
        ("ada@example.com", "slack", "slack:U_ADA"),
        ("bo@example.com", "mattermost", "mattermost:mm-bo"),
    } == {(v.approver_name, v.channel, v.via) for v in votes}


async def test_a_deny_decides_and_still_counts_the_approvals_before_it(world: World) -> None:
    await _linked(world, "ada@example.com", {"slack": "U_ADA"})
    other = await world.caller(Role.APPROVER)
    agent = await world.caller(Role.AGENT)
    request = await world.request(agent, required_approvals=3)
    await world.service.decide(world.account_id, request.id, approver=other, approve=True)

    denied = await _decisions(world).decide(
        world.account_id, request.id, SLACK_ADA, approve=False, comment="no"
    )

    assert (denied.request.status, denied.approvals) == (ApprovalStatus.DENIED, 1)


async def test_a_click_from_an_unlinked_identity_is_refused_and_changes_nothing(
    world: World,
) -> None:
    await _linked(world, "ada@example.com", {"slack": "U_ADA"})
    agent = await world.caller(Role.AGENT)
    request = await world.request(agent)
    decisions = _decisions(world)
    strangers = [
        ChannelIdentity(channel="slack", external_id="U_NOBODY", label="Slack user"),
        ChannelIdentity(channel="mattermost", external_id="U_ADA"),  # ada's id, other channel
        ChannelIdentity(channel="slack", external_id=""),
    ]

    for stranger in strangers:
        with pytest.raises(PermissionDeniedError, match="is not linked to a Preloop user"):
            await decisions.decide(world.account_id, request.id, stranger, approve=True)
        with pytest.raises(PermissionDeniedError, match="is not linked"):
            await decisions.check_may_decide(world.account_id, request.id, stranger)

    assert [] == list(await world.service.votes(world.account_id, request.id))
    assert ApprovalStatus.PENDING is (await world.service.get(world.account_id, request.id)).status


async def test_the_slash_command_finds_the_person_and_what_they_may_decide(world: World) -> None:
    await _linked(world, "ada@example.com", {"slack": "U_ADA"})
    agent = await world.caller(Role.AGENT)
    mine = await world.request(agent, approvers=["user:ada@example.com"])
    await world.request(agent, approvers=["user:someone@example.com"])
    decisions = _decisions(world)

    found = await decisions.find_person(SLACK_ADA)
    assert found is not None
    account_id, ada = found
    listing = await decisions.pending_for(account_id, ada, SLACK_ADA, scan=10)

    assert (account_id, ada.email) == (world.account_id, "ada@example.com")
    assert ([mine.id], 1, False) == ([r.id for r in listing.mine], listing.others, listing.limited)
    assert await decisions.find_person(ChannelIdentity(channel="slack", external_id="U_X")) is None
