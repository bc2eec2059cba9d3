"""The Slack channel's Block Kit: the pending request with its buttons, the settled one, an
announcement, and the deny modal. Pure functions of the records (no client, no I/O)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bots.slack.wire import (
    APPROVE_ACTION,
    DECISION_BLOCK,
    DENY_ACTION,
    DENY_VIEW,
    MAX_COMMENT,
    REASON_BLOCK,
    REASON_INPUT,
    TEXT_LIMIT,
)
from hub.notifier import Announcement, Recipient
from hub.records import ApprovalRequest, ApprovalStatus

_FENCE = "```"


def pending_blocks(
    request: ApprovalRequest, *, escalation: bool = False, mentions: str = ""
) -> list[dict[str, Any]]:
    """The message of a pending request: its details and the two buttons."""
    blocks = _detail_blocks(request, summary(request, escalation))
    if mentions:
        blocks.append(_section(f"Approvers: {mentions}"))
    blocks.append(
        {
            "type": "actions",
            "block_id": DECISION_BLOCK,
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


def mentions_of(recipients: tuple[Recipient, ...]) -> str:
    """The recipients who linked a Slack id, mentioned."""
    return " ".join(f"<@{r.identities['slack']}>" for r in recipients if r.identities.get("slack"))


def settled_blocks(request: ApprovalRequest, who: str) -> list[dict[str, Any]]:
    """The message once decided: the details and the outcome, no buttons."""
    blocks = _detail_blocks(request, f"{request.server}/{request.tool}")
    blocks.append(_section(outcome_text(request, who)))
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
    room = TEXT_LIMIT - len("*Arguments*\n") - 2 * len(_FENCE)
    if len(pretty) > room:
        cut = "\n… (truncated)"
        pretty = pretty[: room - len(cut)]
        pretty = pretty[: pretty.rfind("&")] if pretty.rfind("&") > pretty.rfind(";") else pretty
        pretty += cut
    return f"{_FENCE}{pretty}{_FENCE}"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:TEXT_LIMIT]}}


def summary(request: ApprovalRequest, escalation: bool) -> str:
    prefix = "Escalated approval" if escalation else "Approval needed"
    return f"{prefix}: {request.server}/{request.tool}"


def outcome_text(request: ApprovalRequest, who: str) -> str:
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


def deny_modal(what: str, metadata: str) -> dict[str, Any]:
    """The modal a Deny click opens: a reason to give; ``metadata`` names the request."""
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
                "text": {"type": "mrkdwn", "text": f"Deny {what}?"[:TEXT_LIMIT]},
            },
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": MAX_COMMENT,
                },
            },
        ],
    }
