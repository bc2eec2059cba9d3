"""The approval and server routes' answers (a held call, its detail with votes, a decision,
the upstream servers and their tools) decode into the wire types without losing a field, and
the client decides through them."""

from __future__ import annotations

import httpx

from hub import wire
from hub.api_client import ApiClient
from tests.integration.conftest import LiveServer
from tests.integration.mcp.support import agent, held_approval_id, new_agent_key, raw_call
from tests.integration.test_api_client import assert_round_trip


async def test_approvals_round_trip_and_are_decided_through_the_client(
    gateway_server: LiveServer,
) -> None:
    secret, _ = await new_agent_key(gateway_server, "laptop")
    async with agent(gateway_server, secret, "legacy") as client:
        approval_id = held_approval_id(await raw_call(client, "demo__add", {"a": 2, "b": 3}))
    async with ApiClient(gateway_server.url, gateway_server.admin_key) as api:
        [pending] = await api.pending()
        assert approval_id == pending.id
        approved = await api.approve(approval_id, "ok")
        assert ("approved", "ok") == (approved.status, approved.comment)
    auth = {"Authorization": f"Bearer {gateway_server.admin_key}"}
    async with httpx.AsyncClient(base_url=gateway_server.url, headers=auth, timeout=30) as http:
        assert_round_trip(await http.get("/api/v1/approvals/"), list[wire.ApprovalRequestView])
        detail = await http.get(f"/api/v1/approvals/{approval_id}")
        assert_round_trip(detail, wire.ApprovalDetail)
        assert detail.json()["votes"]
        assert_round_trip(await http.get("/api/v1/servers/"), list[wire.ServerView])
        assert_round_trip(await http.post("/api/v1/servers/demo/refresh"), list[wire.ToolView])
        assert_round_trip(await http.get("/api/v1/servers/demo/tools"), list[wire.ToolView])
