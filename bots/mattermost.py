"""The Mattermost channel: a post with Approve / Deny buttons in the workflow's channel.

The post goes to ``channel_settings["mattermost"]["channel"]`` (a channel id) of the workflow,
else to ``PRELOOP_MATTERMOST_CHANNEL_ID``. Its buttons call back ``{public_url}/mattermost/
actions`` (``server/mattermost_actions.py``). Mattermost does not sign those callbacks, so
each button's ``context`` carries an :class:`ActionToken` signed with the server's link secret
(under a key of its own: an email link is no Mattermost token, nor the reverse), naming the
request and the choice and expiring with the request. The token proves the button is ours;
the clicker's Mattermost ``user_id`` says who decides (their linked identity). ``settle``
rewrites the post with the outcome and no buttons. Where the posts are (channel id + post id)
is stored (``Storage.channel_messages``, ``bots._messages``), so any replica, also after a
restart, rewrites them.

``announce`` makes a plain post (an attachment coloured by severity, no buttons) in the same
channel; nothing is updated later, so nothing is recorded.

mattermostdriver is synchronous (requests): every call runs in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from bots._messages import PostedMessages
from hub.clock import Clock
from hub.errors import AuthenticationError, ConfigError, ValidationError
from hub.links import LinkExpiredError
from hub.notifier import Announcement, Notice
from hub.ports import ChannelMessageStore, UserStore
from hub.records import ApprovalRequest, ApprovalStatus
from hub.settings import MattermostSettings

ACTION_PATH = "/mattermost/actions"
Action = Literal["approve", "deny"]
_ARGS_CHARS = 3000
_KEY_LABEL = b"preloop mattermost action token v1"


class ActionToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What one button may do: this choice on this request, until ``expires_at``."""

    account_id: str
    request_id: str
    action: Action
    expires_at: int  # unix seconds


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ActionToken)


class ActionSigner:
    """Signs and checks button tokens (HMAC-SHA256 under a key derived from the link secret)."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValidationError("the link secret must be at least 32 characters")
        self._key = hmac.new(secret.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()

    def sign(self, token: ActionToken) -> str:
        payload = _b64(_encoder.encode(token))
        return f"{payload}.{self._signature(payload)}"

    def verify(self, text: str, now: datetime) -> ActionToken:
        """The token inside ``text``; ``AuthenticationError`` when this server did not issue
        it (tampered, cut short, another server's), ``LinkExpiredError`` when too old."""
        payload, dot, signature = text.partition(".")
        if (
            not dot
            or not text.isascii()
            or not hmac.compare_digest(signature, self._signature(payload))
        ):
            raise AuthenticationError("this button is not valid: its token was changed")
        try:
            token = _decoder.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (msgspec.DecodeError, binascii.Error, ValueError) as exc:
            raise AuthenticationError("this button is not valid") from exc
        if now.timestamp() >= token.expires_at:
            raise LinkExpiredError("this button has expired")
        return token

    def _signature(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


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
                        "text": _details(request) + f"\n\nMay decide: {names}",
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
        by = request.decided_by_name or request.decided_by or ""
        if by and not request.decided_by_name:
            user = await self._users.get(request.account_id, by)
            by = user.email if user is not None else by
        return decided_post(request, by)

    async def _call(self, operation: str, *args: Any) -> dict[str, Any]:
        async with self._lock:  # one requests session, used from one thread at a time
            if not self._logged_in:
                await asyncio.to_thread(self._driver.login)
                self._logged_in = True
            result: dict[str, Any] = await asyncio.to_thread(
                getattr(self._driver.posts, operation), *args
            )
            return result


_SEVERITY_COLOR = {"info": "#0969da", "warning": "#f2c744", "critical": "#cf222e"}


def announcement_post(announcement: Announcement, channel_id: str) -> dict[str, Any]:
    """An announcement as a post: the title, the lines, who it is for; no buttons."""
    names = ", ".join(r.email for r in announcement.recipients)
    text = "\n".join(f"- {_cell(line)}" for line in announcement.lines)
    if names:
        text += f"\n\nFor: {names}"
    return {
        "channel_id": channel_id,
        "message": f"**{_cell(announcement.title)}**",
        "props": {
            "attachments": [
                {
                    "fallback": announcement.title,
                    "color": _SEVERITY_COLOR.get(announcement.severity, "#8c959f"),
                    "text": text,
                    "actions": [],
                }
            ]
        },
    }


def decided_post(request: ApprovalRequest, by: str) -> dict[str, Any]:
    """The post once decided: who (``by``), when, the outcome; no buttons."""
    state = request.status.value
    who = f" by {by}" if by else ""
    when = (
        f" at {request.decided_at.strftime('%Y-%m-%d %H:%M:%S UTC')}" if request.decided_at else ""
    )
    color = {ApprovalStatus.APPROVED: "#1a7f37", ApprovalStatus.DENIED: "#cf222e"}.get(
        request.status, "#8c959f"
    )
    return {
        "message": f"**{state.capitalize()}**: `{request.server}/{request.tool}`{who}{when}.",
        "props": {
            "attachments": [
                {
                    "fallback": f"{request.server}/{request.tool} ({request.id}) {state}",
                    "color": color,
                    "text": _details(request) + f"\n\nOutcome: **{state}**{who}{when}.",
                    "actions": [],
                }
            ]
        },
    }


def _details(request: ApprovalRequest) -> str:
    """What an approver needs to decide (arguments already redacted), as Markdown."""
    args = json.dumps(request.args, indent=2, sort_keys=True, ensure_ascii=False)
    if len(args) > _ARGS_CHARS:
        args = args[:_ARGS_CHARS] + "\n… (truncated)"
    args = args.replace("```", "`\u200b``")  # cannot close the code block
    rows = [
        ("Tool", request.tool),
        ("Server", request.server),
        ("Asked by (key)", request.principal_key_id),
        ("Rule", f"{request.rule} {request.reason}".strip()),
        ("Justification", request.justification or "(none given)"),
        ("Approvals needed", str(request.required_approvals)),
        ("Request", request.id),
    ]
    table = "\n".join(f"| {label} | {_cell(value)} |" for label, value in rows)
    return f"| | |\n|---|---|\n{table}\n\nArguments:\n```json\n{args}\n```"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
