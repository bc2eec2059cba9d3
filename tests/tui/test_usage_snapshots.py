"""The Usage screen on a fixed scene: a fixed usage summary and fixed budgets served through
httpx's mock transport, with the frozen clock of :mod:`tests.tui.scenes`. Snapshots at 80x24
and 120x40 (update with ``pytest tests/tui --snapshot-update``); the period and grouping keys
ask the server for what they say; the bars and money formatting; the help lists every key."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import DataTable

from hub.api_client import ApiClient
from hub.wire import BudgetView
from tests.tui import scenes
from tests.tui.conftest import until
from tui.app import PreloopApp
from tui.screens.help import HelpScreen
from tui.screens.usage import UsageScreen, bar, money, period_start


def _at(minutes: float) -> str:
    return (scenes.NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _group(
    key: str | None, requests: int, tokens_in: int, tokens_out: int, cost: str
) -> dict[str, Any]:
    return {"key": key, "requests": requests, "input_tokens": tokens_in,
            "output_tokens": tokens_out, "cached_tokens": tokens_in // 4, "cost": cost}  # fmt: skip


SUMMARIES = {
    "model": [_group("claude-sonnet-4-5", 412, 1_804_220, 220_118, "8.714880"),
              _group("gpt-4o-mini", 1_288, 903_114, 140_772, "0.219930")],
    "flow": [_group("nightly-triage", 1_500, 2_400_000, 300_000, "7.913000"),
             _group(None, 200, 307_334, 60_890, "1.021810")],
    "day": [_group("2026-11-24", 1_700, 2_707_334, 360_890, "8.934810")],
}  # fmt: skip
TOTAL = _group(None, 1_700, 2_707_334, 360_890, "8.934810")
BUDGETS = [
    {"id": "bud_1", "name": "account monthly", "scope": "account", "scope_id": "",
     "period": "month", "soft_limit": "40.00", "hard_limit": "50.00", "spent": "31.250000",
     "reserved": "2.500000", "resets_at": "2026-12-01T00:00:00Z", "state": "ok"},
    {"id": "bud_2", "name": "triage daily", "scope": "flow", "scope_id": "nightly-triage",
     "period": "day", "soft_limit": "5.00", "hard_limit": None, "spent": "7.913000",
     "reserved": "0", "resets_at": "2026-11-25T00:00:00Z", "state": "awaiting_approval"},
    {"id": "bud_3", "name": "ci key", "scope": "api_key", "scope_id": "key_5f2a",
     "period": "total", "soft_limit": None, "hard_limit": "1.00", "spent": "1.000000",
     "reserved": "0", "resets_at": None, "state": "exceeded"},
]  # fmt: skip
for _budget in BUDGETS:  # what the API answers beside the fields the screen shows
    _budget |= {"on_soft": "warn", "approval_workflow": None, "created_at": _at(-60 * 24 * 30),
                "period_start": _at(-60), "approval_id": None}  # fmt: skip


class Server:
    """The mock transport's handler; keeps the usage queries it was asked."""

    def __init__(self) -> None:
        self.asked: list[dict[str, str]] = []
        self.budget_calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/gateway/usage/summary":
            params = dict(request.url.params)
            self.asked.append(params)
            groups = SUMMARIES[params["group_by"]]
            summary = {"group_by": params["group_by"], "since": params.get("since"),
                       "until": None, "flow": None, "groups": groups, "total": TOTAL}  # fmt: skip
            return httpx.Response(200, json=summary)
        if path == "/api/v1/budgets":
            self.budget_calls += 1
            return httpx.Response(200, json=BUDGETS)
        return scenes.handler(request)


def usage_app(server: Server | None = None) -> PreloopApp:
    transport = httpx.MockTransport(server or Server())
    client = ApiClient(scenes.URL, "pl_test", transport=transport)
    return PreloopApp(client, scenes.ConnectedFeed(), now=lambda: scenes.NOW)


def _usage(app: Any) -> UsageScreen | None:
    return app.screen if isinstance(app.screen, UsageScreen) else None


async def _shown(pilot: Pilot[Any]) -> None:
    await pilot.press("6")
    screen = await until(pilot, lambda: _usage(pilot.app))
    await until(pilot, lambda: (screen.summary is not None and len(screen.budgets) == 3) or None)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_usage_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(usage_app(), terminal_size=size, run_before=_shown)


