"""Slack's callbacks: the handlers of buttons, modals and ``/preloop``, in two modes.

    HTTP mode      the server mounts :class:`SlackEvents` at ``/slack/events``
                   (``server/channel_routes.py``): the route hands over the method, query,
                   headers and body bytes and sends back the :class:`~bots._replies.Reply`.
                   The path is public: Slack signs each request with the app's signing
                   secret and bolt checks the signature and its timestamp (at most 5 minutes
                   old) before any handler runs; anything else gets 401 and changes nothing.
    Socket Mode    the ``preloop bots`` worker opens a WebSocket to Slack with the app-level
                   token (``bots/slack/socket_mode.py``); the token is the proof, there is no
                   signature. For installs Slack cannot reach.

Both build their app with :func:`slack_app`, so the same :class:`SlackHandlers` answer:

    Approve button   the clicker's Slack id → ``ChannelDecisions.decide`` (hub/channel_decisions:
                     the user who linked it, their approver role, ``ApprovalService.decide``
                     with channel ``slack``: quorum, listed approvers, no self-approval)
    Deny button      ``ChannelDecisions.check_may_decide``, then a modal (``views.open``)
                     asking a reason; its submission denies with that reason as the comment
    /preloop         the pending requests the caller may decide
                     (``ChannelDecisions.pending_for``) and how many others are pending
                     (ephemeral)

A click that may not decide (unlinked, not an approver, the agent's own user, already
decided) gets an ephemeral refusal (``chat.postEphemeral``) and changes nothing. The
message itself is updated by the notifier's ``settle`` (``bots/slack/notifier.py``) once
decided.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bots._replies import Reply, text_reply
from bots.slack.blocks import deny_modal
from bots.slack.wire import (
    APPROVE_ACTION,
    DENY_ACTION,
    DENY_VIEW,
    EVENTS_PATH,
    MAX_COMMENT,
    REASON_BLOCK,
    REASON_INPUT,
)
from hub.channel_decisions import ChannelDecisions, ChannelIdentity, PendingForPerson
from hub.deep_json import too_deep
from hub.errors import PreloopError
from hub.records import ApprovalStatus
from hub.settings import SlackSettings

log = logging.getLogger("preloop.slack")

_LISTED = 20
_SCANNED = 500  # pending requests /preloop looks at


class SlackEvents:
    """``/slack/events`` in HTTP mode: a request's raw pieces in, a reply out (what bolt's
    ASGI adapter did, without ASGI): a POST to the path is dispatched to the bolt app, which
    verifies Slack's signature first; anything else is 404."""

    def __init__(self, decisions: ChannelDecisions, settings: SlackSettings) -> None:
        self._app = slack_app(decisions, settings)

    async def handle(
        self, *, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        if method != "POST" or path != EVENTS_PATH:
            return text_reply("Not Found", 404)
        try:
            request = AsyncBoltRequest(
                body=body.decode("utf-8", errors="replace"), query=query, headers=dict(headers)
            )
            answer = await self._app.async_dispatch(request)
        except RecursionError:  # bolt parses the body (unsigned yet) before verifying it
            return text_reply(too_deep("the request body").message, 400)
        headers_out = {
            name: values[0]
            for name, values in answer.headers.items()
            if values and name.lower() != "content-length"
        }
        media_type = headers_out.pop("content-type", "text/plain;charset=utf-8")
        return Reply(
            status=answer.status,
            body=answer.body.encode("utf-8"),
            media_type=media_type,
            headers=headers_out,
        )


def slack_app(
    decisions: ChannelDecisions, settings: SlackSettings, *, socket_mode: bool = False
) -> AsyncApp:
    """The bolt app with the handlers registered: signed HTTP requests, or (``socket_mode``)
    envelopes from the worker's own connection, which carry no signature."""
    client = AsyncWebClient(token=settings.bot_token, base_url=settings.api_url)
    app = AsyncApp(
        signing_secret="" if socket_mode else settings.signing_secret,
        request_verification_enabled=not socket_mode,
        client=client,
        process_before_response=True,  # handlers finish before the answer: nothing is lost
    )
    SlackHandlers(decisions).register(app)
    return app


def clicker(slack_user: str) -> ChannelIdentity:
    """A Slack user as the channel identity a vote is cast through."""
    return ChannelIdentity(channel="slack", external_id=slack_user, label="Slack user")


class SlackHandlers:
    """The handlers both modes register, bound to the channel decisions of one hub."""

    def __init__(self, decisions: ChannelDecisions) -> None:
        self._decisions = decisions

    def register(self, app: AsyncApp) -> None:
        app.action(re.compile("^" + re.escape(APPROVE_ACTION)))(self.approve)
        app.action(re.compile("^" + re.escape(DENY_ACTION)))(self.deny)
        app.view(DENY_VIEW)(self.deny_submitted)
        app.command("/preloop")(self.pending)

    async def approve(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        account_id, request_id = _clicked(body, APPROVE_ACTION)
        try:
            voted = await self._decisions.decide(
                account_id, request_id, clicker(_slack_user(body)), approve=True
            )
        except PreloopError as exc:
            await _refuse(client, body, str(exc))
            return
        if voted.request.status is ApprovalStatus.PENDING:
            await _ephemeral(
                client,
                body,
                f"Your approval is recorded: {voted.approvals} of "
                f"{voted.request.required_approvals} so far.",
            )

    async def deny(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """Check that the clicker may decide, then ask for a reason in a modal."""
        await ack()
        account_id, request_id = _clicked(body, DENY_ACTION)
        try:
            request = await self._decisions.check_may_decide(
                account_id, request_id, clicker(_slack_user(body))
            )
        except PreloopError as exc:
            await _refuse(client, body, str(exc))
            return
        metadata = {
            "account_id": account_id,
            "request_id": request_id,
            "channel": (body.get("channel") or {}).get("id", ""),
        }
        await client.views_open(
            trigger_id=body["trigger_id"],
            view=deny_modal(f"{request.server}/{request.tool}", json.dumps(metadata)),
        )

    async def deny_submitted(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        """Deny with the reason given; a refusal is shown in the modal, nothing changes."""
        values = view.get("state", {}).get("values", {})
        reason = str(values.get(REASON_BLOCK, {}).get(REASON_INPUT, {}).get("value") or "")
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
            await self._decisions.decide(
                str(metadata["account_id"]),
                str(metadata["request_id"]),
                clicker(_slack_user(body)),
                approve=False,
                comment=reason[:MAX_COMMENT],
            )
        except (PreloopError, KeyError, ValueError, TypeError) as exc:
            await ack(response_action="errors", errors={REASON_BLOCK: _said(exc)})
            return
        await ack()

    async def pending(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """``/preloop``: the pending requests the caller may decide (only they see it), and
        how many others are pending that they may not."""
        who = clicker(str(body.get("user_id", "")))
        found = await self._decisions.find_person(who)
        if found is None:
            await ack(text="Your Slack user is not linked to a Preloop user.")
            return
        account_id, user = found
        listing = await self._decisions.pending_for(account_id, user, who, scan=_SCANNED)
        await ack(text=_pending_text(listing), response_type="ephemeral")


def _pending_text(listing: PendingForPerson) -> str:
    mine = listing.mine
    lines = [f"• `{r.id}` {r.server}/{r.tool} (workflow {r.workflow})" for r in mine[:_LISTED]]
    if len(mine) > _LISTED:
        lines.append(f"… and {len(mine) - _LISTED} more")
    text = (
        "\n".join(["Pending requests you may decide:", *lines])
        if lines
        else ("Nothing pending that you may decide.")
    )
    if listing.others:
        some = f"{listing.others}+" if listing.limited else str(listing.others)
        noun = "request" if listing.others == 1 else "requests"
        text += f"\n{some} other pending {noun} you may not decide."
    return text


def _clicked(body: dict[str, Any], prefix: str) -> tuple[str, str]:
    """(account id, request id) of the clicked button."""
    action = (body.get("actions") or [{}])[0]
    return str(action.get("value", "")), str(action.get("action_id", "")).removeprefix(prefix)


def _slack_user(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id", ""))


async def _refuse(client: AsyncWebClient, body: dict[str, Any], reason: str) -> None:
    await _ephemeral(client, body, f"Refused: {reason}. Nothing was changed.")


async def _ephemeral(client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
    channel = (body.get("channel") or {}).get("id")
    if channel:
        await client.chat_postEphemeral(channel=channel, user=_slack_user(body), text=text)


def _said(exc: Exception) -> str:
    if not isinstance(exc, PreloopError):
        return "This form does not name a request. Nothing was changed."
    return f"Refused: {exc}. Nothing was changed."[:MAX_COMMENT]
