"""``preloop tui``: the on-call dashboard. Registered lazily by the ``preloop`` CLI, and Textual
is imported only when the command runs, so ``preloop --help`` stays instant."""

from __future__ import annotations

import click

from tui.config import resolve_target


@click.command()
@click.option("--url", default=None, help="Server URL (else PRELOOP_URL or the saved profile).")
@click.option("--key", default=None, help="API key (else PRELOOP_API_KEY or the saved profile).")
@click.option(
    "--profile",
    default="default",
    show_default=True,
    envvar="PRELOOP_PROFILE",
    help="Saved login profile to use.",
)
def tui(url: str | None, key: str | None, profile: str) -> None:
    """The on-call dashboard: approve and deny held calls as they arrive."""
    target = resolve_target(url, key, profile)  # a ConfigError is printed by the CLI
    from tui.app import PreloopApp
    from tui.client import PreloopClient

    PreloopApp(PreloopClient(target.url, target.api_key)).run()
