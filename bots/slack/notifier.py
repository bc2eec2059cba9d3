"""The Slack channel: a Block Kit message per request with Approve / Deny buttons.

``deliver`` posts to the workflow's Slack channel (``channel_settings.slack.channel``), else
``PRELOOP_SLACK_CHANNEL``, mentioning the recipients who linked a Slack id (``preloop users
link --slack U123``). The buttons' action ids carry the request id (``preloop_approve:<id>``,
``preloop_deny:<id>``, ``bots/slack/wire.py``) and their value the account id. Clicks come
back to the handlers in ``bots/slack/interactions.py``, which decide through
``hub.channel_decisions``; the notifier itself never decides. The messages' blocks are built
in ``bots/slack/blocks.py``.

``settle`` updates every message posted for the request (``chat.update``) with the outcome,
who decided and when. Where the messages are (channel id + ts) is stored
(``Storage.channel_messages``, ``bots._messages``), so any replica, also after a restart,
updates them. That only one process posts each notice is the dispatch's claim
(``hub.notification_dispatch``), not this notifier's business.

``announce`` posts a plain Block Kit message (a header, the lines, the recipients mentioned;
no buttons) to the same channel: nothing to update later, so nothing is recorded.
"""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bots._messages import PostedMessages, decider_shown
from bots.slack.blocks import (
    announcement_blocks,
    mentions_of,
    outcome_text,
    pending_blocks,
    settled_blocks,
    summary,
)
from hub.clock import Clock
from hub.notifier import Announcement, Notice
from hub.ports import ChannelMessageStore, UserStore
from hub.records import ApprovalRequest


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
        channel = self._channel_of(notice.channel_settings)
        mentions = mentions_of(notice.recipients)

        async def post() -> tuple[str, str]:
            answer = await self._client.chat_postMessage(
                channel=channel,
                text=summary(request, notice.escalation),
                blocks=pending_blocks(request, escalation=notice.escalation, mentions=mentions),
            )
            return str(answer["channel"]), str(answer["ts"])

        await self._messages.post_once(request, escalation=notice.escalation, post=post)

    async def announce(self, announcement: Announcement) -> None:
        """One plain message in the workflow's channel (or the default one)."""
        channel = self._channel_of(announcement.channel_settings)
        mentions = mentions_of(announcement.recipients)
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
        who = await decider_shown(self._users, request)
        for message in await self._messages.of(request):
            await self._client.chat_update(
                channel=message.conversation,
                ts=message.ts,
                text=outcome_text(request, who),
                blocks=settled_blocks(request, who),
            )
