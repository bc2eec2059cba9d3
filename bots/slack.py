"""The Slack channel: a Block Kit message per request with Approve / Deny buttons.

``deliver`` posts to the workflow's Slack channel (``channel_settings.slack.channel``), else
``PRELOOP_SLACK_CHANNEL``, mentioning the recipients who linked a Slack id (``preloop users
link --slack U123``). The buttons' action ids carry the request id (``preloop_approve:<id>``,
``preloop_deny:<id>``) and their value the account id. Clicks come back signed by Slack to
``/slack/events`` (``server/slack_events.py``), which decides through
``ApprovalService.decide``; the notifier itself never decides.

``settle`` updates every message posted for the request (``chat.update``) with the outcome,
who decided and when. Where the messages are (channel id + ts) is stored
(``Storage.channel_messages``, ``bots._messages``), so any replica, also after a restart,
updates them. That only one process posts each notice is the dispatch's claim
(``hub.notification_dispatch``), not this notifier's business.

``announce`` posts a plain Block Kit message (a header, the lines, the recipients mentioned;
no buttons) to the same channel: nothing to update later, so nothing is recorded.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bots._messages import PostedMessages
from hub.clock import Clock
from hub.notifier import Announcement, Notice, Recipient
from hub.ports import ChannelMessageStore, UserStore
from hub.records import ApprovalRequest, ApprovalStatus

APPROVE_ACTION = "preloop_approve:"
DENY_ACTION = "preloop_deny:"
_TEXT_LIMIT = 3000  # Slack's limit for a section block's text
_FENCE = "```"


class SlackNotifier:
    """``hub.notifier.Notifier`` for the ``slack`` channel (slack_sdk's AsyncWebClient)."""

    channel = "slack"

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        default_channel: str,
        users: UserStore,
        messages: ChannelMessageStore,
        clock: Clock,
    ) -> None:
        self._client = client
        self._default_channel = default_channel
        self._users = users
        self._messages = PostedMessages(messages, self.channel, clock)

    async def deliver(self, notice: Notice) -> None:
        request = notice.request
        channel = notice.channel_settings.get("slack", {}).get("channel") or self._default_channel
        if not channel:
            raise ValueError(
                "no Slack channel: set channel_settings.slack.channel in the workflow "
                "or PRELOOP_SLACK_CHANNEL"
            )
        mentions = " ".join(
            f"<@{r.identities['slack']}>" for r in notice.recipients if r.identities.get("slack")
        )

        async def post() -> tuple[str, str]:
            answer = await self._client.chat_postMessage(
                channel=channel,
                text=_summary(request, notice.escalation),
                blocks=pending_blocks(request, escalation=notice.escalation, mentions=mentions),
            )
            return str(answer["channel"]), str(answer["ts"])

        await self._messages.post_once(request, escalation=notice.escalation, post=post)

    async def announce(self, announcement: Announcement) -> None:
        """One plain message in the workflow's channel (or the default one)."""
        channel = self._channel_of(announcement.channel_settings)
        mentions = _mentions(announcement.recipients)
        await self._client.chat_postMessage(
            channel=channel,
            text=announcement.title,
            blocks=announcement_blocks(announcement, mentions=mentions),
        )

    def _channel_of(self, settings: dict[str, dict[str, str]]) -> str:
        channel = settings.get("slack", {}).get("channel") or self._default_channel
        if not channel:
            raise ValueError(
                "no Slack channel: set channel_settings.slack.channel in the workflow "
                "or PRELOOP_SLACK_CHANNEL"
            )
        return channel

    async def settle(self, request: ApprovalRequest) -> None:
        """Replace the buttons of every message of the request with the outcome."""
        who = await self._who(request)
        for message in await self._messages.of(request):
            await self._client.chat_update(
                channel=message.conversation,
                ts=message.ts,
                text=_outcome(request, who),
                blocks=settled_blocks(request, who),
            )

    async def _who(self, request: ApprovalRequest) -> str:
        """The decider by the name recorded with the decision; for a decision recorded before
        names were, a person's email when it is a user id, else as recorded."""
        if request.decided_by_name:
            return request.decided_by_name
        decided_by = request.decided_by or ""
        if decided_by:
            user = await self._users.get(request.account_id, decided_by)
            if user is not None:
                return user.email
        return decided_by


