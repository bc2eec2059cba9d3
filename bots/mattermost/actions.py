"""The callback behind Mattermost's Approve / Deny buttons (``bots/mattermost/notifier.py``
posts them).

    POST /mattermost/actions   Mattermost's interactive-message request: ``user_id`` (the
                               clicker) and the button's ``context`` (``token``)

The server mounts :class:`MattermostActions` there (``server/channel_routes.py``): the route
hands over the body bytes and sends back the :class:`~bots._replies.Reply`.

Mattermost does not sign these requests: the button's signed token (``tokens.py``) is the
proof that the button is ours and names the request and the choice; the clicker's Mattermost
``user_id``, linked to a Preloop user (``preloop users link --mattermost``), says who decides,
through ``ChannelDecisions.decide`` (hub/channel_decisions: quorum, no self-approval, listed
approvers).

Answers are what Mattermost shows: a decision replaces the post (``update``); a vote that
waits for more approvals, and every refusal (expired button, unlinked clicker, someone who may
not decide, a request already decided) is an ``ephemeral_text`` for the clicker alone and
changes nothing. A token that is not ours is refused with 403.
"""

from __future__ import annotations

from typing import Any

import msgspec

from bots._messages import decider_shown
from bots._replies import Reply, json_reply
from bots.mattermost.posts import decided_post
from bots.mattermost.tokens import ActionSigner
from hub.channel_decisions import ChannelDecisions, ChannelIdentity
from hub.clock import Clock
from hub.errors import AuthenticationError, PreloopError
from hub.links import LinkExpiredError
from hub.ports import UserStore
from hub.records import ApprovalStatus

_UNCHANGED = "Nothing was changed."


class _ActionRequest(msgspec.Struct, kw_only=True):
    """The part of Mattermost's callback body Preloop reads (other fields are ignored)."""

    user_id: str
    context: dict[str, Any] = {}


_request = msgspec.json.Decoder(_ActionRequest)


def not_configured() -> Reply:
    """The answer when this server has no Mattermost channel."""
    return _answer("The Mattermost channel is not configured on this server.", 404)


class MattermostActions:
    """Decide as the linked clicker, or tell them (only them) why not."""

    def __init__(
        self,
        decisions: ChannelDecisions,
        signer: ActionSigner,
        *,
        users: UserStore,
        clock: Clock,
    ) -> None:
        self._decisions = decisions
        self._signer = signer
        self._users = users
        self._clock = clock

    async def click(self, body: bytes) -> Reply:
        try:
            action = _request.decode(body)
            token = self._signer.verify(str(action.context.get("token", "")), self._clock.now())
        except LinkExpiredError:
            return _answer(f"This button has expired. {_UNCHANGED}")
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, AuthenticationError):
            return _answer(f"This button is not valid. {_UNCHANGED}", 403)
        who = ChannelIdentity(
            channel="mattermost", external_id=action.user_id, label="Mattermost account"
        )
        try:
            voted = await self._decisions.decide(
                token.account_id, token.request_id, who, approve=token.action == "approve"
            )
        except PreloopError as exc:
            return _answer(f"{exc}. {_UNCHANGED}")
        request = voted.request
        if request.status is ApprovalStatus.PENDING:
            return _answer(
                f"Your approval is recorded: {voted.approvals} of {request.required_approvals} "
                "so far; the call waits for the rest."
            )
        decided = decided_post(request, await decider_shown(self._users, request))
        return json_reply({"update": decided})


def _answer(text: str, status: int = 200) -> Reply:
    return json_reply({"ephemeral_text": text}, status)
