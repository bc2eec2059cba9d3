"""Usage, sessions, budgets and prices over REST and the CLI, against a real server
(uvicorn on 127.0.0.1, SQLite). Usage records go in through ``hub.ledger`` as the gateway's
HTTP edge puts them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from hub.model_gateway.records import UsageRecord
from hub.records import Role
from server.cli.main import cli
from server.hub_services import Hub
from tests.contract.gateway_records import usage
from tests.integration.conftest import LiveServer, make_settings, run_live

DAY1 = datetime(2026, 11, 23, 10, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
KEYS: dict[str, str] = {}


def records(account_id: str) -> list[UsageRecord]:
    def at(when: datetime, **extra: object) -> UsageRecord:
        return usage(account_id, created_at=when, **extra)

    return [
        at(DAY1, flow="triage", execution_id="fx_1", principal="flow:triage",
           cost=Decimal("0.00125"), input_tokens=1000, output_tokens=100),
        at(DAY1 + timedelta(minutes=1), flow="triage", execution_id="fx_1",
           principal="flow:triage", cost=Decimal("0.5"), model="claude-sonnet-4-5",
           outcome="error", status=502, error="upstream returned 502"),
        at(DAY2, cost=Decimal("1.000000001"), api_key_id="key_b"),
    ]  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    async def on_ready(hub: Hub) -> None:
        account = await hub.identity.default_account()
        for record in records(account.id):
            hub.ledger.record(record)
        await hub.ledger.flush()
        for role in (Role.VIEWER, Role.AGENT):
            created = await hub.identity.create_key(
                account.id, name=role.value, role=role, actor="t"
            )
            KEYS[role.value] = created.secret

    with run_live(make_settings(tmp_path), on_ready=on_ready) as live:
        yield live


def client(server: LiveServer, key: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {key or server.admin_key}"},
        timeout=30,
    )


def test_usage_summary_groups_with_money_as_strings(server: LiveServer) -> None:
    with client(server, KEYS["viewer"]) as http:
        by_day = http.get("/api/v1/gateway/usage/summary", params={"group_by": "day"}).json()
        by_flow = http.get("/api/v1/gateway/usage/summary?group_by=flow").json()
        by_model = http.get("/api/v1/gateway/usage/summary?group_by=model&flow=triage").json()
        bad = http.get("/api/v1/gateway/usage/summary?group_by=weekday")

    assert [("2026-11-23", 2, "0.501250"), ("2026-11-24", 1, "1.000000001")] == [
        (g["key"], g["requests"], g["cost"]) for g in by_day["groups"]
    ]
    assert ("1.501250001", 3) == (by_day["total"]["cost"], by_day["total"]["requests"])
    assert [("triage", 2), (None, 1)] == [(g["key"], g["requests"]) for g in by_flow["groups"]]
    assert ["claude-sonnet-4-5", "gpt-4o-mini"] == [g["key"] for g in by_model["groups"]]
    assert 400 == bad.status_code


def test_usage_events_page_newest_first(server: LiveServer) -> None:
    with client(server) as http:
        first = http.get("/api/v1/gateway/usage", params={"limit": 2}).json()
        second = http.get(
            "/api/v1/gateway/usage", params={"limit": 2, "before": first["next_before"]}
        ).json()
        flow = http.get("/api/v1/gateway/usage", params={"flow": "triage"}).json()
        broken = http.get("/api/v1/gateway/usage", params={"before": "yesterday"})

    assert ["1.000000001", "0.500000"] == [e["cost"] for e in first["events"]]
    assert ["0.001250"] == [e["cost"] for e in second["events"]]
    assert second["next_before"] is None
    assert 2 == len(flow["events"])
    assert 400 == broken.status_code
    assert "next_before" in broken.json()["error"]["message"]


def test_sessions_and_a_flow_executions_gateway_events(server: LiveServer) -> None:
    with client(server, KEYS["viewer"]) as http:
        sessions = http.get("/api/v1/gateway/sessions").json()
        detail = http.get("/api/v1/gateway/sessions/fx_1").json()
        missing = http.get("/api/v1/gateway/sessions/fx_nope")
        events = http.get("/api/v1/flows/executions/fx_1/gateway-events").json()

    assert [("fx_1", 2, 1, "0.501250", "triage")] == [
        (s["execution_id"], s["requests"], s["errors"], s["cost"], s["flow"]) for s in sessions
    ]
    assert "fx_1" == detail["session"]["execution_id"]
    assert 2 == len(detail["events"])
    assert 404 == missing.status_code
    assert ["claude-sonnet-4-5", "gpt-4o-mini"] == [e["model"] for e in events["events"]]
    assert "upstream returned 502" == events["events"][0]["error"]


def test_agents_cannot_read_usage_and_viewers_cannot_change_budgets(server: LiveServer) -> None:
    with client(server, KEYS["agent"]) as http:
        assert 403 == http.get("/api/v1/gateway/usage").status_code
    with client(server, KEYS["viewer"]) as http:
        assert (
            403 == http.post("/api/v1/budgets/", json={"name": "x", "hard_limit": "1"}).status_code
        )
        assert (
            403
            == http.put(
                "/api/v1/gateway/prices", json={"model": "m", "input": "1", "output": "1"}
            ).status_code
        )
        assert 200 == http.get("/api/v1/budgets/").status_code


def test_budgets_crud_with_their_state(server: LiveServer) -> None:
    with client(server) as http:
        created = http.post(
            "/api/v1/budgets/",
            json={"name": "team-day", "scope": "account", "period": "day",
                  "soft_limit": "8", "hard_limit": 10},
        )  # fmt: skip
        duplicate = http.post("/api/v1/budgets/", json={"name": "team-day", "hard_limit": "1"})
        invalid = http.post(
            "/api/v1/budgets/", json={"name": "x", "soft_limit": "2", "hard_limit": "1"}
        )
        ask = http.post(
            "/api/v1/budgets/",
            json={"name": "ask", "soft_limit": "1", "on_soft": "ask", "approval_workflow": "nope"},
        )
        unknown_field = http.post("/api/v1/budgets/", json={"name": "y", "limit": "1"})
        listed = http.get("/api/v1/budgets/").json()
        one = http.get("/api/v1/budgets/team-day").json()
        removed = http.delete(f"/api/v1/budgets/{created.json()['id']}")
        gone = http.delete("/api/v1/budgets/team-day")

    assert 201 == created.status_code
    view = created.json()
    assert ("8.000000", "10.000000", "0.000000", "0.000000", "ok") == (
        view["soft_limit"],
        view["hard_limit"],
        view["spent"],
        view["reserved"],
        view["state"],
    )
    assert view["resets_at"].startswith(view["period_start"][:4])
    assert 409 == duplicate.status_code
    assert 400 == invalid.status_code
    assert "soft limit must not be above" in invalid.json()["error"]["message"]
    assert 400 == ask.status_code
    assert "'nope' is not in the active policy" in ask.json()["error"]["message"]
    assert 400 == unknown_field.status_code
    assert ["team-day"] == [b["name"] for b in listed]
    assert view["id"] == one["id"]
    assert (204, 404) == (removed.status_code, gone.status_code)


def test_prices_set_list_unset(server: LiveServer) -> None:
    with client(server) as http:
        before = http.get("/api/v1/gateway/prices").json()
        put = http.put(
            "/api/v1/gateway/prices",
            json={"model": "llama-*", "input": "0.1", "output": 0.2, "cached": "0.05"},
        )
        negative = http.put(
            "/api/v1/gateway/prices", json={"model": "m", "input": "-1", "output": "1"}
        )
        after = http.get("/api/v1/gateway/prices").json()
        unset = http.delete("/api/v1/gateway/prices", params={"model": "llama-*"})
        again = http.delete("/api/v1/gateway/prices", params={"model": "llama-*"})

    assert [] == before["overrides"]
    assert any(p["model"] == "gpt-4o*" and p["input"] == "2.500000" for p in before["builtin"])
    assert ("15.000000", "75.000000") == (before["unpriced"]["input"], before["unpriced"]["output"])
    assert {"model": "llama-*", "input": "0.100000", "output": "0.200000", "cached": "0.050000",
            "source": "account"} == put.json()  # fmt: skip
    assert 400 == negative.status_code
    assert ["llama-*"] == [p["model"] for p in after["overrides"]]
    assert (204, 404) == (unset.status_code, again.status_code)


def test_the_openapi_document_lists_the_gateway_endpoints(server: LiveServer) -> None:
    with client(server) as http:
        paths = http.get("/openapi.json").json()["paths"]

    for path in (
        "/api/v1/gateway/usage/summary",
        "/api/v1/gateway/usage",
        "/api/v1/gateway/sessions",
        "/api/v1/gateway/sessions/{execution_id}",
        "/api/v1/flows/executions/{execution_id}/gateway-events",
        "/api/v1/gateway/prices",
        "/api/v1/budgets",
    ):
        operations = paths.get(path) or paths.get(path + "/")
        assert operations, path
        assert all("gateway" in op["tags"] for op in operations.values() if "tags" in op), path


def invoke(server: LiveServer, *args: str) -> tuple[int, str, str]:
    argv = [*args, "--url", server.url, "--key", server.admin_key]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_shows_usage_and_manages_budgets_and_prices(server: LiveServer) -> None:
    code, out, _ = invoke(server, "usage", "--by", "model")
    assert 0 == code
    assert "claude-sonnet-4-5" in out
    assert "$1.501250001" in out.splitlines()[-1]

    code, out, _ = invoke(server, "budgets", "add", "team-day", "--soft", "8", "--hard", "$10")
    assert (0, "Added budget team-day (account, day): soft $8.000000, hard $10.000000.") == (
        code,
        out.strip(),
    )
    code, out, _ = invoke(server, "budgets", "add", "flow-cap", "--scope", "flow", "--flow",
                          "triage", "--period", "total", "--hard", "50")  # fmt: skip
    assert 0 == code
    code, out, _ = invoke(server, "budgets", "list", "--json")
    listed = json.loads(out)
    assert [("flow-cap", "flow", "triage", None), ("team-day", "account", "", "8.000000")] == [
        (b["name"], b["scope"], b["scope_id"], b["soft_limit"]) for b in listed
    ]
    code, out, _ = invoke(server, "budgets", "list")
    assert "flow:triage" in out
    assert "never" in out
    code, out, _ = invoke(server, "budgets", "remove", "flow-cap")
    assert (0, "Removed budget flow-cap.") == (code, out.strip())

    code, out, _ = invoke(server, "prices", "set", "llama-*", "--input", "0.1", "--output", "0.2")
    assert 0 == code
    assert "input $0.100000, output $0.200000" in out
    code, out, _ = invoke(server, "prices", "list")
    assert "llama-*" in out
    assert "unpriced" in out
    code, out, _ = invoke(server, "prices", "unset", "llama-*")
    assert 0 == code


def test_the_cli_refuses_a_bad_amount(server: LiveServer) -> None:
    result = CliRunner().invoke(
        cli,
        ["budgets", "add", "x", "--hard", "ten", "--url", server.url, "--key", server.admin_key],
    )
    assert 2 == result.exit_code
    assert "not an amount of US dollars" in result.stderr