def _rows(table: DataTable[Any]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def test_period_and_grouping_ask_the_server_and_redraw() -> None:
    server = Server()
    app = usage_app(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await _shown(pilot)
        screen = _usage(app)
        assert screen is not None
        spend = screen.query_one("#spend", DataTable)
        assert [row[0] for row in _rows(spend)] == [
            "claude-sonnet-4-5",
            "gpt-4o-mini",
            "Account total",
        ]
        assert _rows(spend)[-1][1:] == ["1,700", "2,707,334", "360,890", "676,833", "$8.9348"]
        assert server.asked[-1] == {"group_by": "model", "since": "2026-11-24T00:00:00+00:00"}
        await pilot.press("g")
        await until(pilot, lambda: server.asked[-1]["group_by"] == "flow" or None)
        await until(pilot, lambda: _rows(spend)[0][0] == "nightly-triage" or None)
        assert _rows(spend)[1][0] == "(none)"  # usage outside any flow
        await pilot.press("p")
        await until(pilot, lambda: server.asked[-1]["since"] == "2026-11-01T00:00:00+00:00" or None)
        assert server.asked[-1]["group_by"] == "flow"
        budgets = _rows(screen.query_one("#budgets", DataTable))
        assert [row[0] for row in budgets] == ["account monthly", "triage daily", "ci key"]
        assert budgets[0][1:7] == [
            "● ok",
            "██████████▒░│░░░ 62%",
            "$31.25",
            "$2.50",
            "$40.00",
            "$50.00",
        ]
        assert budgets[1][1:] == [
            "◐ awaiting approval",
            "████████████████ 158%",
            "$7.91",
            "$0.00",
            "$5.00",
            "-",
            "flow:nightly-triage",
            "day",
            "2026-11-25 00:00",
        ]
        assert (budgets[2][1], budgets[2][9]) == ("✕ exceeded", "never")


def test_bars_and_money() -> None:
    def budget(spent: str, reserved: str = "0", soft: str | None = None, hard: str | None = None):  # type: ignore[no-untyped-def]
        return BudgetView(
            id="b",
            name="b",
            scope="account",
            scope_id="",
            period="day",
            spent=spent,
            reserved=reserved,
            soft_limit=soft,
            hard_limit=hard,
            on_soft="warn",
            approval_workflow=None,
            created_at=scenes.NOW,
            period_start=scenes.NOW,
            resets_at=None,
            state="ok",
            approval_id=None,
        )

    assert bar(budget("5", "2.5", hard="10"), width=10) == "█████▒▒░░░ 50%"
    assert bar(budget("2", soft="8", hard="10"), width=10) == "██░░░░░░│░ 20%"
    assert bar(budget("12", hard="10"), width=10) == "██████████ 120%"
    assert bar(budget("3", soft="4"), width=4) == "███░ 75%"  # only a soft limit: measured on it
    assert bar(budget("3")) == "no limit"
    assert [money(Decimal(v)) for v in ("0", "0.00125", "0.25", "1234.5")] == [
        "$0.00",
        "$0.001250",
        "$0.25",
        "$1,234.50",
    ]
    assert money(Decimal("0.0125"), 4) == "$0.0125"
    assert bar(budget("5", "0.01", hard="10"), width=10) == "█████▒░░░░ 50%"
    assert money(None) == "-"
    assert period_start("month", scenes.NOW).isoformat() == "2026-11-01T00:00:00+00:00"


async def test_the_help_lists_every_key_of_the_screen() -> None:
    app = usage_app()
    declared = [*UsageScreen.BINDINGS, *PreloopApp.BINDINGS]
    async with app.run_test(size=(80, 24)) as pilot:
        await _shown(pilot)
        await pilot.press("question_mark")
        help_screen = await until(
            pilot, lambda: app.screen if isinstance(app.screen, HelpScreen) else None
        )
        table = help_screen.query_one(DataTable)
        descriptions = {str(table.get_row_at(i)[1]) for i in range(table.row_count)}
        for binding in declared:
            assert isinstance(binding, Binding)
            assert binding.description in descriptions
        assert "Usage" in descriptions  # the 6 key
