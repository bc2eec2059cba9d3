"""``preloop sessions``: recent runtime sessions and a search over captured gateway
interactions, from the command line (through the REST API).

    preloop sessions list [--flow F] [--principal P] [--status active|ended|all] [--limit N]
    preloop sessions show ID                    # the session and its timeline
    preloop sessions search QUERY [--type fulltext|similarity] [--model M] [--since 2h] ...
    preloop sessions capture list|set|unset     # what the gateway captures (admin)

Sessions list whether or not capture is on (they come from the usage ledger); the content of
an interaction (its request, response and search snippets) is shown only when the server
gives it to the key: admins and approvers, for what was captured with content. Anything the
server refuses (a viewer searching content: HTTP 403) is printed as the server's message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from server.cli.capture import capture
from server.cli.output import echo_json, json_option, stamp, table
from server.cli.target import TargetFlags, target_options

if TYPE_CHECKING:
    from hub.wire import InteractionView, RuntimeSessionView

LIST_COLUMNS = ("id", "flow", "principal", "models", "calls", "tokens in/out", "cost",
                "last activity", "status")  # fmt: skip
TIMELINE_COLUMNS = ("time", "endpoint", "model", "status", "outcome", "tokens in/out", "cost",
                    "latency", "captured")  # fmt: skip


@click.group()
def sessions() -> None:
    """Recent runtime sessions; search captured gateway interactions."""


def _since(value: str | None, name: str) -> str | None:
    """``--since``/``--until``: an ISO time or an age (``30m``, ``2h``, ``7d``)."""
    if value is None:
        return None
    from hub.errors import ValidationError
    from hub.moments import moment

    try:
        return moment(value, datetime.now(UTC), field=name).isoformat()
    except ValidationError as exc:
        raise click.BadParameter(exc.message, param_hint=f"'--{name}'") from exc


def _dollars(amount: str) -> str:
    return f"${amount}"


def _tokens(session: RuntimeSessionView | InteractionView) -> str:
    return f"{session.input_tokens:,}/{session.output_tokens:,}"


@sessions.command(name="list")
@click.option("--flow", default=None, help="Only this flow's sessions.")
@click.option("--principal", default=None, help="Only this principal's sessions.")
@click.option(
    "--status",
    type=click.Choice(["active", "ended", "all"]),
    default="all",
    show_default=True,
    help="Active sessions, ended ones, or both.",
)
@click.option("--since", default=None, help="Active since: an ISO time or an age (2h, 7d).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@target_options
@json_option
def list_sessions(
    flow: str | None,
    principal: str | None,
    status: str,
    since: str | None,
    limit: int,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Recent runtime sessions, most recently active first: flow executions and callers that
    send an X-Preloop-Session-Id header."""
    after = _since(since, "since")
    result = target.call(
        lambda c: c.runtime_sessions(
            flow=flow, principal=principal, status=status, since=after, limit=limit
        )
    )
    if as_json:
        echo_json(result)
        return
    if not result.sessions:
        click.echo("No sessions." if status == "all" else f"No {status} sessions.")
        return
    click.echo(
        table(
            LIST_COLUMNS,
            [
                [
                    s.id,
                    s.flow,
                    s.principal,
                    ", ".join(s.models) or "-",
                    s.calls,
                    _tokens(s),
                    _dollars(s.cost),
                    stamp(s.last_at),
                    s.status,
                ]
                for s in result.sessions
            ],
        )
    )


