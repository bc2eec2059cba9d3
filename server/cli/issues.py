"""``preloop issues``: the synced issues of the connected trackers, through the REST API.

    preloop issues search "login fails after reset" --type hybrid --project acme/app

``search`` is ``GET /api/v1/issues/search``: fulltext (words), similarity (meaning, by
embeddings) or hybrid (both, fused by rank); it prints what answered (search type, engine,
embedding model) and each result's score. Duplicates and compliance attach their commands to
this group at the end of the module (each lives in a module of its own that does not import
this one, so there is no import cycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from server.cli import issue_duplicates
from server.cli.issue_compliance import compliance
from server.cli.output import echo_json, json_option, stamp, table
from server.cli.target import TargetFlags, target_options

if TYPE_CHECKING:
    from hub.wire import IssueSearchResults

SEARCH_TYPES = ["fulltext", "similarity", "hybrid"]


@click.group()
def issues() -> None:
    """Search synced issues; find duplicates; score compliance.

    \b
    preloop issues search "password reset link expired"
    preloop issues search crash --type similarity --project acme/app --state open
    preloop issues duplicates --project acme/app
    preloop issues resolve-duplicate acme/app#12 acme/app#31 --as duplicate --canonical acme/app#12
    preloop issues compliance acme/app#12 --metric INVEST
    """


@issues.command(name="search")
@click.argument("query")
@click.option(
    "--type",
    "search_type",
    type=click.Choice(SEARCH_TYPES),
    default="fulltext",
    show_default=True,
    help="fulltext: the query's words; similarity: its meaning (embeddings); hybrid: both.",
)
@click.option(
    "--project",
    default=None,
    help="One project: GitHub OWNER/REPO, GitLab GROUP/PROJECT, Jira KEY.",
)
@click.option("--tracker", default=None, help="The tracker, when several sync the project.")
@click.option("--state", default=None, help="Only issues in this state (open, closed, ...).")
@click.option(
    "--label", "labels", multiple=True, help="Only issues with this label (repeatable: all)."
)
@click.option(
    "--limit",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="How many results at most.",
)
@target_options
@json_option
def search(
    query: str,
    search_type: str,
    project: str | None,
    tracker: str | None,
    state: str | None,
    labels: tuple[str, ...],
    limit: int,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Search the synced issues and pull/merge requests for QUERY."""
    params = {
        "query": query,
        "search_type": search_type,
        "project": project,
        "tracker": tracker,
        "status": state,
        "labels": list(labels) or None,
        "limit": limit,
    }
    found = target.call(lambda c: c.search_issues(params))
    if as_json:
        echo_json(found)
        return
    click.echo(describe(found))
    if found.results:
        rows = [
            (
                f"{r.score:.4g}" if r.score is not None else "",
                r.key,
                r.status,
                r.title[:60],
                stamp(r.updated_at),
            )
            for r in found.results
        ]
        click.echo(table(["score", "key", "state", "title", "updated"], rows))


def describe(found: IssueSearchResults) -> str:
    """The line above the results: what answered, how many, and what is not embedded yet."""
    served = f"{found.search_type} search, engine {found.engine}"
    if found.model:
        served += f", model {found.model}"
    line = f"{found.count} result{'s' if found.count != 1 else ''} ({served})"
    if found.pending:
        line += (
            f"; {found.pending} issue{'s' if found.pending != 1 else ''} not embedded yet "
            "(the indexer is at work)"
        )
    return line


issues.add_command(compliance)
issue_duplicates.attach(issues)  # duplicates, resolve-duplicate
