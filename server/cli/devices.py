"""``preloop devices``: pair phones by QR code, list and revoke them (admin)."""

from __future__ import annotations

import click

from server.cli.client import connect, server_options
from server.cli.output import echo_json, json_option, table


@click.group()
def devices() -> None:
    """Pair phones by QR code; list and revoke paired devices (admin)."""


@devices.command()
@click.argument("user")
@click.option(
    "--expires-in",
    type=click.IntRange(1, 3600),
    default=600,
    show_default=True,
    metavar="SECONDS",
    help="How long the pairing token can be used.",
)
@server_options
@json_option
def pair(
    user: str,
    expires_in: int,
    url: str | None,
    key: str | None,
    profile: str,
    as_json: bool,
) -> None:
    """Print a one-time QR code that pairs the Preloop app with USER (an email or user id)."""
    result = connect(url, key, profile).post(
        "/api/v1/pairing-tokens/", {"user": user, "expires_in_seconds": expires_in}
    )
    if as_json:
        echo_json({k: v for k, v in result.items() if k != "svg"})
        return
    from server.qr import qr_terminal  # segno only when a QR code is printed

    click.echo(f"Scan this with the Preloop app (expires {result['expires_at'][:19]} UTC):\n")
    click.echo(qr_terminal(result["uri"]))
    click.echo("Or enter it by hand:\n")
    click.echo(f"    {result['uri']}\n")
    click.echo(f"Pairing token {result['id']} for user {result['user_id']}; it works once.")


@devices.command(name="list")
@click.option("--user", default=None, help="Only this user's devices (email or user id).")
@server_options
@json_option
def list_devices(
    user: str | None, url: str | None, key: str | None, profile: str, as_json: bool
) -> None:
    """List paired devices (never their credentials or push tokens)."""
    rows = connect(url, key, profile).get("/api/v1/devices/", user=user)
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            ["id", "user", "name", "platform", "push", "status", "paired"],
            [
                [
                    r["id"],
                    r["user_id"],
                    r["name"],
                    r["platform"],
                    "yes" if r["has_push_token"] else "no",
                    r["status"],
                    r["created_at"][:19],
                ]
                for r in rows
            ],
        )
    )


@devices.command()
@click.argument("device_id")
@server_options
@json_option
def revoke(device_id: str, url: str | None, key: str | None, profile: str, as_json: bool) -> None:
    """Revoke DEVICE_ID: its credential stops working at once."""
    result = connect(url, key, profile).post(f"/api/v1/devices/{device_id}/revoke")
    if as_json:
        echo_json(result)
    else:
        click.echo(f"Revoked device {result['id']} ({result['name']}).")
