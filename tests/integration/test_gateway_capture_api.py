"""Capture rules, runtime sessions and the search over captured interactions over REST,
against a real server (uvicorn on 127.0.0.1, SQLite): who reads what, and every search audited
(decisions 0109, 0110)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.model_gateway.capture import Pending, interaction_of
from hub.model_gateway.capture_records import CaptureMode, CaptureRule, CaptureScope
from hub.model_gateway.records import UsageRecord
from hub.records import Role
from server.hub_services import Hub
from tests.contract.gateway_records import usage
from tests.integration.conftest import LiveServer, make_settings, run_live

T0 = datetime(2026, 11, 23, 10, tzinfo=UTC)
KEYS: dict[str, str] = {}
BODY = (
    b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"the kubernetes pod crashes"}]}'
)
ANSWER = b'{"choices":[{"message":{"content":"check the liveness probe"}}]}'


def records(account_id: str) -> list[UsageRecord]:
    return [
        usage(account_id, created_at=T0, flow="triage", execution_id="fx_1",
              principal="flow:triage", cost=Decimal("0.25")),
        usage(account_id, created_at=T0 + timedelta(minutes=1), flow="triage",
              execution_id="fx_1", principal="flow:triage", model="claude-sonnet-4-5"),
        usage(account_id, created_at=T0 + timedelta(minutes=2), session_id="cli-42"),
        usage(account_id, created_at=T0 + timedelta(minutes=3)),  # no session
    ]  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    async def on_ready(hub: Hub) -> None:
        account = await hub.identity.default_account()
        made = records(account.id)
        for record in made:
            hub.ledger.record(record)
        await hub.ledger.flush()
        rule = CaptureRule(
            account_id=account.id,
            scope=CaptureScope.ACCOUNT,
            mode=CaptureMode.FULL,
            created_at=T0,
            updated_at=T0,
        )
        for record in made[:3]:
            hub.capture.capture(Pending(record, rule, BODY, ANSWER, None))
        await hub.capture.flush()
        for role in (Role.VIEWER, Role.APPROVER, Role.AGENT):
            created = await hub.identity.create_key(
                account.id, name=role.value, role=role, actor="t"
            )
            KEYS[role.value] = created.secret

    with run_live(make_settings(tmp_path), on_ready=on_ready) as live:
        yield live


def client(server: LiveServer, role: str = "admin") -> httpx.Client:
    key = server.admin_key if role == "admin" else KEYS[role]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def audited(server: LiveServer, kind: str) -> list[dict[str, Any]]:
    with client(server) as http:
        events = http.get("/api/v1/audit/", params={"kind": kind, "limit": 100}).json()
    return [e["data"] for e in events]


def test_capture_rules_are_set_listed_and_deleted_by_admins_only(server: LiveServer) -> None:
    with client(server) as http:
        empty = http.get("/api/v1/gateway/capture").json()
        made = http.put(
            "/api/v1/gateway/capture",
            json={"scope": "flow", "subject": "triage", "mode": "redacted_preview"},
        )
        listed = http.get("/api/v1/gateway/capture").json()
        bad = http.put(
            "/api/v1/gateway/capture", json={"scope": "account", "subject": "x", "mode": "full"}
        )
        deleted = http.delete(
            "/api/v1/gateway/capture", params={"scope": "flow", "subject": "triage"}
        )
        again = http.delete(
            "/api/v1/gateway/capture", params={"scope": "flow", "subject": "triage"}
        )
    with client(server, "approver") as http:
        refused = http.put("/api/v1/gateway/capture", json={"mode": "full"})

    assert empty == {"rules": []}
    assert made.status_code == 200
    assert (made.json()["mode"], made.json()["max_bytes"]) == ("redacted_preview", 4096)
    assert [(r["scope"], r["subject"]) for r in listed["rules"]] == [("flow", "triage")]
    assert bad.status_code == 400
    assert "subject" in bad.text
    assert (deleted.status_code, again.status_code) == (204, 404)
    assert refused.status_code == 403
    assert [d["mode"] for d in audited(server, "gateway.capture_set")] == ["redacted_preview"]
    assert len(audited(server, "gateway.capture_deleted")) == 1


def test_sessions_are_grouped_by_execution_and_by_header(server: LiveServer) -> None:
    with client(server, "viewer") as http:
        listed = http.get("/api/v1/runtime/sessions").json()["sessions"]
        triage = http.get("/api/v1/runtime/sessions", params={"flow": "triage"}).json()
        active = http.get("/api/v1/runtime/sessions", params={"status": "active"}).json()
        missing = http.get("/api/v1/runtime/sessions/nope")
    with client(server, "agent") as http:
        agent = http.get("/api/v1/runtime/sessions")

    assert [(s["id"], s["execution_id"], s["calls"]) for s in listed] == [
        ("cli-42", None, 1),
        ("fx_1", "fx_1", 2),
    ]
    fx = listed[1]
    assert fx["models"] == ["claude-sonnet-4-5", "gpt-4o-mini"]
    assert (fx["flow"], fx["principal"], fx["status"]) == ("triage", "flow:triage", "ended")
    assert fx["cost"] == "0.250021"
    assert [s["id"] for s in triage["sessions"]] == ["fx_1"]
    assert active["sessions"] == []  # the calls are old and no runtime token is valid
    assert missing.status_code == 404
    assert agent.status_code == 403


def test_a_session_shows_content_to_approvers_and_metadata_to_viewers(
    server: LiveServer,
) -> None:
    with client(server, "approver") as http:
        full = http.get("/api/v1/runtime/sessions/fx_1").json()
    with client(server, "viewer") as http:
        bare = http.get("/api/v1/runtime/sessions/fx_1").json()

    assert full["session"]["id"] == "fx_1"
    assert [i["captured"] for i in full["interactions"]] == ["full", "full"]
    assert "kubernetes" in full["interactions"][0]["request"]
    assert full["interactions"][0]["response"] == "check the liveness probe"
    assert [i["captured"] for i in bare["interactions"]] == ["full", "full"]
    assert all(i["request"] is None and i["response"] is None for i in bare["interactions"])
    assert audited(server, "runtime.session_content_read") == [
        {"session": "fx_1", "interactions": 2}
    ]


def test_searches_answer_by_role_and_every_one_is_audited(server: LiveServer) -> None:
    path = "/api/v1/gateway/interactions"
    with client(server, "approver") as http:
        text = http.get(path, params={"q": "kubernetes pod", "session": "cli-42"}).json()
        similar = http.get(path, params={"q": "pod crashing", "search_type": "similarity"}).json()
        no_q = http.get(path, params={"search_type": "similarity"})
    with client(server, "viewer") as http:
        viewer_text = http.get(path, params={"q": "kubernetes"})
        viewer_list = http.get(path).json()
    with client(server, "agent") as http:
        agent = http.get(path, params={"q": "kubernetes"})

    assert (text["engine"], text["model"]) == ("fts5", None)
    assert [i["session"] for i in text["interactions"]] == ["cli-42"]
    assert "[[kubernetes]] [[pod]]" in text["interactions"][0]["snippet"]
    assert similar["engine"] == "exact"
    assert similar["model"].startswith("local:hashing")
    assert len(similar["interactions"]) == 3
    assert no_q.status_code == 400
    assert "'q'" in no_q.text
    assert viewer_text.status_code == 403
    assert viewer_list["engine"] == "list"
    assert len(viewer_list["interactions"]) == 3
    assert all(i["snippet"] is None and i["request"] is None for i in viewer_list["interactions"])
    assert agent.status_code == 403
    searches = audited(server, "gateway.interactions_searched")
    assert sorted((d["role"], d["outcome"], d["results"]) for d in searches) == [
        ("agent", "refused", 0),
        ("approver", "invalid", 0),
        ("approver", "ok", 1),
        ("approver", "ok", 3),
        ("viewer", "ok", 3),
        ("viewer", "refused", 0),
    ]
    assert {"session": "cli-42"} in [d["filters"] for d in searches]


def test_interaction_of_is_what_the_server_stored(server: LiveServer) -> None:
    rule = CaptureRule(
        account_id="a", scope=CaptureScope.ACCOUNT, mode=CaptureMode.FULL,
        created_at=T0, updated_at=T0,
    )  # fmt: skip
    made = interaction_of(Pending(usage("a", created_at=T0), rule, BODY, ANSWER, None))
    assert made.response == "check the liveness probe"


async def test_the_api_client_decodes_what_the_capture_routes_answer(server: LiveServer) -> None:
    from hub.api_client import ApiClient
    from hub.errors import PermissionDeniedError

    async with ApiClient(server.url, server.admin_key) as admin:
        rule = await admin.set_capture_rule({"scope": "api_key", "subject": "key_x", "mode": "off"})
        rules = await admin.capture_rules()
        await admin.delete_capture_rule("api_key", "key_x")
        sessions = await admin.runtime_sessions(flow="triage")
        detail = await admin.runtime_session("cli-42")
        found = await admin.search_interactions("liveness", session="fx_1", limit=5)
    async with ApiClient(server.url, KEYS["agent"]) as agent:
        with pytest.raises(PermissionDeniedError):
            await agent.search_interactions("liveness")

    assert (rule.scope, rule.subject, rule.mode) == ("api_key", "key_x", "off")
    assert [r.subject for r in rules.rules] == ["key_x"]
    assert [s.id for s in sessions.sessions] == ["fx_1"]
    assert [i.captured for i in detail.interactions] == ["full"]
    assert detail.interactions[0].response == "check the liveness probe"
    assert found.engine == "fts5"
    assert {i.session for i in found.interactions} == {"fx_1"}
