"""``preloop login``: check a URL and key against the server, then save them."""

from __future__ import annotations

import click

from hub.profiles import save_profile
from server.cli.target import TargetFlags


@click.command()
@click.argument("url")
@click.option("--key", required=True, envvar="PRELOOP_API_KEY", help="The API key to save.")
@click.option("--profile", default="default", show_default=True, help="Profile name.")
def login(url: str, key: str, profile: str) -> None:
    """Check URL and KEY against the server and save them as a profile (file mode 0600)."""
    me = TargetFlags(url=url, key=key).call(lambda client: client.whoami())
    path = save_profile(profile, url.rstrip("/"), key)
    click.echo(f"Logged in to {url} as key {me.key_id} (role {me.role}); saved to {path}.")
