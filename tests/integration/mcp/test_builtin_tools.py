"""The built-in tools end to end: the MCP SDK's client on Preloop's /mcp (a real uvicorn), the
real GitHub adapter against the stateful GitHub fake over real HTTP. Listed beside upstream
tools with their annotations; allowed, denied by a rule on their arguments, held for approval
and then run once through get_approval_status; every call audited as server ``preloop``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest
from mcp.shared.subscriptions import ToolsListChanged

from hub.settings import Settings
from hub.trackers.records import Tracker, TrackerKind
from hub.trackers.sync import Syncer
from server.hub_services import Hub
from tests.integration.conftest import LiveServer, make_settings, run_live, serve_asgi
from tests.integration.fakes.github import TOKEN, FakeGitHub
from tests.integration.mcp.support import (
    agent,
    agent_key,
    held_approval_id,
    raw_call,
    text_of,
    tool_calls,
    tools_of,
)

POLICY = """\
version: "1.0"
metadata: {name: tracker agent test}
defaults: {action: deny, unknown_tools: deny}
approval_workflows:
  - {name: human, timeout_seconds: 60, async_approval: true}
tools:
  - {name: get_issue, source: builtin, action: allow}
  - {name: search, source: builtin, action: allow}
  - name: update_issue
    source: builtin
    action: allow
    conditions:
      - id: closing-needs-a-human
        expression: "has(args.status) && args.status == 'closed'"
        action: deny
        message: "Agents do not close issues."
  - name: update_pull_request
    source: builtin
    action: allow
    conditions:
      - id: approving-needs-a-human
        expression: "has(args.review_action) && args.review_action == 'approve'"
        action: require_approval
        approval_workflow: human
