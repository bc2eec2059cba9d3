"""The detail pane of one approval request: everything an approver needs to decide, most
important first (what, who, how urgent, why they say they need it, the arguments), so an
80x24 terminal shows what matters without scrolling. The pane scrolls for the rest; long
lines (a 300-character command) wrap, so the approver sees the end of what they decide."""

from __future__ import annotations

import json
from datetime import datetime

from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.queue import Item, countdown, outcome, quorum


class ApprovalDetailView(VerticalScroll, can_focus=True):
    def compose(self) -> ComposeResult:
        yield Static(id="detail-body")

    @property
    def body(self) -> Static:
        return self.query_one("#detail-body", Static)

    def show(self, item: Item | None, now: datetime) -> None:
        if item is None:
            self.body.update(Text("No approval request selected.", style="italic"))
            return
        request = item.request
        facts = Table.grid(padding=(0, 1))
        facts.add_column(style="bold", no_wrap=True)
        facts.add_column()
        state = outcome(item)
        if item.pending:
            state += f", expires in {countdown(request.expires_at, now)}"
        facts.add_row("Tool", f"{request.server}/{request.tool}  ({state})")
        facts.add_row("Principal", request.principal_key_id)
        voters = ", ".join(f"{v.approver_name or v.approver} ({v.choice})" for v in item.votes)
        votes = voters or ("no votes yet" if item.detailed else "loading votes…")
        facts.add_row("Quorum", f"{quorum(item)} approvals: {votes}")
        if request.justification:
            facts.add_row("Justification", request.justification)
        facts.add_row("Rule", f"{request.rule or '(none)'}: {request.reason or 'no reason given'}")
        if request.comment:
            facts.add_row("Comment", request.comment)
        facts.add_row("Workflow", f"{request.workflow}  ·  {request.id}")
        arguments = json.dumps(request.args, indent=2, sort_keys=True, ensure_ascii=False)
        pretty = Syntax(
            arguments, "json", theme="ansi_dark", background_color="default", word_wrap=True
        )
        self.body.update(Group(facts, Text("Arguments", style="bold"), pretty))
