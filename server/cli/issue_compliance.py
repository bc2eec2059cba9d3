"""``preloop issues compliance ISSUE...``: how well synced issues meet a compliance metric
(DoR, INVEST or Risk), through ``GET /api/v1/issues/compliance`` (server/api/issue_compliance.py).
Added to the ``preloop issues`` group by server/cli/issues.py.

    preloop issues compliance acme/app#12 PROJ-7 --metric INVEST
    preloop issues compliance acme/app#12 --improve        (prints a proposed description)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from server.cli.output import echo_json, json_option
from server.cli.target import TargetFlags, target_options

if TYPE_CHECKING:
    from hub.api_client import ApiClient
    from hub.wire import ComplianceReport

METRICS = ["DoR", "INVEST", "Risk"]


@click.command(name="compliance")
@click.argument("references", nargs=-1, required=True, metavar="ISSUE...")
@click.option(
    "--metric",
    type=click.Choice(METRICS),
    default="DoR",
    show_default=True,
    help="DoR (Definition of Ready), INVEST, or Risk (1.0 is low risk).",
)
@click.option("--improve", is_flag=True, help="Also propose a description that meets the metric.")
@target_options
@json_option
def compliance(
    references: tuple[str, ...], metric: str, improve: bool, target: TargetFlags, as_json: bool
) -> None:
    """Score each ISSUE (a key such as owner/repo#12 or PROJ-7, a URL, or an id)."""

    async def score(client: ApiClient) -> list[ComplianceReport]:
        return [
            await client.issue_compliance(r, metric=metric, improve=improve) for r in references
        ]

    reports = target.call(score)
    if as_json:
        echo_json(reports)
        return
    for i, report in enumerate(reports):
        if i:
            click.echo()
        _echo(report)


def _echo(r: ComplianceReport) -> None:
    source = f"{r.engine}, cached" if r.cached else r.engine
    click.echo(f"{r.issue}  {r.metric} {r.compliance_factor:.2f}  ({source})  {r.title}")
    click.echo(f"  reason:      {r.reason}")
    click.echo(f"  suggestion:  {r.suggestion}")
    if r.fallback_reason:
        click.echo(f"  fallback:    the model's answer was not used ({r.fallback_reason})")
    failed = [a for a in r.annotated_description if a.status == "fail"]
    for note in failed:
        click.echo(f"  - {note.label}: {note.comment}")
    if r.improved_description is not None:
        click.echo("  proposed description:")
        for line in r.improved_description.splitlines() or [""]:
            click.echo(f"    {line}".rstrip())
