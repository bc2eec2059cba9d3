"""The Usage screen against a real server (uvicorn, SQLite) with the real ledger and budgets:
usage recorded through the hub's ``UsageLedger`` and a budget's reservation settled through
``BudgetService`` (what the gateway does for each request), then ``6`` shows them; ``g`` and
``p`` ask the server again; a viewer's key may read them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from textual.widgets import DataTable

from hub.api_client import ApiClient
from hub.ids import new_id
from hub.model_gateway.records import Attribution, BudgetPeriod, BudgetScope, UsageRecord
from server.hub_services import Hub
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.tui.conftest import people_of, until
from tui.app import PreloopApp
from tui.screens.usage import UsageScreen


def _usage(
    account_id: str, model: str, flow: str | None, cost: str, tokens: tuple[int, int, int]
) -> UsageRecord:
    return UsageRecord(
        id=new_id("use"),
        account_id=account_id,
        api_key_id="key_test",
        principal="flow:" + flow if flow else "ada@example.com",
        flow=flow,
        execution_id=None,
        endpoint="openai.chat",
        model=model,
        upstream_model=model,
        provider="fake",
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cached_tokens=tokens[2],
        cost=Decimal(cost),
        latency_ms=12.5,
        status=200,
        outcome="ok",
        stream=False,
        created_at=datetime.now(UTC),
    )


async def _spend(hub: Hub) -> None:
    account = await hub.identity.default_account()
    for record in (
        _usage(account.id, "gpt-fake", "triage", "0.012500", (1000, 200, 100)),
        _usage(account.id, "gpt-fake", None, "0.002500", (300, 50, 0)),
        _usage(account.id, "claude-fake", "triage", "0.250000", (8000, 900, 2000)),
    ):
        hub.ledger.record(record)
    await hub.ledger.flush()
    await hub.budgets.add(
        account.id,
        name="monthly",
        scope=BudgetScope.ACCOUNT,
        period=BudgetPeriod.MONTH,
        soft_limit=Decimal("0.20"),
        hard_limit=Decimal("1.00"),
        actor="test",
    )
    await hub.budgets.add(
        account.id,
        name="triage-daily",
        scope=BudgetScope.FLOW,
        scope_id="triage",
        period=BudgetPeriod.DAY,
        hard_limit=Decimal("0.25"),
        actor="test",
    )
    who = Attribution(account_id=account.id, api_key_id="key_test", principal="flow:triage",
                      flow="triage")  # fmt: skip
    admission = await hub.budgets.admit(who, model="claude-fake", estimate=Decimal("0.24"))
    await hub.budgets.settle(admission, Decimal("0.262500"))


@pytest.fixture
def usage_server(tmp_path: Path) -> Iterator[LiveServer]:
    with run_live(make_settings(tmp_path), on_ready=_spend) as live:
        yield live


def _rows(app: PreloopApp, table: str) -> list[list[str]]:
    screen = app.main_screens["usage"]
    widget = screen.query_one(table, DataTable)
    return [[str(cell) for cell in widget.get_row_at(i)] for i in range(widget.row_count)]


async def test_the_usage_screen_shows_the_ledger_and_the_budgets(
    usage_server: LiveServer,
) -> None:
    people = await people_of(usage_server)
    app = PreloopApp(ApiClient(usage_server.url, people.viewer))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        screen = app.main_screens["usage"]
        assert isinstance(screen, UsageScreen)
        await until(pilot, lambda: (screen.summary is not None and screen.budgets) or None)
        await pilot.pause()
        spend = _rows(app, "#spend")
        assert {row[0] for row in spend[:-1]} == {"gpt-fake", "claude-fake"}
        by_model = {row[0]: row for row in spend}
        assert by_model["gpt-fake"][1:] == ["2", "1,300", "250", "100", "$0.0150"]
        assert by_model["Account total"][1:] == ["3", "9,300", "1,150", "2,100", "$0.2650"]
        await pilot.press("g")  # by flow
        await until(pilot, lambda: _rows(app, "#spend")[0][0] in ("triage", "(none)") or None)
        flows = {row[0]: row[-1] for row in _rows(app, "#spend")}
        assert flows == {"triage": "$0.2625", "(none)": "$0.0025", "Account total": "$0.2650"}
        await pilot.press("p")  # this month: the same records
        await until(pilot, lambda: (screen.period == "month" and screen.summary) or None)
        budgets = {row[0]: row for row in _rows(app, "#budgets")}
        assert set(budgets) == {"monthly", "triage-daily"}
        assert budgets["monthly"][1] == "▲ warning"  # $0.26 spent, past the soft $0.20
        assert budgets["monthly"][3:7] == ["$0.26", "$0.00", "$0.20", "$1.00"]
        assert budgets["triage-daily"][1] == "✕ exceeded"
        assert budgets["triage-daily"][7:9] == ["flow:triage", "day"]
