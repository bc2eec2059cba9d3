"""``preloop serve``, ``preloop db upgrade`` and ``preloop config show``."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from server.cli.output import echo_json, json_option, table


@click.command()
@click.option("--host", default=None, help="Listen address (default PRELOOP_SERVER_HOST).")
@click.option("--port", type=int, default=None, help="Port (default PRELOOP_SERVER_PORT).")
@click.option(
    "--policy",
    "policy_file",
    default=None,
    help="Apply this policy file at start (default PRELOOP_POLICY_FILE).",
)
def serve(host: str | None, port: int | None, policy_file: str | None) -> None:
    """Run the server: migrate the database, apply the policy, serve the API."""
    import logging

    import uvicorn

    from hub.settings import load_settings
    from server.banner import print_banner
    from server.bootstrap import check_delivery, check_slack_settings
    from server.front import Front

    settings = load_settings(server__host=host, server__port=port, policy__file=policy_file)
    check_slack_settings(settings)  # a bad configuration fails before anything opens
    check_delivery(settings)
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    if settings.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    app = Front(settings, on_ready=print_banner)  # the rest loads once it answers
    uvicorn.run(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command()
def upgrade() -> None:
    """Apply every pending migration to the configured database."""
    from hub.private_files import make_private_dir
    from hub.settings import load_settings
    from server.db import normalize_database_url, upgrade_database

    settings = load_settings()
    if not settings.database.url:
        make_private_dir(settings.data_path)
    url = normalize_database_url(settings.database_url)
    click.echo(f"Upgrading {_safe_url(url)} ...", err=True)
    asyncio.run(upgrade_database(url))
    click.echo("Database is at the latest migration.", err=True)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.group()
def config() -> None:
    """Settings."""


@config.command()
@json_option
def show(as_json: bool) -> None:
    """Print the effective settings (env, .env, defaults), secrets redacted."""
    from hub.settings import load_settings, redacted

    settings = load_settings()
    values: dict[str, Any] = redacted(settings)
    derived = {
        "data directory": str(settings.data_path),
        "database": "(from PRELOOP_DATABASE_URL)"
        if settings.database.url
        else settings.database_url,
        "public URL": settings.public_url,
    }
    if as_json:
        echo_json({"settings": values, "derived": derived})
        return
    click.echo(table(["setting", "value"], [[k, _shown(v)] for k, v in values.items()]))
    click.echo("")
    for name, value in derived.items():
        click.echo(f"{name}: {value}")


def _shown(value: Any) -> str:
    return '""' if value == "" else str(value)
