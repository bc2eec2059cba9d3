"""The pages behind email approve/deny links (``bots/email.py`` sends them).

    GET  /email/links/{token}   a confirmation page with the call's details; changes nothing
                                (mail scanners and link previews follow links)
    POST /email/links/{token}   the page's button: records the link as used (once), then
                                decides as the link's recipient through ApprovalService.decide

The token is the credential (no API key): signed, per recipient, expiring, single-use
(``hub.links``). Every refusal is an HTML page with a 4xx status and changes nothing: a
tampered or foreign link (403), an expired one (410), a used one or a request already decided
(409), a recipient who may not decide (403). Pages are never cached and never send the token
on as a referrer.
"""

from __future__ import annotations

import html
import json
from typing import Any

from litestar import MediaType, Request, Response, Router, get, post
from litestar.params import FromPath

from hub.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    PreloopError,
)
from hub.links import DecisionLink, LinkExpiredError
from hub.records import ApprovalRequest, ApprovalStatus
from server.hub_services import Hub

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
_MAX_COMMENT = 1000
_UNCHANGED = "Nothing was changed."


@get("/{token:str}", include_in_schema=False)
async def confirm_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
    """Show what the link would decide and a button to confirm; decide nothing."""
    hub: Hub = request.app.state.hub
    try:
        link = hub.links.verify(token, hub.clock.now())
        approval = await hub.approvals.get(link.account_id, link.request_id)
    except PreloopError as exc:
        return _refusal(exc)
    if approval.status is not ApprovalStatus.PENDING:
        return _decided(approval, 409)
    verb = "Approve" if link.choice == "approve" else "Deny"
    asked_by = await _asked_by(hub, approval)
    form = (
        '<form method="post">'
        '<p><label>Comment (optional)<br><textarea name="comment" rows="3" cols="60" '
        f'maxlength="{_MAX_COMMENT}"></textarea></label></p>'
        f'<p><button type="submit" name="confirm" value="yes">{verb} this call</button></p>'
        "</form>"
    )
    return _page(f"{verb} {approval.server}/{approval.tool}?", _details(approval, asked_by) + form)


@post("/{token:str}", include_in_schema=False, status_code=200)
async def decide_by_link(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
    """Decide as the link's recipient; the link is used up even when deciding is refused."""
    hub: Hub = request.app.state.hub
    form = await request.form()
    comment = str(form.get("comment") or "")[:_MAX_COMMENT]
    try:
        link = hub.links.verify(token, hub.clock.now())
        await hub.approvals.get(link.account_id, link.request_id)
        if not await hub.storage.used_links.use(link.account_id, link.id, hub.clock.now()):
            raise ConflictError("this link was already used; each link works once")
        decided = await _decide(hub, link, comment)
    except PreloopError as exc:
        return _refusal(exc)
    if decided.status is ApprovalStatus.PENDING:
        votes = await hub.approvals.votes(decided.account_id, decided.id)
        approvals = sum(1 for v in votes if v.choice.value == "approve")
        return _page(
            "Your approval is recorded",
            f"<p>{approvals} of {decided.required_approvals} approvals so far; the call waits "
            "for the rest.</p>",
        )
    return _decided(decided, 200)


async def _decide(hub: Hub, link: DecisionLink, comment: str) -> ApprovalRequest:
    person = await hub.identity.caller_for_user(
        link.account_id, link.user_id, via=f"email:{link.id}"
    )
    return await hub.approvals.decide(
        link.account_id,
        link.request_id,
        approver=person,
        approve=link.choice == "approve",
        comment=comment,
        channel="email",
    )


async def _asked_by(hub: Hub, approval: ApprovalRequest) -> str:
    key = await hub.storage.api_keys.get(approval.principal_key_id)
    if key is None:
        return approval.principal_key_id
    owner = await hub.storage.users.get(approval.account_id, key.user_id) if key.user_id else None
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


def _decided(approval: ApprovalRequest, status: int) -> Response[str]:
    decider = approval.decided_by_name or approval.decided_by
    who = f" by {decider}" if decider else ""
    when = f" at {approval.decided_at.isoformat()}" if approval.decided_at else ""
    state = approval.status.value
    title = f"Request {state}" if status == 200 else f"This request is already {state}"
    return _page(
        title, f"<p>{html.escape(approval.id)} was {state}{html.escape(who + when)}.</p>", status
    )


def _refusal(exc: PreloopError) -> Response[str]:
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


def _page(title: str, body: str, status: int = 200) -> Response[str]:
    e = html.escape
    content = (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">'
        f"<title>{e(title)} · Preloop</title></head>"
        f'<body style="font-family:sans-serif;max-width:50em;margin:2em auto">'
        f"<h1>{e(title)}</h1>{body}</body></html>"
    )
    return Response(content, media_type=MediaType.HTML, status_code=status, headers=_HEADERS)


def email_links_router() -> Router:
    return Router(path="/email/links", route_handlers=[confirm_page, decide_by_link])
