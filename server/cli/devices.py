"""``preloop devices``: pair phones by QR code, list and revoke them (admin)."""

from __future__ import annotations

import click

from server.cli.output import echo_json, json_option, stamp, table
from server.cli.target import TargetFlags, target_options


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
@target_options
@json_option
def pair(
    user: str,
    expires_in: int,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Print a one-time QR code that pairs the Preloop app with USER (an email or user id)."""
    import msgspec

    result = target.call(lambda c: c.start_pairing(user, expires_in))
    if as_json:
        echo_json({k: v for k, v in msgspec.to_builtins(result).items() if k != "svg"})
        return
    from server.qr import qr_terminal  # segno only when a QR code is printed

    click.echo(f"Scan this with the Preloop app (expires {stamp(result.expires_at)} UTC):\n")
    click.echo(qr_terminal(result.uri))
    click.echo("Or enter it by hand:\n")
    click.echo(f"    {result.uri}\n")
    click.echo(f"Pairing token {result.id} for user {result.user_id}; it works once.")


@devices.command(name="list")
@click.option("--user", default=None, help="Only this user's devices (email or user id).")
@target_options
@json_option
def list_devices(user: str | None, target: TargetFlags, as_json: bool) -> None:
    """List paired devices (never their credentials or push tokens)."""
    rows = target.call(lambda c: c.devices(user))
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            ["id", "user", "name", "platform", "push", "status", "paired"],
            [
                [
                    r.id,
                    r.user_id,
                    r.name,
                    r.platform,
                    "yes" if r.has_push_token else "no",
                    r.status,
                    stamp(r.created_at),
                ]
                for r in rows
            ],
        )
    )


@devices.command()
@click.argument("device_id")
@target_options
@json_option
def revoke(device_id: str, target: TargetFlags, as_json: bool) -> None:
    """Revoke DEVICE_ID: its credential stops working at once."""
    result = target.call(lambda c: c.revoke_device(device_id))
    if as_json:
        echo_json(result)
    else:
        click.echo(f"Revoked device {result.id} ({result.name}).")
