"""The callback behind Mattermost's Approve / Deny buttons (``bots/mattermost.py`` posts them).

    POST /mattermost/actions   Mattermost's interactive-message request: ``user_id`` (the
                               clicker) and the button's ``context`` (``token``)

Mattermost does not sign these requests: the button's signed token is the proof that the
button is ours and names the request and the choice; the clicker's Mattermost ``user_id``,
linked to a Preloop user (``preloop users link --mattermost``), says who decides, through
``ApprovalService.decide(channel="mattermost")`` (quorum, no self-approval, listed approvers).

Answers are what Mattermost shows: a decision replaces the post (``update``); a vote that
waits for more approvals, and every refusal (expired button, unlinked clicker, someone who may
not decide, a request already decided) is an ``ephemeral_text`` for the clicker alone and
changes nothing. A token that is not ours is refused with 403.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, Router, post

from bots.mattermost import ActionToken
from hub.errors import AuthenticationError, PreloopError
from hub.links import LinkExpiredError
from hub.records import ApprovalRequest, ApprovalStatus, User
from server.hub_services import Hub

_UNCHANGED = "Nothing was changed."


class _ActionRequest(msgspec.Struct, kw_only=True):
    """The part of Mattermost's callback body Preloop reads (other fields are ignored)."""

    user_id: str
    context: dict[str, Any] = {}


@post("/actions", include_in_schema=False, status_code=200)
async def mattermost_action(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Decide as the linked clicker, or tell them (only them) why not."""
    hub: Hub = request.app.state.hub
    notifier = hub.mattermost
    if notifier is None:
        return _answer("The Mattermost channel is not configured on this server.", 404)
    try:
        body = msgspec.json.decode(await request.body(), type=_ActionRequest)
        token = notifier.signer.verify(str(body.context.get("token", "")), hub.clock.now())
    except LinkExpiredError:
        return _answer(f"This button has expired. {_UNCHANGED}")
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, AuthenticationError):
        return _answer(f"This button is not valid. {_UNCHANGED}", 403)
    user = await _linked_user(hub, token.account_id, body.user_id)
    if user is None:
        return _answer(
            "Your Mattermost account is not linked to a Preloop user "
            f"(ask an admin: preloop users link --mattermost {body.user_id}). {_UNCHANGED}"
        )
    try:
        decided = await _decide(hub, token, user)
    except PreloopError as exc:
        return _answer(f"{exc}. {_UNCHANGED}")
    if decided.status is ApprovalStatus.PENDING:
        votes = await hub.approvals.votes(decided.account_id, decided.id)
        approvals = sum(1 for v in votes if v.choice.value == "approve")
        return _answer(
            f"Your approval is recorded: {approvals} of {decided.required_approvals} so far; "
            "the call waits for the rest."
        )
    return Response({"update": await notifier.decided_post(decided)}, status_code=200)


async def _linked_user(hub: Hub, account_id: str, mattermost_user_id: str) -> User | None:
    if not mattermost_user_id:
        return None
    for user in await hub.storage.users.list(account_id):
        if user.identities.get("mattermost") == mattermost_user_id:
            return user
    return None


async def _decide(hub: Hub, token: ActionToken, user: User) -> ApprovalRequest:
    via = f"mattermost:{user.identities.get('mattermost', '')}"
    person = await hub.identity.caller_for_user(token.account_id, user.id, via=via)
    return await hub.approvals.decide(
        token.account_id,
        token.request_id,
        approver=person,
        approve=token.action == "approve",
        channel="mattermost",
    )


def _answer(text: str, status: int = 200) -> Response[dict[str, Any]]:
    return Response({"ephemeral_text": text}, status_code=status)


def mattermost_router() -> Router:
    return Router(path="/mattermost", route_handlers=[mattermost_action])
