"""``preloop audit``: search, export and verify the audit trail."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from server.cli.output import echo_json, json_option, stamp, table
from server.cli.target import TargetFlags, target_options

if TYPE_CHECKING:
    from hub.api_client import ApiClient
    from hub.wire import AuditEventView


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
@target_options
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
    target: TargetFlags,
    as_json: bool,
) -> None:
    """List audit events, newest first."""
    params = {
        "kind": kind,
        "actor": actor,
        "tool": tool,
        "decision": decision,
        "since": since,
        "until": until,
        "limit": limit,
        "order": "oldest" if oldest_first else "newest",
    }
    rows = target.call(lambda c: c.audit_page(params))
    if as_json:
        echo_json(rows)
        return
    click.echo(events_table(rows))


# The columns a reader scans first; a column no listed event has is left out (a list of key
# events has no decision). DETAILS holds the rest of the event's data: `--json` holds it all.
_COLUMNS = ("time", "kind", "actor", "target", "decision", "rule", "status", "details")
_OPTIONAL = frozenset({"target", "decision", "rule", "status"})
_SHOWN = frozenset({"server", "tool", "prompt", "uri", "decision", "rule", "status"})
_DETAILS_FIRST = ("decided_by_name", "error", "args")  # who approved, what failed, what was asked
# Ids the names beside them stand for: shown by `--json`, left out of the table.
_NAMED = {"decided_by": "decided_by_name", "approver": "approver_name"}
_DETAILS_WIDTH = 80


def events_table(rows: list[AuditEventView]) -> str:
    """Audit events as a table: time, kind, actor, what was called (server/tool), decision,
    rule, status, then the remaining data, shortened."""
    cells = [_event_cells(row) for row in rows]
    shown = [
        name
        for name in _COLUMNS
        if name not in _OPTIONAL or any(cell[name] is not None for cell in cells)
    ]
    return table(shown, [[cell[name] for name in shown] for cell in cells])


def _event_cells(row: AuditEventView) -> dict[str, Any]:
    data = row.data
    return {
        "time": stamp(row.at).replace("T", " "),
        "kind": row.kind,
        "actor": _actor(row.actor, data),
        "target": _target(data),
        "decision": data.get("decision"),
        "rule": data.get("rule"),
        "status": data.get("status"),
        "details": _details(data),
    }


def _actor(actor: str, data: dict[str, Any]) -> str:
    """The name of the person who acted where the event holds it (a vote's approver, who
    decided), else the recorded id (a key, a user, ``system``)."""
    for id_key, name_key in _NAMED.items():
        if data.get(name_key) and data.get(id_key, actor) == actor:
            return str(data[name_key])
    return actor


def _target(data: dict[str, Any]) -> str | None:
    """``server/tool`` (or the prompt or resource) the event is about."""
    name = data.get("tool") or data.get("prompt") or data.get("uri")
    server = data.get("server")
    if server and name:
        return f"{server}/{name}"
    return str(server or name) if (server or name) else None


def _details(data: dict[str, Any]) -> str:
    keys = [k for k in _DETAILS_FIRST if k in data]
    keys += [k for k in data if k not in _SHOWN and k not in keys]
    keys = [k for k in keys if not (k in _NAMED and data.get(_NAMED[k]))]
    text = ", ".join(f"{k}={_compact(data[k])}" for k in keys if data[k] not in (None, ""))
    if len(text) <= _DETAILS_WIDTH:
        return text
    return text[: _DETAILS_WIDTH - 3] + "..."


def _compact(value: Any) -> str:
    if isinstance(value, dict | list):
        import msgspec

        return msgspec.json.encode(value).decode()
    return str(value)


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
@target_options
def export(fmt: str, output: str | None, target: TargetFlags) -> None:
    """Export every event, oldest first, as JSON Lines (with hashes, for offline checks)."""
    if output:
        into = Path(output)
        count = target.call(lambda c: c.export_audit({}, into))
        click.echo(f"Wrote {count} events to {output}.", err=True)
        return

    async def echo_lines(client: ApiClient) -> None:
        async for line in client.audit_lines():
            click.echo(line)

    target.call(echo_lines)


@audit.command()
@target_options
@json_option
def verify(target: TargetFlags, as_json: bool) -> None:
    """Recompute the hash chain. Exit 1 if any event was edited, deleted or reordered."""
    report = target.call(lambda c: c.verify_audit())
    if as_json:
        echo_json(report)
    elif report.ok:
        click.echo(f"OK: {report.events} events, the hash chain is intact.")
    else:
        click.echo(f"BROKEN: {len(report.problems)} problem(s) in {report.events} events:")
        for problem in report.problems:
            click.echo(f"  - {problem}")
    if not report.ok:
        sys.exit(1)
