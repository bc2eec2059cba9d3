"""``preloop mcp stdio``: bridge an agent's stdio MCP connection to a Preloop server."""

from __future__ import annotations

import sys

import click

from server.cli.client import resolve_target


@click.group()
def mcp() -> None:
    """Bridge an agent's stdio MCP connection to a Preloop server."""


@mcp.command("stdio")
@click.option("--url", default=None, help="Server URL (else PRELOOP_URL or the saved profile).")
@click.option("--key", default=None, help="API key (else PRELOOP_API_KEY or profile).")
@click.option(
    "--profile",
    default="default",
    show_default=True,
    envvar="PRELOOP_PROFILE",
    help="Saved login profile to use.",
)
def stdio(url: str | None, key: str | None, profile: str) -> None:
    """Serve MCP on stdin/stdout, forwarding every request to the server's /mcp.

    Policy is evaluated by the server, never here. Configure an agent with
    command 'preloop' and args 'mcp stdio --url URL --key KEY'.
    """
    import anyio

    from server.mcp.bridge import BridgeConnectError, mcp_endpoint, serve_stdio

    final_url, final_key = resolve_target(url, key, profile)
    try:
        anyio.run(serve_stdio, final_url, final_key)
    except BridgeConnectError as exc:
        endpoint = mcp_endpoint(final_url)
        click.echo(f"preloop mcp stdio: cannot connect to {endpoint}: {exc}", err=True)
        sys.exit(1)
