"""A deterministic audit log for the Audit screen's snapshots: a few events of each kind, one
held call with its approval history, served through httpx's mock transport like
``tests/tui/scenes.py`` serves the approvals; the frozen clock and quiet feeds are theirs."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx

from hub.api_client import ApiClient
from tests.tui.scenes import NOW, REQUESTS, URL, VOTES, ConnectedFeed
from tests.tui.scenes import handler as approvals_handler
from tui.app import PreloopApp
from tui.screens.audit import AuditScreen

AGENT = "9f3c2a1b7d6e5f40"


def _event(seq: int, kind: str, actor: str, minutes: float, **data: Any) -> dict[str, Any]:
    at = (NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    return {"account_id": "acct_demo", "seq": seq, "kind": kind, "actor": actor, "at": at,
            "data": data, "prev_hash": "0" * 64, "hash": f"{seq:064x}"}  # fmt: skip


EVENTS = [
    _event(1, "key.created", "admin", -60, key_id=AGENT, name="ci-agent", role="agent"),
    _event(2, "policy.applied", "admin", -50, version=3, changes=["tools.git/push"]),
    _event(3, "tool.call", AGENT, -40, server="demo", tool="echo", args={"text": "hi"},
           decision="allow", rule="tools.demo/echo", why="allowed by the tool's rule",
           status="ok", duration_ms=4.2),
    _event(4, "tool.call", AGENT, -30, server="postgres", tool="drop_table",
           args={"table": "sessions"}, decision="deny", rule="tools.postgres/drop_table",
           why="destructive statements are denied", status="denied", duration_ms=1.1),
    _event(5, "approval.requested", AGENT, -2, approval_id="apr_0003", tool="push",
           server="git"),
    _event(6, "approval.voted", "ada@example.com", -0.5, approval_id="apr_0003",
           choice="approve", channel="slack"),
    _event(7, "tool.call", AGENT, -0.2, server="git", tool="push",
           args={"branch": "main", "force": True, "remote": "origin"},
           justification="hotfix for the checkout outage", decision="require_approval",
           rule="tools.git/push.conditions[0]", why="the branch is main",
           approval_id="apr_0003", approval_status="approved", decided_by="b0b0b0b0b0b0b0b0",
           status="ok", duration_ms=812.5),
]  # fmt: skip


def handler(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/api/v1/audit/":
        params = request.url.params
        found = sorted(EVENTS, key=lambda e: -e["seq"])
        if "after_seq" in params:
            found = [e for e in found if e["seq"] > int(params["after_seq"])]
        if params.get("order") == "oldest":
            found.reverse()
        if "before_seq" in params:
            found = [e for e in found if e["seq"] < int(params["before_seq"])]
        if "kind" in params:
            found = [e for e in found if e["kind"] == params["kind"]]
        return httpx.Response(200, content=json.dumps(found[: int(params["limit"])]))
    if request.url.path == "/api/v1/approvals/apr_0003":
        decided = REQUESTS[0] | {"status": "approved", "decided_by": "b0b0b0b0b0b0b0b0"}
        votes = VOTES["apr_0003"] + [
            {**VOTES["apr_0003"][0], "approver": "b0b0b0b0b0b0b0b0", "channel": "tui"}
        ]
        return httpx.Response(200, json={"request": decided, "votes": votes})
    return approvals_handler(request)


def audit_app(theme: str = "textual-dark") -> PreloopApp:
    client = ApiClient(URL, "pl_test", transport=httpx.MockTransport(handler))
    app = PreloopApp(client, ConnectedFeed(), now=lambda: NOW, theme=theme)
    screen = app.main_screens["audit"]
    assert isinstance(screen, AuditScreen)
    screen.make_feed = ConnectedFeed
    return app
