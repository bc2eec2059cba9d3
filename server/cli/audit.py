"""``preloop audit``: search, export and verify the audit trail."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from server.cli.client import connect, server_options
from server.cli.output import echo_json, json_option, table


@click.group()
def audit() -> None:
    """Search, export and verify the audit trail."""


@audit.command(name="list")
@click.option("--kind", default=None, help="Event kind, or a prefix ending in '.' (tool.).")
@click.option("--actor", default=None, help="Key or user id that acted.")
@click.option("--tool", default=None, help="Tool name in the event.")
@click.option("--decision", default=None, help="Decision in the event (allow, deny, ...).")
@click.option("--since", default=None, help="ISO time, e.g. 2026-11-24T00:00:00Z.")
@click.option("--until", default=None, help="ISO time.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--oldest-first", is_flag=True, help="Oldest events first.")
@server_options
@json_option
def list_events(
    kind: str | None,
    actor: str | None,
    tool: str | None,
    decision: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    oldest_first: bool,
    url: str | None,
    key: str | None,
    profile: str,
    as_json: bool,
) -> None:
    """List audit events, newest first."""
    rows = connect(url, key, profile).get(
        "/api/v1/audit/",
        kind=kind,
        actor=actor,
        tool=tool,
        decision=decision,
        since=since,
        until=until,
        limit=limit,
        order="oldest" if oldest_first else "newest",
    )
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            ["seq", "at", "kind", "actor", "summary"],
            [[r["seq"], r["at"][:19], r["kind"], r["actor"], _summary(r["data"])] for r in rows],
        )
    )


def _summary(data: dict[str, object]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in data.items() if not isinstance(v, dict | list))
    return text if len(text) <= 80 else text[:77] + "..."


@audit.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl"]),
    default="jsonl",
    show_default=True,
    help="Output format.",
)
@click.option("-o", "--output", default=None, help="Write to this file instead of stdout.")
@server_options
def export(fmt: str, output: str | None, url: str | None, key: str | None, profile: str) -> None:
    """Export every event, oldest first, as JSON Lines (with hashes, for offline checks)."""
    lines = connect(url, key, profile).stream_lines("/api/v1/audit/export")
    if output:
        count = 0
        with Path(output).open("w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line + "\n")
                count += 1
        click.echo(f"Wrote {count} events to {output}.", err=True)
    else:
        for line in lines:
            click.echo(line)


@audit.command()
@server_options
@json_option
def verify(url: str | None, key: str | None, profile: str, as_json: bool) -> None:
    """Recompute the hash chain. Exit 1 if any event was edited, deleted or reordered."""
    report = connect(url, key, profile).get("/api/v1/audit/verify")
    if as_json:
        echo_json(report)
    elif report["ok"]:
        click.echo(f"OK: {report['events']} events, the hash chain is intact.")
    else:
        click.echo(f"BROKEN: {len(report['problems'])} problem(s) in {report['events']} events:")
        for problem in report["problems"]:
            click.echo(f"  - {problem}")
    if not report["ok"]:
        sys.exit(1)
