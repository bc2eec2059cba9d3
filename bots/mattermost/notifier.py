"""The Mattermost channel: a post with Approve / Deny buttons in the workflow's channel.

The post goes to ``channel_settings["mattermost"]["channel"]`` (a channel id) of the workflow,
else to ``PRELOOP_MATTERMOST_CHANNEL_ID``. Its buttons call back ``{public_url}/mattermost/
actions`` (``bots/mattermost/actions.py``). Mattermost does not sign those callbacks, so
each button's ``context`` carries a signed token (``bots/mattermost/tokens.py``). ``settle``
rewrites the post with the outcome and no buttons. Where the posts are (channel id + post id)
is stored (``Storage.channel_messages``, ``bots._messages``), so any replica, also after a
restart, rewrites them.

``announce`` makes a plain post (an attachment coloured by severity, no buttons) in the same
channel; nothing is updated later, so nothing is recorded.

mattermostdriver is synchronous (requests): every call runs in a thread.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from bots._messages import PostedMessages, decider_shown
from bots.mattermost.posts import announcement_post, decided_post, details
from bots.mattermost.tokens import ACTION_PATH, Action, ActionSigner, ActionToken
from hub.clock import Clock
from hub.errors import ConfigError
from hub.notifier import Announcement, Notice
from hub.ports import ChannelMessageStore, UserStore
from hub.records import ApprovalRequest
from hub.settings import MattermostSettings


def driver_options(settings: MattermostSettings) -> dict[str, Any]:
    """mattermostdriver's options from ``PRELOOP_MATTERMOST_URL`` and the token."""
    parts = urlsplit(settings.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"PRELOOP_MATTERMOST_URL must be an http(s) URL, not {settings.url!r}")
    return {
        "scheme": parts.scheme,
        "url": parts.hostname,
        "port": parts.port or (443 if parts.scheme == "https" else 80),
        "basepath": parts.path.rstrip("/") + "/api/v4",
        "token": settings.token,
        "timeout": 30,
    }


class MattermostNotifier:
    """``hub.notifier.Notifier`` for the ``mattermost`` channel (mattermostdriver)."""

    channel = "mattermost"

    def __init__(
        self,
        settings: MattermostSettings,
        signer: ActionSigner,
        *,
        public_url: str,
        clock: Clock,
        link_seconds: int,
        users: UserStore,
        messages: ChannelMessageStore,
    ) -> None:
        self._settings = settings
        self._users = users
        from mattermostdriver import Driver  # requests: only where Mattermost is configured

        self._driver = Driver(driver_options(settings))
        self._logged_in = False
        self._lock = asyncio.Lock()
        self.signer = signer
        self._public_url = public_url.rstrip("/")
        self._clock = clock
        self._link_seconds = link_seconds
        self._messages = PostedMessages(messages, self.channel, clock)

    async def deliver(self, notice: Notice) -> None:
        request = notice.request
        channel_id = (
            notice.channel_settings.get("mattermost", {}).get("channel")
            or self._settings.channel_id
        )
        if not channel_id:
            raise ConfigError(
                "no Mattermost channel: set channel_settings.mattermost.channel on the workflow "
                "or PRELOOP_MATTERMOST_CHANNEL_ID"
            )

        async def post() -> tuple[str, str]:
            made = await self._call("create_post", self.compose(notice, channel_id))
            return str(made.get("channel_id") or channel_id), str(made["id"])

        await self._messages.post_once(request, escalation=notice.escalation, post=post)

    async def announce(self, announcement: Announcement) -> None:
        """One plain post in the workflow's channel (or the default one)."""
        channel_id = (
            announcement.channel_settings.get("mattermost", {}).get("channel")
            or self._settings.channel_id
        )
        if not channel_id:
            raise ConfigError(
                "no Mattermost channel: set channel_settings.mattermost.channel on the workflow "
                "or PRELOOP_MATTERMOST_CHANNEL_ID"
            )
        await self._call("create_post", announcement_post(announcement, channel_id))

    async def settle(self, request: ApprovalRequest) -> None:
        """Rewrite every post made for the request: the outcome, no buttons."""
        messages = await self._messages.of(request)
        if messages:
            decided = await self.decided_post(request)
            for message in messages:
                await self._call("patch_post", message.ts, decided)

    def compose(self, notice: Notice, channel_id: str) -> dict[str, Any]:
        """The post: the call's details and two buttons carrying signed tokens."""
        request = notice.request
        prefix = "Escalated approval" if notice.escalation else "Approval needed"
        names = ", ".join(r.email for r in notice.recipients) or "(nobody listed)"
        return {
            "channel_id": channel_id,
            "message": f"**{prefix}**: an agent wants to call `{request.server}/{request.tool}`.",
            "props": {
                "attachments": [
                    {
                        "fallback": f"{prefix}: {request.server}/{request.tool} ({request.id})",
                        "color": "#f2c744",
                        "text": details(request) + f"\n\nMay decide: {names}",
                        "actions": [
                            self._button(request, "approve", "Approve", "success"),
                            self._button(request, "deny", "Deny", "danger"),
                        ],
                    }
                ]
            },
        }

    def _button(
        self, request: ApprovalRequest, action: Action, label: str, style: str
    ) -> dict[str, Any]:
        latest = self._clock.now() + timedelta(seconds=self._link_seconds)
        expires = min(request.expires_at or latest, latest)
        token = self.signer.sign(
            ActionToken(
                account_id=request.account_id,
                request_id=request.id,
                action=action,
                expires_at=int(expires.timestamp()),
            )
        )
        return {
            "id": action,
            "name": label,
            "style": style,
            "integration": {
                "url": f"{self._public_url}{ACTION_PATH}",
                "context": {"request_id": request.id, "action": action, "token": token},
            },
        }

    async def decided_post(self, request: ApprovalRequest) -> dict[str, Any]:
        """The post once decided, naming the decider by email when they are a user."""
        return decided_post(request, await decider_shown(self._users, request))

    async def _call(self, operation: str, *args: Any) -> dict[str, Any]:
        async with self._lock:  # one requests session, used from one thread at a time
            if not self._logged_in:
                await asyncio.to_thread(self._driver.login)
                self._logged_in = True
            result: dict[str, Any] = await asyncio.to_thread(
                getattr(self._driver.posts, operation), *args
            )
            return result
