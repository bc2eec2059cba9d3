"""Approval requests through REST and the CLI: list, show, approve, deny, who may decide."""

from __future__ import annotations

import asyncio
import json

import msgspec
from click.testing import CliRunner

from hub.keys import Caller, key_id_of
from hub.policy import ApprovalWorkflow, Decision
from hub.policy.model import Action
from hub.records import Role
from server.cli.main import cli
from tests.integration.conftest import Api, LiveServer
from tests.integration.who_decided import Decider, who_decided


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


async def test_rest_decisions_record_the_person_and_the_key(api: Api) -> None:
    """A key of a user decides as the user, through that key; a key of nobody as itself. The
    same shape as every channel's (tests/integration/who_decided.py)."""
    agent = await api.hub.identity.authenticate(await api.key(Role.AGENT))
    admin = api.auth()
    added = await api.client.post(
        "/api/v1/users/", json={"email": "opal@example.com", "name": "Opal"}, headers=admin
    )
    assert 201 == added.status_code, added.text
    created = await api.client.post(
        "/api/v1/keys/",
        json={"name": "opal-laptop", "role": "approver", "user_email": "opal@example.com"},
        headers=admin,
    )
    assert 201 == created.status_code, created.text
    opal_key, opal_key_id = created.json()["secret"], created.json()["key"]["id"]
    robot = await api.key(Role.APPROVER, name="release robot")
    robot_id = (await api.hub.identity.authenticate(robot)).key_id

    found = {}
    for key in (opal_key, robot):
        request_id = await _open(api.hub, agent)
        decided = await api.client.post(
            f"/api/v1/approvals/{request_id}/approve", json={}, headers=api.auth(key)
        )
        assert 200 == decided.status_code, decided.text
        found[key] = await who_decided(api.client, request_id, admin)
    assert {
        opal_key: Decider(added.json()["id"], "Opal", f"key:{opal_key_id}"),
        robot: Decider(robot_id, "release robot", f"key:{robot_id}"),
    } == found


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
    # Who decided, by name: the key "ops" (a key of nobody is its own person), not its id.
    approver_id = key_id_of(approver_secret)
    assert approver_id is not None
    decided_row = next(line for line in run("approvals", "list").splitlines() if request_id in line)
    assert "ops" in decided_row.split()
    assert approver_id not in decided_row
    shown = run("approvals", "show", request_id)
    assert "decided:        denied by ops (key:" in shown
    assert f"vote:           deny by ops (api, key:{approver_id}) not today" in shown


async def _open_on_server(live_server: LiveServer, agent_secret: str) -> str:
    """Open a request through the hub on the live server's database."""
    from server.bootstrap import open_hub

    hub = await open_hub(live_server.settings)
    try:
        agent = await hub.identity.authenticate(agent_secret)
        return await _open(hub, agent)
    finally:
        await hub.close()
