"""The notifier port: how an approval request reaches people on a channel.

    ApprovalService ─ ApprovalRequested / ApprovalEscalated / ApprovalDecided ─▶ event bus
        ─▶ notification dispatch: resolves the workflow's channels and the recipients
           (approvers, or escalation approvers) with their linked identities
           ─▶ Notifier.deliver(notice)     one per channel named by the workflow
           ─▶ Notifier.settle(request)     after any decision, from any channel

Each channel (Slack, Mattermost, email, push, ...) lives in ``bots/`` and implements
``Notifier``. A notifier never decides a request: people decide through the channel's
callback, which goes through ``ApprovalService.decide`` like every other channel. A failing
notifier is retried and audited by the dispatch and never blocks the request or the other
channels.

Besides requests, the dispatch passes on announcements: facts that people should know and
nobody decides (a gateway budget past its soft limit, ``hub.model_gateway.notices``):

    BudgetCrossed (bus "system") ─▶ the budget's workflow: its channels and approvers
        ─▶ Notifier.announce(announcement)   one per channel, once across processes

An announcement is plain text, no buttons, and carries nothing secret.
"""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

from hub.records import ApprovalRequest


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    """A person who may decide, with the identities they linked (``preloop users link``)."""

    user_id: str
    email: str
    name: str = ""
    # channel -> that channel's id of this person, e.g. {"slack": "U123", "mattermost": "abc"}
    identities: dict[str, str] = {}


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """What a channel is asked to deliver: a pending request and who may decide it."""

    request: ApprovalRequest
    recipients: tuple[Recipient, ...]
    escalation: bool = False  # the request waited too long: the escalation approvers
    # The workflow's settings per channel (``channel_settings`` in the policy), e.g.
    # {"slack": {"channel": "#deploys"}}: a notifier reads its own entry.
    channel_settings: dict[str, dict[str, str]] = {}


Severity = Literal["info", "warning", "critical"]


class Announcement(msgspec.Struct, frozen=True, kw_only=True):
    """Something to tell people that nobody decides: a title and lines of plain text."""

    # What it is about, once: e.g. ``budget:<id>:<period>``. The dispatch claims it per
    # channel (in place of a request id), and a channel that retries skips who already got it.
    key: str
    account_id: str
    title: str
    lines: tuple[str, ...] = ()
    severity: Severity = "info"
    recipients: tuple[Recipient, ...] = ()
    # The workflow's settings per channel, as in ``Notice.channel_settings``.
    channel_settings: dict[str, dict[str, str]] = {}

    @property
    def text(self) -> str:
        """The lines, one per line (for channels without structure)."""
        return "\n".join(self.lines)


class Notifier(Protocol):
    """One delivery channel (implemented in ``bots/``)."""

    @property
    def channel(self) -> str:
        """The channel's name as workflows list it (``slack``, ``email``, ``push``, ...)."""
        ...

    async def deliver(self, notice: Notice) -> None:
        """Tell the recipients about the pending request. Raises on failure (the dispatch
        retries and audits); must be safe to call again for the same notice."""
        ...

    async def settle(self, request: ApprovalRequest) -> None:
        """The request was decided (or expired, or withdrawn): update what was sent, e.g.
        the chat message now says who decided. Raises on failure."""
        ...

    async def announce(self, announcement: Announcement) -> None:
        """Tell the recipients (or the workflow's channel) ``announcement``, plain, with no
        buttons. Raises on failure (the dispatch retries and audits); a retry must not tell
        again whoever was told already."""
        ...
