"""Fixtures for the dashboard's tests: a real server on uvicorn (SQLite) whose policy holds
``demo/echo`` for approval, the keys of the people in the tests, and Pilot helpers."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from tests.integration.conftest import (  # noqa: F401 - _isolated_env is an autouse fixture
    LiveServer,
    _isolated_env,
    make_settings,
    run_live,
)
from tests.integration.mcp.support import REPO, eventually

T = TypeVar("T")

POLICY = """\
version: "1.0"
metadata: {name: tui test}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
approval_workflows:
  - name: on-call
    timeout_seconds: 600
    approvers: ["role:approver"]
  - name: two-people
    timeout_seconds: 600
    approvers: ["role:approver"]
    required_approvals: 2
  - name: later
    timeout_seconds: 600
    approvers: ["role:approver"]
    async_approval: true
tools:
  - name: echo
    server: demo
    action: require_approval
    approval_workflow: on-call
    justification: optional
  - name: add
    server: demo
    action: require_approval
    approval_workflow: two-people
  - name: slow
    server: demo
    action: require_approval
    approval_workflow: later
defaults:
  action: deny
  unknown_tools: deny
"""


class People(msgspec.Struct):
    """The keys the tests act with: an approver (the dashboard), another approver (deciding
    elsewhere), a viewer, an agent."""

    approver: str
    approver_id: str
    other: str
    other_id: str
    viewer: str
    agent: str


def write_policy(tmp_path: Path) -> Path:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY % {"python": sys.executable})
    return policy_file


@pytest.fixture
def tui_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.chdir(REPO)
    settings = make_settings(tmp_path, PRELOOP_POLICY_FILE=str(write_policy(tmp_path)))
    with run_live(settings) as live:
        yield live


async def people_of(live: LiveServer) -> People:
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    made: dict[str, tuple[str, str]] = {}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        for name, role in [
            ("approver", "approver"),
            ("other", "approver"),
            ("viewer", "viewer"),
            ("agent", "agent"),
        ]:
            created = await http.post("/api/v1/keys/", json={"name": name, "role": role})
            assert 201 == created.status_code, created.text
            made[name] = (created.json()["secret"], created.json()["key"]["id"])
    return People(
        approver=made["approver"][0],
        approver_id=made["approver"][1],
        other=made["other"][0],
        other_id=made["other"][1],
        viewer=made["viewer"][0],
        agent=made["agent"][0],
    )


def plain(widget: Static, width: int = 100) -> str:
    """What a Static shows (its content), as plain text."""
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


async def until(pilot: Pilot[Any], probe: Callable[[], T | None], within: float = 30.0) -> T:
    """``probe``'s first answer that is not ``None``, letting the app run in between."""

    async def check() -> T | None:
        await pilot.pause()
        return probe()

    return await eventually(check, within=within)