"""


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    fake.add_repo("acme/app", description="The app")
    fake.add_issue("acme/app", "Password reset links expire too soon", "They last a minute.")
    fake.add_pull("acme/app", "Longer reset links", "Fixes #1", head="fix", diff="diff --git\n")
    with serve_asgi(fake, "the fake GitHub", lifespan="off") as url:
        yield fake, url


@pytest.fixture
def settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: tuple[FakeGitHub, str]
) -> Settings:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    return make_settings(
        tmp_path, PRELOOP_POLICY_FILE=str(policy), PRELOOP_SECRETS_ENV_ALLOW="GITHUB_TOKEN"
    )


@pytest.fixture
def live(settings: Settings, github: tuple[FakeGitHub, str]) -> Iterator[LiveServer]:
    """The server, with the fake GitHub connected as tracker ``gh`` and synced once."""

    async def connect(hub: Hub) -> None:
        assert hub.trackers is not None
        assert hub.tracker_clients is not None
        account = await hub.identity.default_account()
        now = datetime.now(UTC)
        tracker = Tracker(
            id="trk_gh",
            account_id=account.id,
            name="gh",
            kind=TrackerKind.GITHUB,
            base_url=github[1],
            token_ref="env:GITHUB_TOKEN",
            projects=("acme/app",),
            created_at=now,
            updated_at=now,
        )
        await hub.trackers.trackers.add(tracker)
        report = await Syncer(hub.trackers, hub.tracker_clients, hub.clock).scan(tracker)
        assert (report.issues, report.errors) == (2, [])

    with run_live(settings, on_ready=connect) as server:
        yield server


async def test_the_built_ins_are_listed_unprefixed_with_their_annotations(
    live: LiveServer,
) -> None:
    async with agent(live, await agent_key(live), "auto") as client:
        tools = await tools_of(client)

    # Only the built-ins the policy lets run are listed; the rest fall under unknown_tools.
    assert {
        "get_issue",
        "search",
        "update_issue",
        "update_pull_request",
        "get_approval_status",
    } == set(tools)
    assert tools["get_issue"]["annotations"]["readOnlyHint"] is True
    assert tools["update_issue"]["annotations"]["readOnlyHint"] is False
    assert ["issue"] == tools["get_issue"]["inputSchema"]["required"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_allowed_read_and_write_reach_the_tracker_and_the_index(
    live: LiveServer, github: tuple[FakeGitHub, str], mode: str
) -> None:
    fake, _ = github
    async with agent(live, await agent_key(live), mode) as client:
        issue = await raw_call(client, "get_issue", {"issue": "acme/app#1"})
        renamed = await raw_call(
            client, "update_issue", {"issue": "acme/app#1", "title": "Reset links last an hour"}
        )
        found = await raw_call(client, "search", {"query": "hour", "search_type": "fulltext"})

    assert issue["isError"] is False
    assert ("index", "Password reset links expire too soon") == (
        issue["structuredContent"]["source"],
        issue["structuredContent"]["issue"]["title"],
    )
    assert '"key":"acme/app#1"' in text_of(issue).replace(" ", "")  # the text fallback
    assert renamed["isError"] is False, text_of(renamed)
    assert "Reset links last an hour" == fake.issue("acme/app", 1)["title"]
    assert ("fulltext", ["acme/app#1"]) == (
        found["structuredContent"]["engine"],
        [r["key"] for r in found["structuredContent"]["results"]],
    )


async def test_a_rule_on_the_arguments_denies_and_the_tracker_is_untouched(
    live: LiveServer, github: tuple[FakeGitHub, str]
) -> None:
    fake, _ = github
    async with agent(live, await agent_key(live), "auto") as client:
        denied = await raw_call(client, "update_issue", {"issue": "acme/app#1", "status": "closed"})

    assert denied["isError"] is True
    assert "Agents do not close issues." in text_of(denied)
    assert "closing-needs-a-human" == denied["_meta"]["ai.preloop/decision"]["rule"]
    assert "open" == fake.issue("acme/app", 1)["state"]
    [event] = await tool_calls(live)
    assert ("preloop", "update_issue", "deny", "denied") == (
        event["server"],
        event["tool"],
        event["decision"],
        event["status"],
    )


async def test_approving_a_pull_request_is_held_then_run_once_when_a_human_approves(
    live: LiveServer, github: tuple[FakeGitHub, str]
) -> None:
    fake, _ = github
    headers = {"Authorization": f"Bearer {live.admin_key}"}
    arguments = {"pull_request": "acme/app#2", "review_action": "approve", "review_body": "LGTM"}
    async with (
        agent(live, await agent_key(live), "legacy") as client,
        httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http,
    ):
        held = await raw_call(client, "update_pull_request", arguments)
        approval_id = held_approval_id(held)
        assert [] == fake.reviews_of("acme/app", 2)
        approved = await http.post(f"/api/v1/approvals/{approval_id}/approve", json={})
        assert approved.status_code == 200, approved.text
        result = await raw_call(client, "get_approval_status", {"approval_id": approval_id})
        again = await raw_call(client, "get_approval_status", {"approval_id": approval_id})

    assert "pending" == held["structuredContent"]["status"]  # no output schema: structured
    assert result["isError"] is False, text_of(result)
    assert "approve" == result["structuredContent"]["review"]
    assert again == result
    assert ["APPROVED"] == [r["state"] for r in fake.reviews_of("acme/app", 2)]
    events = await tool_calls(live)
    assert [("update_pull_request", "pending"), ("update_pull_request", "ok")] == [
        (e["tool"], e["status"]) for e in events
    ]


async def test_removing_the_tracker_tells_a_listening_agent_its_tools_changed(
    live: LiveServer,
) -> None:
    """The built-ins are listed only while the account has a tracker (decision 0091), so a
    tracker removed (through the REST API: audited, published as ``tracker.changed``) is a
    tools list change the agent hears of."""
    async with agent(live, await agent_key(live), "auto") as client:
        before = await tools_of(client)
        async with client.listen(tools_list_changed=True) as subscription:
            async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
                removed = await http.delete(
                    "/api/v1/trackers/gh", headers={"Authorization": f"Bearer {live.admin_key}"}
                )
            assert removed.status_code in (200, 204), removed.text
            with anyio.fail_after(30):
                async for event in subscription:
                    if isinstance(event, ToolsListChanged):
                        break
        after = await tools_of(client)

    assert "get_issue" in before
    assert "get_issue" not in after
    assert "get_approval_status" in after
