"""Slack's callbacks: the handlers of buttons, modals and ``/preloop``, in two modes.

    HTTP mode      slack-bolt's ``AsyncApp`` mounted at ``/slack/events`` in every server.
                   The path is public: Slack signs each request with the app's signing
                   secret and bolt checks the signature and its timestamp (at most 5 minutes
                   old) before any handler runs; anything else gets 401 and changes nothing.
    Socket Mode    the ``preloop bots`` worker opens a WebSocket to Slack with the app-level
                   token (``server/slack_socket.py``); the token is the proof, there is no
                   signature. For installs Slack cannot reach.

Both build their app with :func:`slack_app`, so the same :class:`SlackHandlers` answer:

    Approve button   the clicker's Slack id → the Preloop user who linked it → their Caller
                     (``IdentityService.caller_for_user``) → ``ApprovalService.decide``
                     (channel ``slack``: quorum, listed approvers, no self-approval apply)
    Deny button      the same checks, then a modal (``views.open``) asking a reason; its
                     submission denies with that reason as the comment
    /preloop         the pending requests the caller may decide
                     (``ApprovalService.check_may_decide``) and how many others are pending
                     (ephemeral)

A click that may not decide (unlinked, not an approver, the agent's own user, already
decided) gets an ephemeral refusal (``chat.postEphemeral``) and changes nothing. The
message itself is updated by the notifier's ``settle`` (``bots/slack.py``) once decided.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import APPROVE_ACTION, DENY_ACTION
from hub.approvals import ApprovalService
from hub.errors import PermissionDeniedError, PreloopError
from hub.keys import Caller
from hub.records import ApprovalRequest, ApprovalStatus, User
from hub.settings import SlackSettings
from server.hub_services import Hub

log = logging.getLogger("preloop.slack")

EVENTS_PATH = "/slack/events"
DENY_VIEW = "preloop_deny"
_REASON_BLOCK = "reason"
_REASON_INPUT = "reason_input"
_MAX_COMMENT = 1000
_LISTED = 20
_SCANNED = 500  # pending requests /preloop looks at


def slack_handler(hub: Hub, settings: SlackSettings) -> AsyncSlackRequestHandler:
    """The ASGI app for ``/slack/events``, its handlers bound to ``hub``."""
    return AsyncSlackRequestHandler(slack_app(hub, settings), path=EVENTS_PATH)


def slack_app(hub: Hub, settings: SlackSettings, *, socket_mode: bool = False) -> AsyncApp:
    """The bolt app with the handlers registered: signed HTTP requests, or (``socket_mode``)
    envelopes from the worker's own connection, which carry no signature."""
    client = AsyncWebClient(token=settings.bot_token, base_url=settings.api_url)
    app = AsyncApp(
        signing_secret="" if socket_mode else settings.signing_secret,
        request_verification_enabled=not socket_mode,
        client=client,
        process_before_response=True,  # handlers finish before the answer: nothing is lost
    )
    SlackHandlers(hub).register(app)
    return app


