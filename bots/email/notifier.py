"""The email channel: HTML and plain-text mail with per-recipient approve/deny links.

Each recipient gets their own pair of links (``hub.links``): signed with the server's link
secret, naming the request, the recipient and the choice, expiring with the request (or after
``PRELOOP_NOTIFICATIONS_LINK_SECONDS``, whichever is first) and usable once. A link opens a
confirmation page on the server (``bots/email/pages.py``); only that page's POST decides,
as the recipient, through ``ApprovalService.decide``. Mail cannot be changed once sent, so
``settle`` sends nothing: the link page shows the outcome.

Mail goes to the address the person linked (``preloop users link --email``), else their user
email. The arguments shown are the request's, already redacted.

``announce`` sends each recipient a plain-text mail (the title as subject, the lines as body;
no links). A retried announcement skips the recipients already mailed.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from hub.clock import Clock
from hub.links import Choice, DecisionLink, LinkSigner, new_link_id
from hub.notifier import Announcement, Notice, Recipient
from hub.records import ApprovalRequest
from hub.settings import SmtpSettings

LINK_PATH = "/email/links/"
_ARGS_CHARS = 4000
_ANNOUNCED_KEPT = 1000  # announcements remembered for retries (then the oldest is forgotten)


class EmailNotifier:
    """``hub.notifier.Notifier`` for the ``email`` channel (aiosmtplib)."""

    channel = "email"

    def __init__(
        self,
        smtp: SmtpSettings,
        signer: LinkSigner,
        *,
        public_url: str,
        clock: Clock,
        link_seconds: int,
    ) -> None:
        self._smtp = smtp
        self._signer = signer
        self._public_url = public_url.rstrip("/")
        self._clock = clock
        self._link_seconds = link_seconds
        # (request, user, escalation) already mailed: a retried notice skips them
        self._sent: set[tuple[str, str, bool]] = set()
        # announcement key -> the users it was mailed to (a retry skips them), oldest first
        self._announced: dict[str, set[str]] = {}

    async def deliver(self, notice: Notice) -> None:
        for recipient in notice.recipients:
            key = (notice.request.id, recipient.user_id, notice.escalation)
            if key in self._sent:
                continue
            await self._send(self.compose(notice, recipient))
            self._sent.add(key)

    async def announce(self, announcement: Announcement) -> None:
        """A plain mail to each recipient (none: nothing to send)."""
        mailed = self._announced.setdefault(announcement.key, set())
        while len(self._announced) > _ANNOUNCED_KEPT:
            del self._announced[next(iter(self._announced))]
        for recipient in announcement.recipients:
            if recipient.user_id in mailed:
                continue
            await self._send(self.compose_announcement(announcement, recipient))
            mailed.add(recipient.user_id)

    def compose_announcement(
        self, announcement: Announcement, recipient: Recipient
    ) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = announcement.title
        message["From"] = self._smtp.sender
        message["To"] = recipient.identities.get("email") or recipient.email
        message["Message-ID"] = make_msgid(domain="preloop")
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(
            "\n".join((announcement.title, "", *announcement.lines, "", "-- Preloop"))
        )
        return message

    async def settle(self, request: ApprovalRequest) -> None:
        """Sent mail cannot be updated; the link page shows who decided."""
        self._sent = {k for k in self._sent if k[0] != request.id}

    def compose(self, notice: Notice, recipient: Recipient) -> EmailMessage:
        """The message for one recipient, with their own links."""
        request = notice.request
        approve, deny = (
            self._link(request, recipient, "approve"),
            self._link(request, recipient, "deny"),
        )
        what = f"{request.server}/{request.tool}"
        message = EmailMessage()
        prefix = "Escalated approval" if notice.escalation else "Approval needed"
        message["Subject"] = f"{prefix}: {what} ({request.id})"
        message["From"] = self._smtp.sender
        message["To"] = recipient.identities.get("email") or recipient.email
        message["Message-ID"] = make_msgid(domain="preloop")
        message["Auto-Submitted"] = "auto-generated"
        rows = _details(request)
        expires = _when(request.expires_at)
        text = [
            f"{prefix}: an agent wants to call {what}.",
            "",
            *(f"{label}: {value}" for label, value in rows),
            "",
            f"Approve: {approve}",
            f"Deny:    {deny}",
            "",
            "Each link opens a page that asks you to confirm. The links are yours alone, work",
            f"once and expire {expires}.",
        ]
        message.set_content("\n".join(text))
        message.add_alternative(_html(prefix, what, rows, approve, deny, expires), subtype="html")
        return message

    def _link(self, request: ApprovalRequest, recipient: Recipient, choice: Choice) -> str:
        latest = self._clock.now() + timedelta(seconds=self._link_seconds)
        expires = min(request.expires_at or latest, latest)
        token = self._signer.sign(
            DecisionLink(
                id=new_link_id(),
                account_id=request.account_id,
                request_id=request.id,
                user_id=recipient.user_id,
                choice=choice,
                expires_at=int(expires.timestamp()),
            )
        )
        return f"{self._public_url}{LINK_PATH}{token}"

    async def _send(self, message: EmailMessage) -> None:
        import aiosmtplib  # only where mail is sent: the link pages import this package too

        smtp = self._smtp
        await aiosmtplib.send(
            message,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username or None,
            password=smtp.password or None,
            use_tls=smtp.security == "tls",
            start_tls=smtp.security == "starttls",
            timeout=smtp.timeout_seconds,
        )


def _details(request: ApprovalRequest) -> list[tuple[str, str]]:
    """What an approver needs to decide, as (label, text) rows."""
    args = json.dumps(request.args, indent=2, sort_keys=True, ensure_ascii=False)
    if len(args) > _ARGS_CHARS:
        args = args[:_ARGS_CHARS] + "\n… (truncated)"
    return [
        ("Tool", request.tool),
        ("Server", request.server),
        ("Asked by (key)", request.principal_key_id),
        ("Rule", f"{request.rule} {request.reason}".strip()),
        ("Justification", request.justification or "(none given)"),
        ("Arguments", args),
        ("Approvals needed", str(request.required_approvals)),
        ("Request", request.id),
    ]


def _when(at: datetime | None) -> str:
    return f"at {at.strftime('%Y-%m-%d %H:%M:%S UTC')}" if at else "when the request is decided"


def _html(
    title: str, what: str, rows: list[tuple[str, str]], approve: str, deny: str, expires: str
) -> str:
    e = html.escape
    body = "".join(
        f'<tr><th align="left" valign="top">{e(label)}</th>'
        f'<td><pre style="margin:0;white-space:pre-wrap">{e(value)}</pre></td></tr>'
        for label, value in rows
    )
    return (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<h2>{e(title)}: {e(what)}</h2>"
        f'<table cellpadding="4">{body}</table>'
        f'<p><a href="{e(approve)}" style="padding:8px 16px;background:#1a7f37;color:#fff;'
        f'text-decoration:none">Approve</a> &nbsp; '
        f'<a href="{e(deny)}" style="padding:8px 16px;background:#cf222e;color:#fff;'
        f'text-decoration:none">Deny</a></p>'
        "<p>Each link opens a page that asks you to confirm. The links are yours alone, work "
        f"once and expire {e(expires)}.</p></body></html>"
    )
