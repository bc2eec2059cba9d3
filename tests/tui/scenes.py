"""Deterministic scenes for the dashboard's snapshots and screen tests: a fixed queue served
through httpx's mock transport (the REST seam), a feed that is simply connected, and a frozen
clock, so every run draws the same screen."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from hub.api_client import ApiClient
from tui.app import PreloopApp
from tui.feed import ConnectionState, FeedStatus

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
URL = "http://preloop.test:8000"


def _at(minutes: float) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _request(
    rid: str, tool: str, server: str, created: float, expires: float, **extra: Any
) -> dict[str, Any]:
    return {
        "id": rid,
        "account_id": "acct_demo",
        "status": "pending",
        "principal_key_id": "9f3c2a1b7d6e5f40",
        "server": server,
        "tool": tool,
        "args_digest": "0" * 64,
        "policy_version": 3,
        "workflow": "on-call",
        "rule": f"tools.{server}/{tool}.conditions[0]",
        "reason": "the branch is main",
        "required_approvals": 1,
        "created_at": _at(created),
        "expires_at": _at(expires),
        "approvers": ["role:approver"],
        **extra,
    }


REQUESTS = [
    _request(
        "apr_0003", "push", "git", -1, 9,
        args={"branch": "main", "force": True, "remote": "origin"},
        justification="hotfix for the checkout outage",
        required_approvals=2,
    ),
    _request("apr_0002", "drop_table", "postgres", -3, 2.5, args={"table": "sessions"}),
    _request("apr_0001", "send_email", "mail", -7, 0.75, args={"to": "all@example.com"}),
]  # fmt: skip
VOTES = {
    "apr_0003": [
        {
            "request_id": "apr_0003",
            "account_id": "acct_demo",
            "approver": "ada@example.com",
            "choice": "approve",
            "channel": "slack",
            "created_at": _at(-0.5),
        }
    ]
}


def handler(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/api/v1/whoami":
        return httpx.Response(200, json={"key_id": "b0b0b0b0b0b0b0b0", "role": "approver"})
    if path == "/api/v1/approvals/":
        return httpx.Response(200, json=REQUESTS)
    for item in REQUESTS:
        if path == f"/api/v1/approvals/{item['id']}":
            return httpx.Response(200, json={"request": item, "votes": VOTES.get(item["id"], [])})
    body = {"error": {"type": "NotFoundError", "message": f"no route {path}"}}
    return httpx.Response(404, content=json.dumps(body))


class ConnectedFeed:
    """A feed that connects once and then stays quiet."""

    async def updates(self) -> AsyncIterator[Any]:
        yield FeedStatus(state=ConnectionState.CONNECTED, detail=URL)
        await asyncio.Event().wait()


def scene_app(theme: str = "textual-dark") -> PreloopApp:
    client = ApiClient(URL, "pl_test", transport=httpx.MockTransport(handler))
    return PreloopApp(client, ConnectedFeed(), now=lambda: NOW, theme=theme)
