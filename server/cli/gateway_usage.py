"""``preloop usage``, ``preloop budgets`` and ``preloop prices``: the model gateway's
accounting from the command line (through the REST API)."""

from __future__ import annotations

from typing import Any

import click

from server.cli.output import echo_json, json_option, stamp, table
from server.cli.target import TargetFlags, target_options


def _amount(value: str | None) -> str | None:
    """A dollar amount typed by a person: ``8``, ``8.5``, ``$8.50``."""
    if value is None:
        return None
    from decimal import Decimal, InvalidOperation

    text = value.strip().removeprefix("$")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise click.BadParameter(f"{value!r} is not an amount of US dollars") from exc
    if not amount.is_finite() or amount < 0:
        raise click.BadParameter(f"{value!r}: amounts are 0 or more")
    return text


def _dollars(text: str | None) -> str:
    return "-" if text is None else f"${text}"


@click.command()
@click.option(
    "--by",
    "group_by",
    type=click.Choice(["day", "model", "flow", "api_key"]),
    default="day",
    show_default=True,
    help="How to group the totals.",
)
@click.option("--flow", default=None, help="Only this flow's usage.")
@click.option("--since", default=None, help="From this time (ISO 8601, e.g. 2026-11-01T00:00:00Z).")
@click.option("--until", default=None, help="Before this time (ISO 8601).")
@target_options
@json_option
def usage(
    group_by: str,
    flow: str | None,
    since: str | None,
    until: str | None,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Model gateway usage: requests, tokens and cost per day, model, flow or API key."""
    import msgspec

    result = target.call(lambda c: c.usage_summary(group_by, since, until=until, flow=flow))
    if as_json:
        echo_json(result)
        return
    rows = [*result.groups, msgspec.structs.replace(result.total, key="total")]
    click.echo(
        table(
            [group_by, "requests", "input", "output", "cached", "cost"],
            [
                [
                    "(none)" if r.key is None else r.key,
                    r.requests,
                    r.input_tokens,
                    r.output_tokens,
                    r.cached_tokens,
                    _dollars(r.cost),
                ]
                for r in rows
            ],
        )
    )


@click.group()
def budgets() -> None:
    """Spending limits of the model gateway: per account, flow or API key."""


@budgets.command(name="list")
@target_options
@json_option
def list_budgets(target: TargetFlags, as_json: bool) -> None:
    """Every budget with this period's spend, reservations and state."""
    rows = target.call(lambda c: c.budgets())
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            [
                "name",
                "scope",
                "period",
                "spent",
                "reserved",
                "soft",
                "hard",
                "on soft",
                "state",
                "resets",
            ],
            [
                [
                    r.name,
                    r.scope + (f":{r.scope_id}" if r.scope_id else ""),
                    r.period,
                    _dollars(r.spent),
                    _dollars(r.reserved),
                    _dollars(r.soft_limit),
                    _dollars(r.hard_limit),
                    r.on_soft + (f" ({r.approval_workflow})" if r.approval_workflow else ""),
                    r.state,
                    stamp(r.resets_at) or "never",
                ]
                for r in rows
            ],
        )
    )


