"""``preloop trackers`` and ``preloop sync``: connecting issue trackers and syncing them.

A tracker's token is never on the command line: ``--token`` names where custody keeps it
(``local:NAME`` after ``preloop secrets set NAME``, ``env:VAR``, ``vault:PATH#FIELD``).
``preloop-sync`` is ``preloop sync`` under the name the product description uses
(``preloop-sync scan all``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from server.cli.output import echo_json, json_option, stamp, table
from server.cli.target import TargetFlags, target_options

if TYPE_CHECKING:
    from hub.api_client import ApiClient
    from hub.wire import ConnectionTest, SyncEvent, SyncReportView, TrackerView

KINDS = ["github", "gitlab", "jira"]


@click.group()
def trackers() -> None:
    """Connect GitHub, GitLab and Jira; list, test and remove them.

    \b
    preloop secrets set github-token            (the token, from stdin or a prompt)
    preloop trackers add gh --kind github --base-url https://api.github.com \\
        --token local:github-token --project spacecode/astrobot
    preloop trackers test gh
    preloop sync scan gh
    """


def _echo_tracker(t: TrackerView) -> None:
    poll = f"{t.poll_seconds} s" if t.poll_seconds else "never (webhooks and scans)"
    click.echo(
        f"{t.name} ({t.kind})\n"
        f"  base URL:     {t.base_url}\n"
        f"  token:        {t.token_ref}\n"
        f"  projects:     {', '.join(t.projects) or '-'}\n"
        f"  webhook URL:  {t.webhook_url}\n"
        f"  webhook key:  {t.webhook_secret_ref or '- (none: deliveries are refused)'}\n"
        f"  polled every: {poll}" + (f"\n  username:     {t.username}" if t.username else "")
    )


@trackers.command(name="add")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(KINDS), help="The tracker's kind.")
@click.option(
    "--base-url",
    required=True,
    help="Its API: https://api.github.com (GitHub Enterprise: https://HOST/api/v3), "
    "https://gitlab.com or your GitLab, https://SITE.atlassian.net.",
)
@click.option(
    "--token",
    "token_ref",
    required=True,
    metavar="REF",
    help="Where its API token is: local:NAME ('preloop secrets set NAME'), env:VAR or "
    "vault:PATH#FIELD. Never the token itself.",
)
@click.option(
    "--project",
    "projects",
    multiple=True,
    metavar="PROJECT",
    help="A project to sync (repeatable): GitHub OWNER/REPO, GitLab GROUP/PROJECT, Jira KEY.",
)
@click.option(
    "--webhook-secret",
    "webhook_secret_ref",
    default=None,
    metavar="REF",
    help="Where the secret its webhooks are signed with is (e.g. a GitLab signing token "
    "'whsec_...'). Without it one is made, kept in custody and printed once.",
)
@click.option("--username", default=None, help="Jira Cloud: the e-mail the API token is for.")
@click.option(
    "--poll-seconds",
    type=int,
    default=300,
    show_default=True,
    help="How often the server polls it (0: never; webhooks and scans only; else 60-604800).",
)
@target_options
@json_option
def add(
    name: str,
    kind: str,
    base_url: str,
    token_ref: str,
    projects: tuple[str, ...],
    webhook_secret_ref: str | None,
    username: str | None,
    poll_seconds: int,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Connect tracker NAME (admin)."""
    body: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "base_url": base_url,
        "token_ref": token_ref,
        "projects": list(projects),
        "webhook_secret_ref": webhook_secret_ref,
        "username": username,
        "poll_seconds": poll_seconds,
    }
    created = target.call(lambda c: c.add_tracker({k: v for k, v in body.items() if v is not None}))
    if as_json:
        echo_json(created)
        return
    click.echo(f"Added tracker {created.tracker.name}.")
    _echo_tracker(created.tracker)
    if created.webhook_secret:
        click.echo(
            "\nIts webhook secret (shown once; paste it into the tracker's webhook settings "
            f"with the webhook URL above):\n\n    {created.webhook_secret}\n"
        )


@trackers.command(name="list")
@target_options
@json_option
def list_trackers(target: TargetFlags, as_json: bool) -> None:
    """Every tracker (the references of its token and webhook secret, never a value)."""
    rows = target.call(lambda c: c.trackers())
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            ["name", "kind", "base url", "token", "projects", "poll"],
            [
                [
                    r.name,
                    r.kind,
                    r.base_url,
                    r.token_ref,
                    ", ".join(r.projects),
                    f"{r.poll_seconds}s" if r.poll_seconds else "off",
                ]
                for r in rows
            ],
        )
    )


