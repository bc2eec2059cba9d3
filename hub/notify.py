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
"""

from __future__ import annotations

from typing import Protocol

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