def pending_blocks(
    request: ApprovalRequest, *, escalation: bool = False, mentions: str = ""
) -> list[dict[str, Any]]:
    """The message of a pending request: its details and the two buttons."""
    blocks = _detail_blocks(request, _summary(request, escalation))
    if mentions:
        blocks.append(_section(f"Approvers: {mentions}"))
    blocks.append(
        {
            "type": "actions",
            "block_id": "preloop_decision",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE_ACTION + request.id,
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "value": request.account_id,
                },
                {
                    "type": "button",
                    "action_id": DENY_ACTION + request.id,
                    "text": {"type": "plain_text", "text": "Deny"},
                    "style": "danger",
                    "value": request.account_id,
                },
            ],
        }
    )
    return blocks


_SEVERITY_MARK = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}


def announcement_blocks(announcement: Announcement, *, mentions: str = "") -> list[dict[str, Any]]:
    """An announcement: its title, its lines, who it is for; no buttons."""
    mark = _SEVERITY_MARK.get(announcement.severity, "")
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": announcement.title[:150]}},
        _section(f"{mark} {_escape(announcement.text)}".strip()),
    ]
    if mentions:
        blocks.append(_section(f"For: {mentions}"))
    return blocks


def _mentions(recipients: tuple[Recipient, ...]) -> str:
    return " ".join(f"<@{r.identities['slack']}>" for r in recipients if r.identities.get("slack"))


def settled_blocks(request: ApprovalRequest, who: str) -> list[dict[str, Any]]:
    """The message once decided: the details and the outcome, no buttons."""
    blocks = _detail_blocks(request, f"{request.server}/{request.tool}")
    blocks.append(_section(_outcome(request, who)))
    return blocks


def _detail_blocks(request: ApprovalRequest, title: str) -> list[dict[str, Any]]:
    fields = [
        ("Tool", request.tool),
        ("Server", request.server),
        ("Asked by (key)", request.principal_key_id),
        ("Rule", f"{request.rule} {request.reason}".strip() or "-"),
        ("Expires", _when(request.expires_at) if request.expires_at else "never"),
        ("Request", request.id),
    ]
    return [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{label}*\n{_escape(value)}"[:2000]}
                for label, value in fields
            ],
        },
        _section(f"*Justification*\n{_escape(request.justification or '(none given)')}"),
        _section(f"*Arguments*\n{arguments_text(request.args)}"),
    ]


def arguments_text(args: dict[str, Any]) -> str:
    """The (already redacted) arguments as pretty JSON in a code block, cut to fit a block."""
    pretty = _escape(json.dumps(args, indent=2, sort_keys=True, ensure_ascii=False))
    room = _TEXT_LIMIT - len("*Arguments*\n") - 2 * len(_FENCE)
    if len(pretty) > room:
        cut = "\n… (truncated)"
        pretty = pretty[: room - len(cut)]
        pretty = pretty[: pretty.rfind("&")] if pretty.rfind("&") > pretty.rfind(";") else pretty
        pretty += cut
    return f"{_FENCE}{pretty}{_FENCE}"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:_TEXT_LIMIT]}}


def _summary(request: ApprovalRequest, escalation: bool) -> str:
    prefix = "Escalated approval" if escalation else "Approval needed"
    return f"{prefix}: {request.server}/{request.tool}"


def _outcome(request: ApprovalRequest, who: str) -> str:
    state = request.status.value
    text = f"{request.server}/{request.tool} was *{state}*"
    if request.status is not ApprovalStatus.PENDING and who:
        text += f" by {_escape(who)}"
    if request.decided_at:
        text += f" at {_when(request.decided_at)}"
    if request.comment:
        text += f": {_escape(request.comment)}"
    return text


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _escape(text: str) -> str:
    """Slack's three control characters in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
