"""``preloop servers``: register upstream MCP servers, list their tools, accept changed tools."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

import click

from server.cli.output import echo_json, json_option, stamp, table
from server.cli.target import TargetFlags, target_options

if TYPE_CHECKING:
    from hub.wire import ToolView


@click.group()
def servers() -> None:
    """Register upstream MCP servers; list their tools; accept changed tools."""


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        pairs[key] = rest
    return pairs


def _echo_tools(rows: list[ToolView]) -> None:
    click.echo(
        table(
            ["tool", "blocked", "hash", "updated", "description"],
            [
                [
                    r.name,
                    "BLOCKED" if r.blocked else "",
                    r.definition_hash[:12],
                    stamp(r.updated_at),
                    r.description.splitlines()[0][:60] if r.description else "",
                ]
                for r in rows
            ],
        )
    )


@servers.command(name="list")
@target_options
@json_option
def list_servers(target: TargetFlags, as_json: bool) -> None:
    """Every upstream MCP server and its connection state."""
    rows = target.call(lambda c: c.servers())
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            ["name", "transport", "source", "state", "restarts", "target", "last error"],
            [
                [
                    r.name,
                    r.transport,
                    r.source,
                    r.health.state if r.health else "not started",
                    r.health.restarts if r.health else None,
                    r.url or " ".join([r.command or "", *r.args]).strip(),
                    r.health.last_error if r.health else None,
                ]
                for r in rows
            ],
        )
    )


@servers.command()
@click.argument("name")
@target_options
@json_option
def tools(name: str, target: TargetFlags, as_json: bool) -> None:
    """The tools last seen on server NAME (BLOCKED: changed, waiting for 'accept')."""
    rows = target.call(lambda c: c.server_tools(name))
    if as_json:
        echo_json(rows)
    else:
        _echo_tools(rows)


@servers.command()
@click.argument("name")
@target_options
@json_option
def refresh(name: str, target: TargetFlags, as_json: bool) -> None:
    """Ask server NAME for its tools now; new tools are pinned, changed ones blocked."""
    rows = target.call(lambda c: c.refresh_server(name))
    if as_json:
        echo_json(rows)
    else:
        _echo_tools(rows)


@servers.command()
@click.argument("name")
@click.argument("tool")
@target_options
@json_option
def accept(name: str, tool: str, target: TargetFlags, as_json: bool) -> None:
    """Accept TOOL's current definition on server NAME; prints the diff accepted."""
    result = target.call(lambda c: c.accept_tool(name, tool))
    if as_json:
        echo_json(result)
    elif result.diff:
        click.echo(result.diff.rstrip("\n"))
        click.echo(f"Accepted the new definition of {name}/{tool}.")
    else:
        click.echo(f"{name}/{tool} had no change to accept.")


@servers.command()
@click.argument("name")
@click.option("--command", "command", default=None, help='For stdio: "CMD ARGS..." (quoted).')
@click.option("--url", "server_url", default=None, help="For an HTTP server: its MCP URL.")
@click.option(
    "--transport",
    type=click.Choice(["streamable-http", "sse"]),
    default="streamable-http",
    show_default=True,
    help="With --url: the HTTP transport.",
)
@click.option("--header", "headers", multiple=True, help="K=V; repeatable (HTTP servers).")
@click.option("--env", "env", multiple=True, help="K=V; repeatable (stdio servers).")
@click.option("--description", default="")
@target_options(url_flag="--preloop-url")  # --url is the MCP server's here
@json_option
def add(
    name: str,
    command: str | None,
    server_url: str | None,
    transport: str,
    headers: tuple[str, ...],
    env: tuple[str, ...],
    description: str,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Register (or replace) server NAME: --command "CMD ARGS" or --url URL.

    Values may say ${NAME}: resolved only through PRELOOP_MCP_ENV_ALLOW.
    """
    if (command is None) == (server_url is None):
        raise click.UsageError("give exactly one of --command or --url")
    body: dict[str, Any] = {"name": name, "description": description}
    if command is not None:
        words = shlex.split(command)
        if not words:
            raise click.BadParameter("empty command", param_hint="--command")
        body.update(transport="stdio", command=words[0], args=words[1:])
        body["env"] = _pairs(env, "--env")
        if headers:
            raise click.UsageError("--header applies to --url servers only")
    else:
        body.update(transport=transport, url=server_url, headers=_pairs(headers, "--header"))
        if env:
            raise click.UsageError("--env applies to --command servers only")
    result = target.call(lambda c: c.add_server(body))
    if as_json:
        echo_json(result)
    else:
        click.echo(f"Registered MCP server {result.name} ({result.transport}).")


@servers.command()
@click.argument("name")
@target_options
@json_option
def remove(name: str, target: TargetFlags, as_json: bool) -> None:
    """Forget server NAME and disconnect from it."""
    target.call(lambda c: c.remove_server(name))
    if as_json:
        echo_json({"removed": name})
    else:
        click.echo(f"Removed MCP server {name}.")
