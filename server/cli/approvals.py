"""``preloop approvals``: list, show, approve and deny approval requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from server.cli.output import echo_json, json_option, stamp, table
from server.cli.target import TargetFlags, target_options

if TYPE_CHECKING:
    from hub.wire import ApprovalRequestView

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
@target_options
@json_option
def list_requests(status: str | None, limit: int, target: TargetFlags, as_json: bool) -> None:
    """Approval requests, newest first."""
    rows = target.call(lambda c: c.approvals(status, limit))
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            ["id", "status", "tool", "workflow", "created", "decided by"],
            [
                [
                    r.id,
                    r.status,
                    f"{r.server}/{r.tool}" if r.server else r.tool,
                    r.workflow,
                    stamp(r.created_at),
                    _decider(r),
                ]
                for r in rows
            ],
        )
    )


@approvals.command()
@click.argument("request_id")
@target_options
@json_option
def show(request_id: str, target: TargetFlags, as_json: bool) -> None:
    """One request: the call, why it needs approval, and the votes."""
    detail = target.call(lambda c: c.approval(request_id))
    if as_json:
        echo_json(detail)
        return
    r = detail.request
    click.echo(f"request:        {r.id} ({r.status})")
    click.echo(f"call:           {r.server}/{r.tool}" if r.server else f"call:           {r.tool}")
    click.echo(f"arguments:      {r.args}")
    if r.justification:
        click.echo(f"justification:  {r.justification}")
    click.echo(f"rule:           {r.rule} ({r.reason})")
    click.echo(f"workflow:       {r.workflow}: {r.required_approvals} approval(s)")
    click.echo(f"requested by:   key {r.principal_key_id} at {stamp(r.created_at)}")
    if r.expires_at:
        click.echo(f"expires:        {stamp(r.expires_at)}")
    for vote in detail.votes:
        who = vote.approver_name or vote.approver
        via = f", {vote.via}" if vote.via else ""
        click.echo(
            f"vote:           {vote.choice} by {who} ({vote.channel}{via}) {vote.comment}".rstrip()
        )
    if r.decided_by:
        via = f" ({r.decided_via})" if r.decided_via else ""
        click.echo(
            f"decided:        {r.status} by {_decider(r)}{via} at "
            f"{stamp(r.decided_at)} {r.comment or ''}".rstrip()
        )


def _decider(request: ApprovalRequestView) -> str:
    """Who decided, by name (``decided_by_name``); the id for requests decided before names
    were recorded."""
    return request.decided_by_name or request.decided_by or ""


def _decide(verb: str, request_id: str, comment: str, target: TargetFlags, as_json: bool) -> None:
    if verb == "approve":
        result = target.call(lambda c: c.approve(request_id, comment))
    else:
        result = target.call(lambda c: c.deny(request_id, comment))
    if as_json:
        echo_json(result)
    elif result.status == "pending":
        click.echo(f"Vote recorded on {request_id}; it needs more approvals.")
    else:
        click.echo(f"Request {request_id} is now {result.status}.")


@approvals.command()
@click.argument("request_id")
@click.option("--comment", default="", help="Shown to the agent and kept in the audit trail.")
@target_options
@json_option
def approve(request_id: str, comment: str, target: TargetFlags, as_json: bool) -> None:
    """Approve REQUEST_ID (your vote counts toward its quorum)."""
    _decide("approve", request_id, comment, target, as_json)


@approvals.command()
@click.argument("request_id")
@click.option("--comment", default="", help="Why: shown to the agent.")
@target_options
@json_option
def deny(request_id: str, comment: str, target: TargetFlags, as_json: bool) -> None:
    """Deny REQUEST_ID."""
    _decide("deny", request_id, comment, target, as_json)