@trackers.command(name="show")
@click.argument("name")
@target_options
@json_option
def show(name: str, target: TargetFlags, as_json: bool) -> None:
    """Tracker NAME, with its webhook URL."""
    found = target.call(lambda c: c.tracker(name))
    if as_json:
        echo_json(found)
        return
    _echo_tracker(found)


@trackers.command(name="test")
@click.argument("name")
@target_options
@json_option
def test(name: str, target: TargetFlags, as_json: bool) -> None:
    """Ask the tracker for each project with its token; exit 1 if any fails."""
    results: list[ConnectionTest] = target.call(lambda c: c.test_tracker(name))
    if as_json:
        echo_json(results)
    else:
        for r in results:
            mark = "ok  " if r.success else "FAIL"
            click.echo(f"{mark} {r.message}")
        if not results:
            click.echo(f"{name} has no projects to test (add them with --project).")
    if any(not r.success for r in results):
        sys.exit(1)


@trackers.command(name="remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@target_options
def remove(name: str, yes: bool, target: TargetFlags) -> None:
    """Disconnect tracker NAME (admin): its synced issues and cursors are deleted."""
    if not yes:
        click.confirm(f"Remove tracker {name} and everything synced from it?", abort=True)
    target.call(lambda c: c.remove_tracker(name))
    click.echo(f"Removed tracker {name}.")


# --- sync ---------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def sync() -> None:
    """Sync connected trackers into Preloop now, and see where each sync stands.

    \b
    preloop sync scan all          every tracker: what changed since the last sync
    preloop sync scan gh --full    everything (deleted issues are noticed)
    preloop sync status
    """


class _Progress:
    """One status line on a terminal, rewritten as pages arrive; nothing when piped."""

    def __init__(self) -> None:
        self.width = 0  # of the line shown, 0: none
        self.tty = sys.stderr.isatty()

    def __call__(self, event: SyncEvent) -> None:
        if self.tty:
            line = f"  {event.tracker} {event.project}: {event.issues} issues…"
            click.echo("\r" + line.ljust(self.width), err=True, nl=False)
            self.width = len(line)

    def done(self) -> None:
        if self.width:
            click.echo("\r" + " " * self.width + "\r", err=True, nl=False)
            self.width = 0


def _report_line(r: SyncReportView) -> str:
    what = "full scan" if r.full else "sync"
    text = (
        f"{r.tracker}: {what} of {r.projects} project(s): {r.issues} issues, "
        f"{r.comments} comments written"
    )
    if r.deleted:
        text += f", {r.deleted} marked deleted"
    if r.not_modified:
        text += f", {r.not_modified} unchanged"
    return text + f" ({r.seconds:.1f} s)"


@sync.command(name="scan")
@click.argument("which", metavar="all|TRACKER")
@click.option("--full", is_flag=True, help="Fetch everything, not only what changed.")
@target_options
@json_option
def scan(which: str, full: bool, target: TargetFlags, as_json: bool) -> None:
    """Sync one tracker, or 'all' of them (admin); exit 1 if a project failed."""
    progress = _Progress()

    async def run(client: ApiClient) -> list[SyncReportView]:
        names = [t.name for t in await client.trackers()] if which == "all" else [which]
        reports = []
        for name in names:
            try:
                report = await client.sync_tracker(name, full=full, progress=progress)
            finally:
                progress.done()
            if not as_json:
                click.echo(_report_line(report))
                for error in report.errors:
                    click.echo(f"  error: {error}", err=True)
            reports.append(report)
        return reports

    reports = target.call(run)
    if as_json:
        echo_json(reports)
    elif not reports:
        click.echo("No trackers to sync (connect one with 'preloop trackers add').")
    if any(r.errors for r in reports):
        sys.exit(1)


@sync.command(name="status")
@target_options
@json_option
def status(target: TargetFlags, as_json: bool) -> None:
    """Each tracker's projects: last sync, last full scan, issues synced, last error."""
    rows = target.call(lambda c: c.sync_status())
    if as_json:
        echo_json(rows)
        return
    lines = []
    for t in rows:
        projects = t.projects or []
        if not projects:
            lines.append([t.tracker, "-", "never", "never", t.issues, "", ""])
        for p in projects:
            state = "resuming" if p.resuming else ""
            lines.append(
                [
                    t.tracker,
                    p.project,
                    stamp(p.last_sync_at) or "never",
                    stamp(p.last_full_scan_at) or "never",
                    t.issues,
                    state,
                    p.last_error or "",
                ]
            )
    click.echo(
        table(["tracker", "project", "last sync", "last full scan", "issues", "", "error"], lines)
    )


def sync_main(argv: list[str] | None = None) -> None:
    """``preloop-sync``: ``preloop sync`` as a command of its own."""
    from server.cli.output import run

    run(sync, argv if argv is not None else sys.argv[1:], prog_name="preloop-sync")
