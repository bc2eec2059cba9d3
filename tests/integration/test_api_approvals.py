"""Approval requests through REST and the CLI: list, show, approve, deny, who may decide."""

from __future__ import annotations

import asyncio
import json

import msgspec
from click.testing import CliRunner

from hub.keys import Caller
from hub.policy import ApprovalWorkflow, Decision
from hub.policy.model import Action
from hub.records import Role
from server.cli.main import cli
from tests.integration.conftest import Api, LiveServer


async def _open(api_hub, agent: Caller, **workflow: object) -> str:  # type: ignore[no-untyped-def]
    request = await api_hub.approvals.open(
        caller=agent,
        server="shell",
        tool="bash",
        args={"command": "deploy"},
        justification="release",
        policy_version=1,
        workflow=msgspec.convert({"name": "wf", **workflow}, ApprovalWorkflow),
        decision=Decision(
            action=Action.REQUIRE_APPROVAL, rule="bash#1", rule_description="deploys need approval"
        ),
    )
    return request.id


async def test_list_show_approve(api: Api) -> None:
    agent_key = await api.key(Role.AGENT)
    agent = await api.hub.identity.authenticate(agent_key)
    request_id = await _open(api.hub, agent)
    listed = (
        await api.client.get("/api/v1/approvals/", params={"status": "pending"}, headers=api.auth())
    ).json()
    assert [r["id"] for r in listed] == [request_id]
    shown = (await api.client.get(f"/api/v1/approvals/{request_id}", headers=api.auth())).json()
    assert shown["request"]["args"] == {"command": "deploy"}
    assert shown["votes"] == []
    approver = await api.key(Role.APPROVER)
    approved = await api.client.post(
        f"/api/v1/approvals/{request_id}/approve",
        json={"comment": "go"},
        headers=api.auth(approver),
    )
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    again = await api.client.post(
        f"/api/v1/approvals/{request_id}/deny", json={}, headers=api.auth()
    )
    assert again.status_code == 409
    assert "already approved" in again.json()["error"]["message"]


async def test_who_may_decide(api: Api) -> None:
    agent_key = await api.key(Role.AGENT)
    agent = await api.hub.identity.authenticate(agent_key)
    request_id = await _open(api.hub, agent)
    own = await api.client.post(
        f"/api/v1/approvals/{request_id}/approve", json={}, headers=api.auth(agent_key)
    )
    assert own.status_code == 403  # an agent key has no deciding role at all
    viewer = await api.key(Role.VIEWER)
    assert (
        await api.client.post(
            f"/api/v1/approvals/{request_id}/approve", json={}, headers=api.auth(viewer)
        )
    ).status_code == 403
    admin_agent = await api.hub.identity.authenticate(api.admin_key)
    self_made = await _open(api.hub, admin_agent)
    response = await api.client.post(
        f"/api/v1/approvals/{self_made}/approve", json={}, headers=api.auth()
    )
    assert response.status_code == 403
    assert "never decide" in response.json()["error"]["message"]
    missing = await api.client.get("/api/v1/approvals/apr_nope", headers=api.auth())
    assert missing.status_code == 404


def test_cli_approvals(live_server: LiveServer) -> None:

    def run(*args: str, key: str | None = None) -> str:
        result = CliRunner().invoke(
            cli,
            [*args, "--url", live_server.url, "--key", key or live_server.admin_key],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        return result.stdout

    agent_secret = json.loads(
        run("keys", "create", "--name", "agent", "--role", "agent", "--json")
    )["secret"]
    approver_secret = json.loads(
        run("keys", "create", "--name", "ops", "--role", "approver", "--json")
    )["secret"]
    request_id = asyncio.run(_open_on_server(live_server, agent_secret))
    listed = run("approvals", "list", "--status", "pending")
    assert request_id in listed
    shown = run("approvals", "show", request_id)
    assert "deploys need approval" in shown
    assert "release" in shown
    out = run("approvals", "deny", request_id, "--comment", "not today", key=approver_secret)
    assert f"Request {request_id} is now denied." in out
    shown = run("approvals", "show", request_id, "--json")
    assert json.loads(shown)["request"]["comment"] == "not today"


async def _open_on_server(live_server: LiveServer, agent_secret: str) -> str:
    """Open a request through the hub on the live server's database."""
    from server.bootstrap import open_hub

    hub = await open_hub(live_server.settings)
    try:
        agent = await hub.identity.authenticate(agent_secret)
        return await _open(hub, agent)
    finally:
        await hub.close()
