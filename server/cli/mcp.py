"""``preloop mcp stdio``: bridge an agent's stdio MCP connection to a Preloop server."""

from __future__ import annotations

import sys

import click

from server.cli.target import TargetFlags, target_options


@click.group()
def mcp() -> None:
    """Bridge an agent's stdio MCP connection to a Preloop server."""


@mcp.command("stdio")
@target_options
def stdio(target: TargetFlags) -> None:
    """Serve MCP on stdin/stdout, forwarding every request to the server's /mcp.

    Policy is evaluated by the server, never here. Configure an agent with
    command 'preloop' and args 'mcp stdio --url URL --key KEY'.
    """
    import anyio

    from server.mcp.bridge import BridgeConnectError, mcp_endpoint, serve_stdio

    resolved = target.resolve()
    try:
        anyio.run(serve_stdio, resolved.url, resolved.api_key)
    except BridgeConnectError as exc:
        endpoint = mcp_endpoint(resolved.url)
        click.echo(f"preloop mcp stdio: cannot connect to {endpoint}: {exc}", err=True)
        sys.exit(1)
