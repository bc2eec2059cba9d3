"""``preloop tui``: the on-call dashboard, started with the CLI's target options.

The command lives with the other commands (one ``--url/--key/--profile`` group); the
dashboard itself is the ``tui`` package, a pure API client that never imports the server.
Textual is imported only when the command runs, so ``preloop --help`` stays instant.
"""

from __future__ import annotations

import click

from server.cli.target import TargetFlags, target_options


@click.command()
@target_options
def tui(target: TargetFlags) -> None:
    """The on-call dashboard: approve and deny held calls as they arrive."""
    resolved = target.resolve()  # a ConfigError is printed by the CLI
    from hub.api_client import ApiClient
    from tui.app import PreloopApp

    PreloopApp(ApiClient(resolved.url, resolved.api_key)).run()