@budgets.command()
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(["account", "flow", "api_key"]),
    default="account",
    show_default=True,
    help="What the budget limits.",
)
@click.option("--flow", "flow_name", default=None, help="The flow (with --scope flow).")
@click.option(
    "--api-key", "api_key_id", default=None, help="The API key id (with --scope api_key)."
)
@click.option(
    "--period",
    type=click.Choice(["day", "month", "total"]),
    default="day",
    show_default=True,
    help="Resets at 00:00 UTC daily, on the 1st monthly, or never.",
)
@click.option("--soft", default=None, help="Soft limit in US dollars: warn (or ask) past it.")
@click.option("--hard", default=None, help="Hard limit in US dollars: refuse past it.")
@click.option(
    "--on-soft",
    type=click.Choice(["warn", "ask"]),
    default="warn",
    show_default=True,
    help="Past the soft limit: warn, or pause and ask through --workflow.",
)
@click.option(
    "--workflow",
    default=None,
    help="Approval workflow told past the soft limit (its channels and approvers); "
    "with --on-soft ask also the one that decides.",
)
@target_options
@json_option
def add(
    name: str,
    scope: str,
    flow_name: str | None,
    api_key_id: str | None,
    period: str,
    soft: str | None,
    hard: str | None,
    on_soft: str,
    workflow: str | None,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Add a budget, e.g. ``preloop budgets add team-day --soft 8 --hard 10``."""
    scope_id = {"account": "", "flow": flow_name or "", "api_key": api_key_id or ""}[scope]
    if scope != "flow" and flow_name:
        raise click.UsageError("--flow goes with --scope flow")
    if scope != "api_key" and api_key_id:
        raise click.UsageError("--api-key goes with --scope api_key")
    body: dict[str, Any] = {
        "name": name,
        "scope": scope,
        "scope_id": scope_id,
        "period": period,
        "soft_limit": _amount(soft),
        "hard_limit": _amount(hard),
        "on_soft": on_soft,
        "approval_workflow": workflow,
    }
    result = target.call(lambda c: c.add_budget(body))
    if as_json:
        echo_json(result)
        return
    limits = ", ".join(
        f"{label} {_dollars(amount)}"
        for label, amount in (("soft", result.soft_limit), ("hard", result.hard_limit))
        if amount is not None
    )
    click.echo(f"Added budget {result.name} ({result.scope}, {result.period}): {limits}.")
    if result.approval_workflow:
        what = "asks" if result.on_soft == "ask" else "tells"
        click.echo(f"Past the soft limit it {what} workflow {result.approval_workflow}.")


@budgets.command()
@click.argument("name")
@target_options
def remove(name: str, target: TargetFlags) -> None:
    """Remove a budget (by name or id)."""
    target.call(lambda c: c.remove_budget(name))
    click.echo(f"Removed budget {name}.")


@click.group()
def prices() -> None:
    """Model prices (US dollars per million tokens): built in, overridable per account."""


@prices.command(name="list")
@click.option("--all", "show_all", is_flag=True, help="Also list the built-in prices.")
@target_options
@json_option
def list_prices(show_all: bool, target: TargetFlags, as_json: bool) -> None:
    """The account's prices (and with --all the built-in table)."""
    result = target.call(lambda c: c.prices())
    if as_json:
        echo_json(result)
        return
    rows = [*result.overrides, *(result.builtin if show_all else []), result.unpriced]
    click.echo(
        table(
            ["model", "input", "output", "cached", "source"],
            [
                [r.model, _dollars(r.input), _dollars(r.output), _dollars(r.cached), r.source]
                for r in rows
            ],
        )
    )


@prices.command(name="set")
@click.argument("model")
@click.option("--input", "input_price", required=True, help="Dollars per million input tokens.")
@click.option("--output", "output_price", required=True, help="Dollars per million output tokens.")
@click.option("--cached", default=None, help="Dollars per million cached input tokens.")
@target_options
@json_option
def set_price(
    model: str,
    input_price: str,
    output_price: str,
    cached: str | None,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Set this account's price for MODEL (an id or a glob such as 'gpt-4o*')."""
    body = {
        "model": model,
        "input": _amount(input_price),
        "output": _amount(output_price),
        "cached": _amount(cached),
    }
    result = target.call(lambda c: c.set_price(body))
    if as_json:
        echo_json(result)
        return
    click.echo(
        f"Price of {result.model}: input ${result.input}, output ${result.output}"
        + (f", cached ${result.cached}" if result.cached is not None else "")
        + " per million tokens."
    )


@prices.command()
@click.argument("model")
@target_options
def unset(model: str, target: TargetFlags) -> None:
    """Remove this account's price for MODEL (the built-in price applies again)."""
    target.call(lambda c: c.unset_price(model))
    click.echo(f"Removed the price of {model}.")
