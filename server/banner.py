"""What ``preloop serve`` prints once it is ready: where it is and how to use it."""

from __future__ import annotations

import click

from hub import __version__
from server.bootstrap import FIRST_KEY_FILE
from server.hub_services import Hub


async def print_banner(hub: Hub) -> None:
    settings = hub.settings
    url = settings.public_url
    account = await hub.identity.default_account()
    active = await hub.policies.active(account.id)
    policy = f"version {active[0].version} ({active[0].name})" if active else "none"
    database = (
        "PostgreSQL"
        if settings.database_url.startswith("postgres")
        else (f"SQLite at {settings.data_path / 'preloop.db'}")
    )
    lines = [
        "",
        f"Preloop {__version__} is running on {url}",
        f"  database:  {database}",
        f"  policy:    {policy}",
        f"  notices:   {_notices(hub)}",
        f"  API docs:  {url}/docs",
        "",
    ]
    lines += list(hub.notes)
    key_hint = (
        f"$(cat {settings.data_path / FIRST_KEY_FILE})"
        if (settings.data_path / FIRST_KEY_FILE).exists()
        else "<your admin key>"
    )
    lines += [
        "Use the CLI against this server:",
        f"    preloop login {url} --key {key_hint}",
        "    preloop policy export",
        "    preloop policy eval policies/production-safeguards.yaml --tool bash "
        '--args \'{"command": "ls"}\' --justification "look around"',
        "",
        "Open the on-call dashboard (approvals, audit, policies; after the login above):",
        "    preloop tui",
        "",
        "Connect an agent (create an agent key first: preloop keys create --name laptop "
        "--role agent):",
        f"    claude mcp add --transport http preloop {url}/mcp "
        '--header "Authorization: Bearer <agent key>"',
        "    (Cursor, Codex and others: see docs/mcp.md)",
        "",
        "Route an agent's model calls through the gateway (docs/gateway.md):",
        "    preloop secrets set openai-key              # the provider key, from stdin",
        "    preloop providers add openai --kind openai --base-url https://api.openai.com/v1 "
        "--secret local:openai-key",
        '    eval "$(preloop flows run my-flow --env)"   '
        "# OPENAI_BASE_URL, ANTHROPIC_BASE_URL, keys",
        "",
    ]
    click.echo("\n".join(lines))


def _notices(hub: Hub) -> str:
    if hub.settings.notifications.deliver == "worker":
        return "left to the 'preloop bots' worker (PRELOOP_NOTIFICATIONS_DELIVER=worker)"
    return "delivered here on " + (", ".join(hub.notifications.channels) or "no channel")
