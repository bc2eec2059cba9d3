"""``preloop issues duplicates`` and ``preloop issues resolve-duplicate``: duplicate detection
over the REST API (``/api/v1/issues/duplicates``; decisions 0105, 0106).

    preloop issues duplicates --project acme/app --threshold 0.5 --confirm
    preloop issues resolve-duplicate acme/app#12 acme/app#31 --as duplicate --canonical acme/app#12
    preloop issues resolve-duplicate acme/app#12 acme/app#40 --as not-duplicate
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from server.cli.output import echo_json, json_option, table
from server.cli.target import TargetFlags, target_options

if TYPE_CHECKING:
    from hub.wire import DuplicatePairs, DuplicatePairView, DuplicateResolved


def _mark(view: DuplicatePairView) -> str:
    """What the model and people said of a pair, briefly."""
    said = []
    if view.verdict is not None:
        said.append(view.verdict.classification)
    if view.resolution is not None:
        said.append(f"resolved {view.resolution.resolution}")
    return ", ".join(said)


def _key(issue_key: str, closed: bool) -> str:
    return f"{issue_key} (closed)" if closed else issue_key


@click.command(name="duplicates")
@click.option("--project", default=None, help="Only this project (owner/repo, group/app, KEY).")
@click.option("--organization", default=None, help="The project's organization, if needed.")
@click.option("--tracker", default=None, help="The tracker, when several sync the project.")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Cosine at or above which a pair is shown (default: the embedder's own).",
)
@click.option(
    "--confirm",
    is_flag=True,
    help="Ask the duplicate model (PRELOOP_SEARCH_DUPLICATE_MODEL) about each pair shown.",
)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@target_options
@json_option
def duplicates(
    project: str | None,
    organization: str | None,
    tracker: str | None,
    threshold: float | None,
    confirm: bool,
    limit: int,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Pairs of synced issues that may be duplicates, most similar first."""
    params = {
        "project": project,
        "organization": organization,
        "tracker": tracker,
        "threshold": threshold,
        "limit": limit,
        "confirm": "true" if confirm else None,
    }
    found: DuplicatePairs = target.call(lambda c: c.duplicate_pairs(params))
    if as_json:
        echo_json(found)
        return
    click.echo(
        f"{found.count} pair{'s' if found.count != 1 else ''} at cosine >= "
        f"{found.threshold:g} among {found.issues} issues (model {found.model}, engine "
        f"{found.engine}" + (f"; {found.embedded} embedded now" if found.embedded else "") + ")"
    )
    if not found.pairs:
        return
    rows = [
        (
            f"{p.score:.3f}",
            _key(p.a.key, p.a.closed),
            _key(p.b.key, p.b.closed),
            p.a.title[:40],
            _mark(p),
        )
        for p in found.pairs
    ]
    click.echo(table(["score", "issue", "other", "title", "verdict"], rows))
    for p in found.pairs:
        if p.verdict is not None and p.verdict.reason:
            click.echo(f"{p.a.key} / {p.b.key}: {p.verdict.classification}: {p.verdict.reason}")


@click.command(name="resolve-duplicate")
@click.argument("issue")
@click.argument("other")
@click.option(
    "--as",
    "resolution",
    required=True,
    type=click.Choice(["duplicate", "not-duplicate"]),
    help="duplicate, or not-duplicate (the pair is never offered again).",
)
@click.option("--canonical", default=None, help="With duplicate: the issue that stays.")
@target_options
@json_option
def resolve_duplicate(
    issue: str,
    other: str,
    resolution: str,
    canonical: str | None,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Record that ISSUE and OTHER are (or are not) duplicates (admin or approver). Issues by
    key, URL or Preloop's id."""
    body = {
        "issue": issue,
        "other": other,
        "resolution": resolution.replace("-", "_"),
        "canonical": canonical,
    }
    done: DuplicateResolved = target.call(lambda c: c.resolve_duplicate(body))
    if as_json:
        echo_json(done)
        return
    said = done.resolution.resolution.replace("_", " ")
    line = f"{done.a.key} and {done.b.key}: marked {said}"
    if done.resolution.canonical:
        line += f" ({done.resolution.canonical} stays)"
    click.echo(line + ".")


def attach(group: click.Group) -> None:
    """Add these commands to ``preloop issues``."""
    group.add_command(duplicates)
    group.add_command(resolve_duplicate)
