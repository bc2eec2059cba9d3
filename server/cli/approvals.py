"""``preloop approvals``: list, show, approve and deny approval requests."""

from __future__ import annotations

from typing import Any

import click

from server.cli.client import connect, server_options
from server.cli.output import echo_json, json_option, table

STATUSES = ["pending", "approved", "denied", "expired", "cancelled"]


@click.group()
def approvals() -> None:
    """List, show and decide approval requests."""


@approvals.command(name="list")
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    default=None,
    help="Only requests in this state (e.g. pending).",
)
@click.option("--limit", type=int, default=50, show_default=True)
@server_options
@json_option
def list_requests(
    status: str | None, limit: int, url: str | None, key: str | None, profile: str, as_json: bool
) -> None:
    """Approval requests, newest first."""
    rows = connect(url, key, profile).get("/api/v1/approvals/", status=status, limit=limit)
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            ["id", "status", "tool", "workflow", "created", "decided by"],
            [
                [
                    r["id"],
                    r["status"],
                    f"{r['server']}/{r['tool']}" if r["server"] else r["tool"],
                    r["workflow"],
                    r["created_at"][:19],
                    _decider(r),
                ]
                for r in rows
            ],
        )
    )


@approvals.command()
@click.argument("request_id")
@server_options
@json_option
def show(request_id: str, url: str | None, key: str | None, profile: str, as_json: bool) -> None:
    """One request: the call, why it needs approval, and the votes."""
    detail = connect(url, key, profile).get(f"/api/v1/approvals/{request_id}")
    if as_json:
        echo_json(detail)
        return
    r = detail["request"]
    click.echo(f"request:        {r['id']} ({r['status']})")
    click.echo(
        f"call:           {r['server']}/{r['tool']}"
        if r["server"]
        else f"call:           {r['tool']}"
    )
    click.echo(f"arguments:      {r['args']}")
    if r.get("justification"):
        click.echo(f"justification:  {r['justification']}")
    click.echo(f"rule:           {r['rule']} ({r['reason']})")
    click.echo(f"workflow:       {r['workflow']}: {r['required_approvals']} approval(s)")
    click.echo(f"requested by:   key {r['principal_key_id']} at {r['created_at'][:19]}")
    if r.get("expires_at"):
        click.echo(f"expires:        {r['expires_at'][:19]}")
    for vote in detail["votes"]:
        who = vote.get("approver_name") or vote["approver"]
        via = f", {vote['via']}" if vote.get("via") else ""
        click.echo(
            f"vote:           {vote['choice']} by {who} "
            f"({vote['channel']}{via}) {vote['comment']}".rstrip()
        )
    if r.get("decided_by"):
        via = f" ({r['decided_via']})" if r.get("decided_via") else ""
        click.echo(
            f"decided:        {r['status']} by {_decider(r)}{via} at "
            f"{(r['decided_at'] or '')[:19]} {r.get('comment') or ''}".rstrip()
        )


def _decider(request: dict[str, Any]) -> str:
    """Who decided, by name (``decided_by_name``); the id for requests decided before names
    were recorded."""
    return str(request.get("decided_by_name") or request.get("decided_by") or "")


def _decide(
    verb: str,
    request_id: str,
    comment: str,
    url: str | None,
    key: str | None,
    profile: str,
    as_json: bool,
) -> None:
    result = connect(url, key, profile).post(
        f"/api/v1/approvals/{request_id}/{verb}", {"comment": comment}
    )
    if as_json:
        echo_json(result)
    elif result["status"] == "pending":
        click.echo(f"Vote recorded on {request_id}; it needs more approvals.")
    else:
        click.echo(f"Request {request_id} is now {result['status']}.")


@approvals.command()
@click.argument("request_id")
@click.option("--comment", default="", help="Shown to the agent and kept in the audit trail.")
@server_options
@json_option
def approve(
    request_id: str, comment: str, url: str | None, key: str | None, profile: str, as_json: bool
) -> None:
    """Approve REQUEST_ID (your vote counts toward its quorum)."""
    _decide("approve", request_id, comment, url, key, profile, as_json)


@approvals.command()
@click.argument("request_id")
@click.option("--comment", default="", help="Why: shown to the agent.")
@server_options
@json_option
def deny(
    request_id: str, comment: str, url: str | None, key: str | None, profile: str, as_json: bool
) -> None:
    """Deny REQUEST_ID."""
    _decide("deny", request_id, comment, url, key, profile, as_json)