class SlackHandlers:
    """The handlers both modes register, bound to one hub."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def register(self, app: AsyncApp) -> None:
        app.action(re.compile("^" + re.escape(APPROVE_ACTION)))(self.approve)
        app.action(re.compile("^" + re.escape(DENY_ACTION)))(self.deny)
        app.view(DENY_VIEW)(self.deny_submitted)
        app.command("/preloop")(self.pending)

    async def approve(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        account_id, request_id = _clicked(body, APPROVE_ACTION)
        try:
            caller = await self._caller(account_id, _slack_user(body))
            decided = await self._hub.approvals.decide(
                account_id, request_id, approver=caller, approve=True, channel="slack"
            )
        except PreloopError as exc:
            await _refuse(client, body, str(exc))
            return
        if decided.status is ApprovalStatus.PENDING:
            votes = await self._hub.approvals.votes(account_id, request_id)
            approvals = sum(1 for v in votes if v.choice.value == "approve")
            await _ephemeral(
                client,
                body,
                f"Your approval is recorded: {approvals} of {decided.required_approvals} so far.",
            )

    async def deny(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """Check that the clicker may decide, then ask for a reason in a modal."""
        await ack()
        account_id, request_id = _clicked(body, DENY_ACTION)
        try:
            caller = await self._caller(account_id, _slack_user(body))
            request = await self._hub.approvals.get(account_id, request_id)
            if request.status is not ApprovalStatus.PENDING:
                raise PermissionDeniedError(f"{request_id} is already {request.status.value}")
            await self._hub.approvals.check_may_decide(request, caller)
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
            view=_deny_modal(f"{request.server}/{request.tool}", json.dumps(metadata)),
        )

    async def deny_submitted(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        """Deny with the reason given; a refusal is shown in the modal, nothing changes."""
        values = view.get("state", {}).get("values", {})
        reason = str(values.get(_REASON_BLOCK, {}).get(_REASON_INPUT, {}).get("value") or "")
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
            caller = await self._caller(str(metadata.get("account_id", "")), _slack_user(body))
            await self._hub.approvals.decide(
                str(metadata["account_id"]),
                str(metadata["request_id"]),
                approver=caller,
                approve=False,
                comment=reason[:_MAX_COMMENT],
                channel="slack",
            )
        except (PreloopError, KeyError, ValueError, TypeError) as exc:
            await ack(response_action="errors", errors={_REASON_BLOCK: _said(exc)})
            return
        await ack()

    async def pending(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """``/preloop``: the pending requests the caller may decide (only they see it), and
        how many others are pending that they may not."""
        slack_user = str(body.get("user_id", ""))
        for account in await self._hub.storage.accounts.list():
            user = await self._user(account.id, slack_user)
            if user is not None:
                break
        else:
            await ack(text="Your Slack user is not linked to a Preloop user.")
            return
        await ack(text=await self._pending_text(account.id, user), response_type="ephemeral")

    async def _pending_text(self, account_id: str, user: User) -> str:
        approvals = self._hub.approvals
        waiting = await approvals.list(account_id, status=ApprovalStatus.PENDING, limit=_SCANNED)
        try:
            caller: Caller | None = await self._hub.identity.caller_for_user(
                account_id, user.id, via=_via(user)
            )
        except PreloopError:  # no approver or admin key: decides nothing
            caller = None
        mine: list[ApprovalRequest] = []
        for request in waiting:
            if caller is not None and await _may_decide(approvals, request, caller):
                mine.append(request)
        others = len(waiting) - len(mine)
        lines = [f"• `{r.id}` {r.server}/{r.tool} (workflow {r.workflow})" for r in mine[:_LISTED]]
        if len(mine) > _LISTED:
            lines.append(f"… and {len(mine) - _LISTED} more")
        text = (
            "\n".join(["Pending requests you may decide:", *lines])
            if lines
            else ("Nothing pending that you may decide.")
        )
        if others:
            some = f"{others}+" if len(waiting) >= _SCANNED else str(others)
            noun = "request" if others == 1 else "requests"
            text += f"\n{some} other pending {noun} you may not decide."
        return text

    async def _user(self, account_id: str, slack_user: str) -> User | None:
        if not slack_user:
            return None
        for user in await self._hub.identity.list_users(account_id):
            if user.identities.get("slack") == slack_user:
                return user
        return None

    async def _caller(self, account_id: str, slack_user: str) -> Caller:
        user = await self._user(account_id, slack_user)
        if user is None:
            raise PermissionDeniedError(
                "your Slack user is not linked to a Preloop user (preloop users link --slack)"
            )
        return await self._hub.identity.caller_for_user(account_id, user.id, via=_via(user))


def _via(user: User) -> str:
    """The credential a Slack vote comes through: the clicker's linked Slack id."""
    return f"slack:{user.identities.get('slack', '')}"


async def _may_decide(approvals: ApprovalService, request: ApprovalRequest, caller: Caller) -> bool:
    try:
        await approvals.check_may_decide(request, caller)
    except PermissionDeniedError:
        return False
    return True


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
    return f"Refused: {exc}. Nothing was changed."[:_MAX_COMMENT]


def _deny_modal(what: str, metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": DENY_VIEW,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Deny the call"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"Deny {what}?"[:3000]},
            },
            {
                "type": "input",
                "block_id": _REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": _REASON_INPUT,
                    "multiline": True,
                    "max_length": _MAX_COMMENT,
                },
            },
        ],
    }