@sessions.command()
@click.argument("session_id", metavar="ID")
@click.option(
    "--limit",
    type=click.IntRange(1, 500),
    default=100,
    show_default=True,
    help="Show the latest N calls.",
)
@target_options
@json_option
def show(session_id: str, limit: int, target: TargetFlags, as_json: bool) -> None:
    """One session and its timeline of gateway calls, oldest first; each call's request and
    response when they were captured and this key may read them."""
    result = target.call(lambda c: c.runtime_session(session_id, limit=limit))
    if as_json:
        echo_json(result)
        return
    s = result.session
    click.echo(f"Session {s.id} ({s.status})")
    facts = [("flow", s.flow), ("principal", s.principal), ("execution", s.execution_id),
             ("models", ", ".join(s.models) or None), ("started", stamp(s.started_at)),
             ("last activity", stamp(s.last_at))]  # fmt: skip
    for name, value in facts:
        if value:
            click.echo(f"  {name}: {value}")
    click.echo(f"  calls: {s.calls} · tokens in/out: {_tokens(s)} · cost: {_dollars(s.cost)}")
    calls = sorted(result.interactions, key=lambda i: (i.created_at, i.id))
    if not calls:
        click.echo("\nNo gateway calls recorded.")
        return
    click.echo()
    if len(calls) < s.calls:
        click.echo(f"The latest {len(calls)} of {s.calls} calls (--limit shows more):")
    click.echo(
        table(
            TIMELINE_COLUMNS,
            [
                [
                    stamp(i.created_at),
                    i.endpoint,
                    i.model,
                    i.status,
                    i.outcome,
                    _tokens(i),
                    _dollars(i.cost),
                    f"{i.latency_ms:.0f} ms",
                    i.captured or "-",
                ]
                for i in calls
            ],
        )
    )
    for call in calls:
        _echo_content(call)
    from hub.wire.sessions import content_note

    note = content_note(calls)
    if note:
        click.echo(f"\n{note}")


def _echo_content(call: InteractionView) -> None:
    from hub.wire.sessions import readable

    if call.request is None and call.response is None:
        return
    cut = " (truncated)" if call.truncated else ""
    click.echo(f"\n── {stamp(call.created_at)} {call.id} {call.model}{cut}")
    for label, text in (("request", call.request), ("response", call.response)):
        if text is not None:
            click.echo(f"{label}:")
            click.echo(_indent(readable(text)))


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines()) or prefix


@sessions.command()
@click.argument("query")
@click.option(
    "--type",
    "search_type",
    type=click.Choice(["fulltext", "similarity"]),
    default="fulltext",
    show_default=True,
    help="Match words (full text) or meaning (embeddings).",
)
@click.option("--model", default=None, help="Only calls to this model.")
@click.option("--flow", default=None, help="Only this flow's calls.")
@click.option("--principal", default=None, help="Only this principal's calls.")
@click.option("--session", "session_id", default=None, help="Only this session's calls.")
@click.option("--since", default=None, help="From this time: ISO, or an age (30m, 2h, 7d).")
@click.option("--until", default=None, help="Before this time: ISO, or an age.")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@target_options
@json_option
def search(
    query: str,
    search_type: str,
    model: str | None,
    flow: str | None,
    principal: str | None,
    session_id: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Search the captured request and response text of gateway calls; best matches first,
    each with a snippet. Needs an admin or approver key; every search is audited."""
    after, before = _since(since, "since"), _since(until, "until")
    result = target.call(
        lambda c: c.search_interactions(
            query,
            search_type=search_type,
            model=model,
            flow=flow,
            principal=principal,
            session=session_id,
            since=after,
            until=before,
            limit=limit,
        )
    )
    if as_json:
        echo_json(result)
        return
    served = " · ".join(part for part in (result.engine, result.model) if part)
    count = len(result.interactions)
    click.echo(f"{count} interaction{'s' if count != 1 else ''} ({search_type}; {served})")
    for hit in result.interactions:
        click.echo(_hit_line(hit))
        if hit.snippet:
            click.echo("    " + highlighted(hit.snippet))


def _hit_line(hit: InteractionView) -> str:
    from hub.wire.sessions import score_text

    where = hit.session or "-"
    return (
        f"{stamp(hit.created_at)}  {score_text(hit.score)}  session {where}  {hit.model}  "
        f"{hit.endpoint}  {hit.id}"
    )


def highlighted(snippet: str) -> str:
    """The snippet with its matches in bold (plain text where the output is no terminal:
    click drops the styling there)."""
    from hub.wire.sessions import snippet_parts

    one_line = " ".join(snippet.split())
    return "".join(
        click.style(text, bold=True, underline=True) if match else text
        for text, match in snippet_parts(one_line)
    )


sessions.add_command(capture)
