"""The ``preloop`` entry point: a click group whose subcommands load lazily."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from hub import __version__

# name -> (module, attribute, one-line help): help is listed without importing the module.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("server.cli.serve", "serve", "Run the Preloop server."),
    "bots": (
        "server.cli.bots",
        "bots",
        "Run the worker that delivers notices and runs Slack Socket Mode.",
    ),
    "db": ("server.cli.serve", "db", "Database maintenance (migrations)."),
    "config": ("server.cli.serve", "config", "Show the effective settings."),
    "login": ("server.cli.login", "login", "Save a server URL and API key for later commands."),
    "policy": ("server.cli.policy", "policy", "Validate, test, apply and version policies."),
    "keys": ("server.cli.identity", "keys", "Create, list and revoke API keys."),
    "users": ("server.cli.identity", "users", "Add users, link them, set passwords."),
    "teams": ("server.cli.identity", "teams", "Add and list teams."),
    "devices": (
        "server.cli.devices",
        "devices",
        "Pair phones by QR code; list and revoke paired devices.",
    ),
    "approvals": ("server.cli.approvals", "approvals", "List, show and decide approval requests."),
    "tui": ("server.cli.tui", "tui", "The on-call dashboard: approve and deny held calls live."),
    "servers": (
        "server.cli.servers",
        "servers",
        "Register upstream MCP servers; list their tools; accept changed tools.",
    ),
    "audit": ("server.cli.audit", "audit", "Search, export and verify the audit trail."),
    "mcp": ("server.cli.mcp", "mcp", "Bridge an agent's stdio MCP connection to a Preloop server."),
    "bench": ("server.cli.bench", "bench", "Measure Preloop's performance."),
    # gateway: custody
    "providers": (
        "server.cli.providers",
        "providers",
        "Add, list and remove model providers for the gateway.",
    ),
    "secrets": (
        "server.cli.providers",
        "secrets",
        "Store, list, delete and rotate provider keys (local_encrypted).",
    ),
    "flows": (
        "server.cli.flows",
        "flows",
        "Start flow executions: a runtime token and SDK environment.",
    ),
    "usage": ("server.cli.gateway_usage", "usage", "Model gateway usage and cost, grouped."),
    "budgets": ("server.cli.gateway_usage", "budgets", "List, add and remove gateway budgets."),
    "prices": ("server.cli.gateway_usage", "prices", "List, set and unset model prices."),
    # issue trackers
    "trackers": (
        "server.cli.trackers",
        "trackers",
        "Connect GitHub, GitLab and Jira; list, test and remove them.",
    ),
    "sync": ("server.cli.trackers", "sync", "Sync trackers now (scan all|TRACKER); their status."),
    "issues": (
        "server.cli.issues",
        "issues",
        "Search synced issues; find duplicates; score compliance.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = getattr(module, entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, entry[2]) for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="preloop")
def cli() -> None:
    """Preloop: the policy engine and approval hub for AI agents.

    \b
    Offline:  preloop policy validate|eval|test FILE
    Server:   preloop serve            (SQLite by default; PRELOOP_DATABASE_URL for PostgreSQL)
    Worker:   preloop bots             (notices, Slack Socket Mode; beside the servers)
    Clients:  preloop login URL --key KEY, then policy apply|export|history, keys, audit ...

    Settings come from PRELOOP_* environment variables and ./.env; see 'preloop config show'.
    """


def main(argv: list[str] | None = None) -> Any:
    from server.cli.output import run

    return run(cli, argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
