"""The detail pane of one approval request: everything an approver needs to decide."""

from __future__ import annotations

import json
from datetime import datetime

from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from tui.queue import Item, countdown, outcome, quorum


class ApprovalDetailView(Static):
    def show(self, item: Item | None, now: datetime) -> None:
        if item is None:
            self.update(Text("No approval request selected.", style="italic"))
            return
        request = item.request
        facts = Table.grid(padding=(0, 1))
        facts.add_column(style="bold", no_wrap=True)
        facts.add_column()
        facts.add_row("Tool", f"{request.server}/{request.tool}")
        facts.add_row("Principal", request.principal_key_id)
        facts.add_row("Status", outcome(item))
        if item.pending:
            facts.add_row("Expires", countdown(request.expires_at, now))
        facts.add_row("Quorum", f"{quorum(item)} approvals")
        voters = ", ".join(f"{v.approver} ({v.choice})" for v in item.votes)
        facts.add_row("Votes", voters or ("none yet" if item.detailed else "loading…"))
        facts.add_row("Rule", request.rule or "(none)")
        facts.add_row("Why", request.reason or "(no reason given)")
        facts.add_row("Workflow", request.workflow)
        if request.justification:
            facts.add_row("Justification", request.justification)
        if request.comment:
            facts.add_row("Comment", request.comment)
        facts.add_row("Id", request.id)
        arguments = json.dumps(request.args, indent=2, sort_keys=True, ensure_ascii=False)
        pretty = Syntax(arguments, "json", theme="ansi_dark", background_color="default")
        self.update(Group(facts, Text("Arguments", style="bold"), pretty))
