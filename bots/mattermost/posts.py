"""The Mattermost channel's posts: an announcement, a decided request, the details an approver
reads. Pure functions of the records (the pending post, whose buttons carry signed tokens,
is composed by the notifier)."""

from __future__ import annotations

import json
from typing import Any

from hub.notifier import Announcement
from hub.records import ApprovalRequest, ApprovalStatus

_ARGS_CHARS = 3000


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
                    "text": details(request) + f"\n\nOutcome: **{state}**{who}{when}.",
                    "actions": [],
                }
            ]
        },
    }


def details(request: ApprovalRequest) -> str:
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
