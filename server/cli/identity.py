"""``preloop keys``, ``preloop users`` and ``preloop teams``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from hub.errors import ValidationError
from hub.passwords import MIN_PASSWORD_LENGTH
from server.cli.output import echo_json, json_option, stamp, table
from server.cli.target import TargetFlags, target_options

if TYPE_CHECKING:
    from hub.wire import UserView

ROLES = ["admin", "approver", "viewer", "agent"]


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (admin)."""


@keys.command()
@click.option("--name", required=True, help="What the key is for, e.g. 'claude-code laptop'.")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the key may do.")
@click.option("--user", "user_email", default=None, help="Email of the user who owns the key.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="K=V",
    help="Label visible to policies as principal.labels (repeatable).",
)
@click.option(
    "--expires-in",
    type=int,
    default=None,
    metavar="SECONDS",
    help="Expire the key after this many seconds.",
)
@click.option(
    "--tool",
    "tools",
    multiple=True,
    metavar="PATTERN",
    help="Allow only the tools whose <server>__<tool> name matches this glob, e.g. "
    "'github__*' (repeatable; without it the key sees every tool).",
)
@target_options
@json_option
def create(
    name: str,
    role: str,
    user_email: str | None,
    labels: tuple[str, ...],
    expires_in: int | None,
    tools: tuple[str, ...],
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Create a key. The key is printed once: store it now."""
    parsed: dict[str, str] = {}
    for label in labels:
        k, sep, v = label.partition("=")
        if not sep or not k:
            raise ValidationError(f"--label must be K=V, got {label!r}")
        parsed[k] = v
    body = {
        "name": name,
        "role": role,
        "user_email": user_email,
        "labels": parsed,
        "expires_in_seconds": expires_in,
        "tools": list(tools),
    }
    result = target.call(lambda c: c.create_key(body))
    if as_json:
        echo_json(result)
        return
    allowed = result.key.tools
    limit = f", tools: {', '.join(allowed)}" if allowed else ""
    click.echo(f"Created key {result.key.id} ({role}{limit}). It is shown once; store it now:\n")
    click.echo(f"    {result.secret}\n")


@keys.command(name="list")
@target_options
@json_option
def list_keys(target: TargetFlags, as_json: bool) -> None:
    """List keys (never their secrets)."""
    rows = target.call(lambda c: c.keys())
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            ["id", "name", "role", "status", "created", "expires", "tools"],
            [
                [
                    r.id,
                    r.name,
                    r.role,
                    r.status,
                    stamp(r.created_at),
                    stamp(r.expires_at),
                    ", ".join(r.tools) or "all",
                ]
                for r in rows
            ],
        )
    )


@keys.command()
@click.argument("key_id")
@target_options
@json_option
def revoke(key_id: str, target: TargetFlags, as_json: bool) -> None:
    """Revoke KEY_ID: it stops working at once."""
    result = target.call(lambda c: c.revoke_key(key_id))
    if as_json:
        echo_json(result)
    else:
        click.echo(f"Revoked key {result.id} ({result.name}).")


@click.group()
def users() -> None:
    """Add and list users, link their identities, set their passwords (admin)."""


@users.command(name="add")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@target_options
@json_option
def add_user(email: str, name: str, target: TargetFlags, as_json: bool) -> None:
    """Add a user by EMAIL."""
    result = target.call(lambda c: c.add_user(email, name))
    if as_json:
        echo_json(result)
    else:
        click.echo(f"Added user {result.email} ({result.id}).")


@users.command(name="list")
@target_options
@json_option
def list_users(target: TargetFlags, as_json: bool) -> None:
    """List users."""
    rows = target.call(lambda c: c.users())
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            ["id", "email", "name", "linked", "created"],
            [[r.id, r.email, r.name, _linked(r), stamp(r.created_at)] for r in rows],
        )
    )


def _linked(row: UserView) -> str:
    identities = row.identities
    return ", ".join(f"{channel}={value}" for channel, value in sorted(identities.items()))


@users.command(name="link")
@click.argument("user")
@click.option("--slack", metavar="ID", help="Slack user id (U...); '' unlinks.")
@click.option("--mattermost", metavar="ID", help="Mattermost user id; '' unlinks.")
@click.option("--email", metavar="ADDRESS", help="Where approval mail goes; '' unlinks.")
@target_options
@json_option
def link_user(
    user: str,
    slack: str | None,
    mattermost: str | None,
    email: str | None,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Link USER's (email or id) identities on the approval channels."""
    given = {"slack": slack, "mattermost": mattermost, "email": email}
    body = {k: v for k, v in given.items() if v is not None}
    if not body:
        raise click.UsageError("give at least one of --slack, --mattermost, --email")
    result = target.call(lambda c: c.link_user(user, body))
    if as_json:
        echo_json(result)
    else:
        click.echo(f"Linked {result.email}: {_linked(result) or 'nothing'}.")


@users.command(name="passwd")
@click.argument("user")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default=None,
    help="The role the user's logins get (default: the role set before, else viewer).",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (its first line) instead of prompting.",
)
@target_options
@json_option
def set_password(
    user: str, role: str | None, password_stdin: bool, target: TargetFlags, as_json: bool
) -> None:
    """Set USER's (email or id) password for logins (POST /api/v1/auth/token; username: the
    email, or the name when no other user has it). Prompts twice without echo unless
    --password-stdin. At least 12 characters; stored as a salted scrypt hash. The user's
    earlier access tokens stop working."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = str(
            click.prompt("New password", hide_input=True, confirmation_prompt="Repeat it")
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    result = target.call(lambda c: c.set_password(user, password, role))
    if as_json:
        echo_json(result)
    else:
        click.echo(
            f"Set the password of {result.email}; their logins get role {result.role}. "
            "Earlier access tokens of theirs stop working."
        )


@click.group()
def teams() -> None:
    """Add and list teams (admin)."""


@teams.command(name="add")
@click.argument("name")
@click.option(
    "--member", "members", multiple=True, metavar="EMAIL", help="A member's email (repeatable)."
)
@target_options
@json_option
def add_team(
    name: str,
    members: tuple[str, ...],
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Add a team NAME with its members."""
    result = target.call(lambda c: c.add_team(name, list(members)))
    if as_json:
        echo_json(result)
    else:
        click.echo(f"Added team {result.name} with {len(result.members)} member(s).")


@teams.command(name="list")
@target_options
@json_option
def list_teams(target: TargetFlags, as_json: bool) -> None:
    """List teams and their members."""
    rows = target.call(lambda c: c.teams())
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            ["name", "members", "created"],
            [[r.name, ", ".join(r.members), stamp(r.created_at)] for r in rows],
        )
    )
