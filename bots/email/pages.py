"""The pages behind email approve/deny links (``bots/email/notifier.py`` sends them).

    GET  /email/links/{token}   a confirmation page with the call's details; changes nothing
                                (mail scanners and link previews follow links)
    POST /email/links/{token}   the page's button: records the link as used (once), then
                                decides as the link's recipient through ApprovalService.decide

The token is the credential (no API key): signed, per recipient, expiring, single-use
(``hub.links``). Every refusal is an HTML page with a 4xx status and changes nothing: a
tampered or foreign link (403), an expired one (410), a used one or a request already decided
(409), a recipient who may not decide (403). Pages are never cached and never send the token
on as a referrer.

The server mounts :class:`EmailLinkPages` there (``server/channel_routes.py``): the routes
hand over the token and the posted form and send back the :class:`~bots._replies.Reply`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping

from bots._replies import Reply, html_reply
from hub.approvals import VoteResult
from hub.channel_decisions import ChannelDecisions
from hub.clock import Clock
from hub.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    PreloopError,
)
from hub.links import DecisionLink, LinkExpiredError, LinkSigner
from hub.ports import ApiKeyStore, UsedLinkStore, UserStore
from hub.records import ApprovalRequest, ApprovalStatus

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
_MAX_COMMENT = 1000
_UNCHANGED = "Nothing was changed."


class EmailLinkPages:
    """``GET`` shows what a link would decide, ``POST`` decides; both answer a page."""

    def __init__(
        self,
        decisions: ChannelDecisions,
        links: LinkSigner,
        *,
        used_links: UsedLinkStore,
        users: UserStore,
        api_keys: ApiKeyStore,
        clock: Clock,
    ) -> None:
        self._decisions = decisions
        self._approvals = decisions.approvals
        self._links = links
        self._used_links = used_links
        self._users = users
        self._api_keys = api_keys
        self._clock = clock

    async def confirm(self, token: str) -> Reply:
        """Show what the link would decide and a button to confirm; decide nothing."""
        try:
            link = self._links.verify(token, self._clock.now())
            approval = await self._approvals.get(link.account_id, link.request_id)
        except PreloopError as exc:
            return _refusal(exc)
        if approval.status is not ApprovalStatus.PENDING:
            return _decided(approval, 409)
        verb = "Approve" if link.choice == "approve" else "Deny"
        asked_by = await _asked_by(self._api_keys, self._users, approval)
        form = (
            '<form method="post">'
            '<p><label>Comment (optional)<br><textarea name="comment" rows="3" cols="60" '
            f'maxlength="{_MAX_COMMENT}"></textarea></label></p>'
            f'<p><button type="submit" name="confirm" value="yes">{verb} this call</button></p>'
            "</form>"
        )
        return _page(
            f"{verb} {approval.server}/{approval.tool}?", _details(approval, asked_by) + form
        )

    async def decide(self, token: str, form: Mapping[str, str]) -> Reply:
        """Decide as the link's recipient; the link is used up even when deciding is
        refused."""
        comment = str(form.get("comment") or "")[:_MAX_COMMENT]
        try:
            link = self._links.verify(token, self._clock.now())
            await self._approvals.get(link.account_id, link.request_id)
            if not await self._used_links.use(link.account_id, link.id, self._clock.now()):
                raise ConflictError("this link was already used; each link works once")
            voted = await self._vote(link, comment)
        except PreloopError as exc:
            return _refusal(exc)
        if voted.request.status is ApprovalStatus.PENDING:
            return _page(
                "Your approval is recorded",
                f"<p>{voted.approvals} of {voted.request.required_approvals} approvals so far; "
                "the call waits for the rest.</p>",
            )
        return _decided(voted.request, 200)

    async def _vote(self, link: DecisionLink, comment: str) -> VoteResult:
        return await self._decisions.decide_as_recipient(
            link.account_id,
            link.request_id,
            user_id=link.user_id,
            channel="email",
            via=f"email:{link.id}",
            approve=link.choice == "approve",
            comment=comment,
        )


async def _asked_by(api_keys: ApiKeyStore, users: UserStore, approval: ApprovalRequest) -> str:
    key = await api_keys.get(approval.principal_key_id)
    if key is None:
        return approval.principal_key_id
    owner = await users.get(approval.account_id, key.user_id) if key.user_id else None
    who = f"key {key.name!r} ({key.id})"
    return f"{who} of {owner.email}" if owner is not None else who


def _details(approval: ApprovalRequest, asked_by: str) -> str:
    e = html.escape
    rows = [
        ("Tool", approval.tool),
        ("Server", approval.server),
        ("Asked by", asked_by),
        ("Rule", f"{approval.rule} {approval.reason}".strip()),
        ("Justification", approval.justification or "(none given)"),
        ("Arguments", json.dumps(approval.args, indent=2, sort_keys=True, ensure_ascii=False)),
        ("Approvals needed", str(approval.required_approvals)),
        ("Expires", approval.expires_at.isoformat() if approval.expires_at else "never"),
        ("Request", approval.id),
    ]
    cells = "".join(
        f'<tr><th align="left" valign="top">{e(k)}</th><td><pre>{e(v)}</pre></td></tr>'
        for k, v in rows
    )
    return f"<table>{cells}</table>"


def _decided(approval: ApprovalRequest, status: int) -> Reply:
    decider = approval.decided_by_name or approval.decided_by
    who = f" by {decider}" if decider else ""
    when = f" at {approval.decided_at.isoformat()}" if approval.decided_at else ""
    state = approval.status.value
    title = f"Request {state}" if status == 200 else f"This request is already {state}"
    return _page(
        title, f"<p>{html.escape(approval.id)} was {state}{html.escape(who + when)}.</p>", status
    )


def _refusal(exc: PreloopError) -> Reply:
    if isinstance(exc, LinkExpiredError):
        return _page("This link has expired", f"<p>{_UNCHANGED}</p>", 410)
    if isinstance(exc, AuthenticationError):
        return _page(
            "This link is not valid",
            "<p>It was changed or cut short. Nothing was changed.</p>",
            403,
        )
    if isinstance(exc, PermissionDeniedError):
        return _page(
            "You may not decide this request",
            f"<p>{html.escape(str(exc))}. Nothing was changed.</p>",
            403,
        )
    if isinstance(exc, ConflictError):
        return _page("This link cannot decide now", _said(exc), 409)
    if isinstance(exc, NotFoundError):
        return _page("No such request", f"<p>{_UNCHANGED}</p>", 404)
    return _page("This link cannot decide", _said(exc), 400)


def _said(exc: PreloopError) -> str:
    return f"<p>{html.escape(str(exc))}.</p><p>{_UNCHANGED}</p>"


def _page(title: str, body: str, status: int = 200) -> Reply:
    e = html.escape
    content = (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">'
        f"<title>{e(title)} · Preloop</title></head>"
        f'<body style="font-family:sans-serif;max-width:50em;margin:2em auto">'
        f"<h1>{e(title)}</h1>{body}</body></html>"
    )
    return html_reply(content, status, _HEADERS)
