"""``preloop sessions capture``: what the model gateway captures of its traffic, per account,
flow or API key (``/api/v1/gateway/capture``, admin only; docs/search.md, decision 0109).

    preloop sessions capture list
    preloop sessions capture set --flow triage --mode full --retention-days 7
    preloop sessions capture set --mode redacted_preview           # the whole account
    preloop sessions capture set --api-key key_abc --mode off      # never this key
    preloop sessions capture unset --flow triage

Capture is off until a rule turns it on; the most specific rule applies (key over flow over
account). Added to the ``preloop sessions`` group by server/cli/sessions.py.
"""

from __future__ import annotations

import click

from server.cli.output import echo_json, json_option, stamp, table
from server.cli.target import TargetFlags, target_options

MODES = ["off", "metadata", "redacted_preview", "full"]


def _scope(flow: str | None, api_key: str | None) -> tuple[str, str]:
    if flow is not None and api_key is not None:
        raise click.UsageError("give --flow or --api-key, not both (neither: the account)")
    if flow is not None:
        return "flow", flow
    if api_key is not None:
        return "api_key", api_key
    return "account", ""


_FLOW_HELP = "A flow, by name (default: the whole account)."
_KEY_HELP = "An API key, by id (key_...; rt_... for one flow run)."


@click.group()
def capture() -> None:
    """What the model gateway captures (off unless a rule says so; admin only)."""


@capture.command(name="list")
@target_options
@json_option
def list_rules(target: TargetFlags, as_json: bool) -> None:
    """The account's capture rules."""
    found = target.call(lambda c: c.capture_rules())
    if as_json:
        echo_json(found)
        return
    if not found.rules:
        click.echo("No capture rules: the gateway captures nothing beyond the usage ledger.")
        return
    rows = [
        [r.scope, r.subject or "-", r.mode, r.max_bytes, r.retention_days, stamp(r.updated_at)]
        for r in found.rules
    ]
    click.echo(table(["scope", "subject", "mode", "max bytes", "retention days", "updated"], rows))


@capture.command(name="set")
@click.option("--flow", default=None, help=_FLOW_HELP)
@click.option("--api-key", default=None, help=_KEY_HELP)
@click.option("--mode", type=click.Choice(MODES), required=True, help="What is kept per request.")
@click.option(
    "--max-bytes",
    type=click.IntRange(1),
    default=None,
    help="Cap per request and per answer (default: the mode's).",
)
@click.option(
    "--retention-days",
    type=click.IntRange(1),
    default=None,
    help="Days a captured interaction is kept (default: the server's).",
)
@target_options
@json_option
def set_rule(
    flow: str | None,
    api_key: str | None,
    mode: str,
    max_bytes: int | None,
    retention_days: int | None,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Capture the account's, a flow's or an API key's gateway traffic in MODE."""
    scope, subject = _scope(flow, api_key)
    body: dict[str, object] = {"scope": scope, "subject": subject, "mode": mode}
    if max_bytes is not None:
        body["max_bytes"] = max_bytes
    if retention_days is not None:
        body["retention_days"] = retention_days
    rule = target.call(lambda c: c.set_capture_rule(body))
    if as_json:
        echo_json(rule)
        return
    who = "the account" if scope == "account" else f"{scope} {subject}"
    click.echo(
        f"capture {rule.mode} for {who} (at most {rule.max_bytes:,} bytes, kept "
        f"{rule.retention_days} days)"
    )


@capture.command(name="unset")
@click.option("--flow", default=None, help=_FLOW_HELP)
@click.option("--api-key", default=None, help=_KEY_HELP)
@target_options
def unset_rule(flow: str | None, api_key: str | None, target: TargetFlags) -> None:
    """Remove the account's, a flow's or an API key's capture rule."""
    scope, subject = _scope(flow, api_key)
    target.call(lambda c: c.delete_capture_rule(scope, subject))
    who = "the account" if scope == "account" else f"{scope} {subject}"
    click.echo(f"removed the capture rule of {who}")
