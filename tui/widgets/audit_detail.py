"""The detail pane of one audit event: what happened and to what (kind, tool, who, when), the
decision and its explanation, the approval history (fetched from the approval the event
names), the result, and then the full arguments and every other field, so nothing the event
recorded is hidden. The pane scrolls."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from hub.wire import ApprovalDetail, AuditEventView
from tui.feed import ActivityEvent

_SHOWN = {"server", "tool", "decision", "rule", "why", "reason", "status", "error",
          "approval_id", "approval_status", "decided_by", "args", "justification",
          "approver_name", "decided_by_name", "via"}  # fmt: skip


class AuditDetailView(VerticalScroll, can_focus=True):
    def compose(self) -> ComposeResult:
        yield Static(id="audit-detail-body")

    @property
    def body(self) -> Static:
        return self.query_one("#audit-detail-body", Static)

    def show(
        self, event: AuditEventView | ActivityEvent | None, approval: ApprovalDetail | None = None
    ) -> None:
        if event is None:
            self.body.update(Text("No audit event selected.", style="italic"))
            return
        data = event.data
        facts = Table.grid(padding=(0, 1))
        facts.add_column(style="bold", no_wrap=True)
        facts.add_column()
        what = f"{data['server']}/{data['tool']}" if "tool" in data and "server" in data else ""
        facts.add_row("Event", f"#{event.seq} {event.kind}  {what}".rstrip())
        name = actor_name_in(event.actor, data)
        who = f"{name} ({event.actor})" if name and name != event.actor else event.actor
        via = f" via {data['via']}" if data.get("via") else ""
        facts.add_row("By", f"{who}{via}  at {event.at.isoformat(timespec='seconds')}")
        if "decision" in data:
            rule = f"  (rule {data['rule']})" if data.get("rule") else ""
            facts.add_row("Decision", f"{data['decision']}{rule}")
        explanation = data.get("why") or data.get("reason")
        if explanation:
            facts.add_row("Why", str(explanation))
        if data.get("justification"):
            facts.add_row("Justified", str(data["justification"]))
        if "approval_id" in data:
            facts.add_row("Approval", _approval(str(data["approval_id"]), data, approval))
        if "status" in data or "error" in data:
            result = str(data.get("status", ""))
            if data.get("error"):
                result += f": {data['error']}"
            facts.add_row("Result", result)
        parts: list[RenderableType] = [facts]
        if "args" in data:
            parts += [Text("Arguments", style="bold"), _json(data["args"])]
        rest = {key: value for key, value in data.items() if key not in _SHOWN}
        if rest:
            parts += [Text("Other fields", style="bold"), _json(rest)]
        self.body.update(Group(*parts))


# The names events record beside the ids they stand for (decision 0054).
_NAMED = (("approver", "approver_name"), ("decided_by", "decided_by_name"))


def actor_name_in(actor: str, data: dict[str, Any]) -> str | None:
    """The name an event recorded for its actor: a vote's approver, who decided. Only when
    the name is the actor's: a ``tool.call`` names who decided its approval beside that
    person's id, while its actor is the agent's key that made the call."""
    for id_key, name_key in _NAMED:
        if data.get(name_key) and data.get(id_key, actor) == actor:
            return str(data[name_key])
    return None


def _approval(approval_id: str, data: dict[str, Any], found: ApprovalDetail | None) -> str:
    if found is None:
        status = data.get("approval_status")
        return f"{approval_id}" + (f" ({status})" if status else "  (loading history…)")
    request = found.request
    lines = [f"{approval_id} ({request.status.value})"]
    for vote in found.votes:
        when = vote.created_at.isoformat(timespec="seconds")
        comment = f": {vote.comment}" if vote.comment else ""
        who = vote.approver_name or vote.approver
        lines.append(f"  {when} {who} {vote.choice} via {vote.channel}{comment}")
    if not found.votes:
        lines.append("  no votes")
    if request.decided_by:
        lines.append(f"  decided by {request.decided_by_name or request.decided_by}")
    return "\n".join(lines)


def _json(value: Any) -> Syntax:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return Syntax(text, "json", theme="ansi_dark", background_color="default", word_wrap=True)
