"""The Usage screen: what the account spent on models through the gateway, and its budgets.

Two panes. **Spend**: the account's gateway usage for the chosen period (``p``: today or this
month, both from 00:00 UTC, the ledger's day), grouped by model, by flow or by day (``g``
cycles), with requests, tokens and cost per group and the account's total as the last row
(``GET /api/v1/gateway/usage/summary``). **Budgets**: every budget with a bar of its spend
(``█``) and open reservations (``▒``) against its hard limit (else its soft limit), the soft
limit's position, its state and when it resets (``GET /api/v1/budgets``).

Money stays ``Decimal`` from the JSON strings to the screen (never a float). Both are loaded
when the screen is first shown, on ``r``, every 30 seconds while the screen is installed, and
when the live connection comes back; every REST call runs in a worker through the app's one
client, its errors going to the app's one error modal (a key without access gets the server's
refusal there).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey

from hub.errors import PreloopError
from hub.wire import BudgetView, UsageSummary, UsageTotals, dollars
from tui.screens.base import DashboardScreen

PERIODS = ("today", "month")
PERIOD_TITLES = {"today": "today", "month": "this month"}
GROUPINGS = ("model", "flow", "day")
SPEND_COLUMNS = (("key", "Model"), ("requests", "Requests"), ("input", "Input tok"),
                 ("output", "Output tok"), ("cached", "Cached tok"), ("cost", "Cost"))  # fmt: skip
BUDGET_COLUMNS = (("name", "Budget"), ("state", "State"), ("bar", "Use"), ("spent", "Spent"),
                  ("reserved", "Reserved"), ("soft", "Soft"), ("hard", "Hard"),
                  ("scope", "Scope"), ("period", "Period"), ("resets", "Resets (UTC)"))  # fmt: skip
TOTAL_ROW = "__total__"
BAR_WIDTH = 16
REFRESH_SECONDS = 30.0
SPEND_PLACES = 4  # a model's spend is often cents: four decimals, aligned

# Each state in words with a mark, read without colour in light and dark themes.
_STATE_MARK = {"ok": "●", "warning": "▲", "exceeded": "✕", "awaiting_approval": "◐"}
_STATE_STYLE = {"warning": "bold yellow", "exceeded": "bold red", "awaiting_approval": "bold"}


def period_start(period: str, now: datetime) -> datetime:
    """00:00 UTC today, or of the month's first day (the ledger's own boundaries)."""
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.replace(day=1) if period == "month" else start


def money(amount: Decimal | str | None, places: int = 2) -> str:
    """Dollars (a ``Decimal``, or as the API writes them) with ``places`` decimals; a spend
    too small to show so gets six (never a misleading $0.00)."""
    if amount is None:
        return "-"
    amount = Decimal(amount)
    if amount and abs(amount) < Decimal(1).scaleb(-places):
        return f"${amount:,.6f}"
    return f"${amount:,.{places}f}"


def tokens(count: int) -> str:
    return f"{count:,}"


def budget_limit(budget: BudgetView) -> Decimal | None:
    """What the bar is measured against: the hard limit, else the soft one."""
    return dollars(budget.hard_limit if budget.hard_limit is not None else budget.soft_limit)


def bar(budget: BudgetView, width: int = BAR_WIDTH) -> str:
    """``█`` spent, ``▒`` reserved, ``░`` left, ``│`` where the soft limit is (under a hard
    one); ``no limit`` when the budget has neither."""
    limit = budget_limit(budget)
    if limit is None or limit <= 0:
        return "no limit"

    def cells(amount: Decimal) -> int:
        return max(0, min(width, int(amount / limit * width)))

    spent_amount, reserved_amount = Decimal(budget.spent), Decimal(budget.reserved)
    spent = cells(spent_amount)
    reserved = min(width - spent, cells(spent_amount + reserved_amount) - spent)
    if reserved_amount > 0 and reserved == 0 and spent < width:
        reserved = 1  # an open reservation is always visible
    chars = ["█"] * spent + ["▒"] * reserved + ["░"] * (width - spent - reserved)
    soft = dollars(budget.soft_limit)
    if budget.hard_limit is not None and soft is not None and 0 < soft < limit:
        chars[min(width - 1, cells(soft))] = "│"
    percent = spent_amount / limit * 100
    return f"{''.join(chars)} {percent:.0f}%"


def state_text(state: str) -> Text:
    words = state.replace("_", " ")
    return Text(f"{_STATE_MARK.get(state, '?')} {words}", style=_STATE_STYLE.get(state, ""))


def scope_text(budget: BudgetView) -> str:
    return f"{budget.scope}:{budget.scope_id}" if budget.scope_id else budget.scope


class UsageScreen(DashboardScreen):
    HELP_SECTION = "Usage"
    CSS_PATH = "usage.tcss"
    BINDINGS = [
        Binding("p", "period", "Today / this month"),
        Binding("g", "group", "Group: model/flow/day"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.period = "today"
        self.group_by = "model"
        self.summary: UsageSummary | None = None
        self.budgets: list[BudgetView] = []
        self.loaded_at: datetime | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="usage-body"):
            yield Static(id="usage-note")
            spend: DataTable[str] = DataTable(id="spend", cursor_type="row", zebra_stripes=True)
            spend.border_title = "Spend"
            yield spend
            budgets: DataTable[str] = DataTable(id="budgets", cursor_type="row")
            budgets.border_title = "Budgets"
            yield budgets

    def on_mount(self) -> None:
        for table, columns in (("#spend", SPEND_COLUMNS), ("#budgets", BUDGET_COLUMNS)):
            widget = self.query_one(table, DataTable)
            for key, label in columns:
                widget.add_column(label, key=key)
        self.set_interval(REFRESH_SECONDS, self.reload)
        self._redraw()
        self.reload()

    def reconnected(self) -> None:
        self.reload()  # the server is back: show what was spent meanwhile

    # -- workers (all I/O) ----------------------------------------------------------------

    @work(group="usage-reload", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        client = self.preloop.client
        now = self.preloop.now()
        try:
            summary = await client.usage_summary(self.group_by, period_start(self.period, now))
            budgets = await client.budgets()
        except PreloopError as exc:
            self.preloop.show_error(exc)
            return
        self.summary, self.budgets, self.loaded_at = summary, budgets, now
        self._redraw()

    # -- actions --------------------------------------------------------------------------

    def action_period(self) -> None:
        self.period = PERIODS[(PERIODS.index(self.period) + 1) % len(PERIODS)]
        self.summary = None
        self._redraw()
        self.reload()

    def action_group(self) -> None:
        self.group_by = GROUPINGS[(GROUPINGS.index(self.group_by) + 1) % len(GROUPINGS)]
        self.summary = None
        self._redraw()
        self.reload()

    # -- rendering ------------------------------------------------------------------------

    def _redraw(self) -> None:
        self._render_note()
        self._render_spend()
        self._render_budgets()

    def _render_note(self) -> None:
        since = period_start(self.period, self.preloop.now())
        loaded = f" · loaded {self.loaded_at.strftime('%H:%M:%S')} UTC" if self.loaded_at else ""
        self.query_one("#usage-note", Static).update(
            f"Spend {PERIOD_TITLES[self.period]} (since {since.strftime('%Y-%m-%d %H:%M')} UTC) "
            f"by {self.group_by}{loaded}"
        )

    def _render_spend(self) -> None:
        table = self.query_one("#spend", DataTable)
        table.clear()
        table.columns[ColumnKey("key")].label = Text(self.group_by.capitalize())
        table.border_title = f"Spend {PERIOD_TITLES[self.period]} by {self.group_by}"
        summary = self.summary
        if summary is None:
            table.border_subtitle = "loading…"
            return
        for group in summary.groups:
            table.add_row(*_spend_cells(group, group.key or "(none)"), key=group.key or "")
        total = Text("Account total", style="bold")
        table.add_row(*_spend_cells(summary.total, total, bold=True), key=TOTAL_ROW)
        table.border_subtitle = (
            f"{summary.total.requests:,} requests · {money(summary.total.cost, SPEND_PLACES)}"
        )

    def _render_budgets(self) -> None:
        table = self.query_one("#budgets", DataTable)
        table.clear()
        for budget in self.budgets:
            table.add_row(
                budget.name,
                state_text(budget.state),
                bar(budget),
                *(
                    Text(money(amount), justify="right")
                    for amount in (
                        budget.spent,
                        budget.reserved,
                        budget.soft_limit,
                        budget.hard_limit,
                    )
                ),
                scope_text(budget),
                budget.period,
                budget.resets_at.strftime("%Y-%m-%d %H:%M") if budget.resets_at else "never",
                key=budget.id,
            )
        over = sum(budget.state != "ok" for budget in self.budgets)
        table.border_subtitle = (
            f"{len(self.budgets)} budgets · {over} need attention" if self.budgets else "none"
        )


def _spend_cells(group: UsageTotals, key: str | Text, *, bold: bool = False) -> list[str | Text]:
    style = "bold" if bold else ""
    values = (
        tokens(group.requests),
        tokens(group.input_tokens),
        tokens(group.output_tokens),
        tokens(group.cached_tokens),
        money(group.cost, SPEND_PLACES),
    )
    return [key, *(Text(value, style=style, justify="right") for value in values)]
