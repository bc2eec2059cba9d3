"""``preloop providers`` and ``preloop secrets``: model providers and the keys custody holds.

A secret's value is read from stdin or a hidden prompt, never from the command line (argv is
visible to every user of the machine and lands in shell history), and is never printed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from hub.errors import ValidationError
from server.cli.output import echo_json, json_option, stamp, table
from server.cli.target import TargetFlags, target_options

if TYPE_CHECKING:
    from hub.api_client import ApiClient
    from hub.wire import ProviderView

KINDS = ["openai", "anthropic", "openai-compatible"]


@click.group()
def providers() -> None:
    """Add, list, show and remove model providers (admin)."""


def _aliases(values: tuple[str, ...]) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for value in values:
        alias, sep, model = value.partition("=")
        if not sep or not alias.strip() or not model.strip():
            raise click.BadParameter(f"expected ALIAS=MODEL, got {value!r}", param_hint="--alias")
        aliases[alias.strip()] = model.strip()
    return aliases


def _echo_provider(p: ProviderView) -> None:
    aliases = ", ".join(f"{a}={m}" for a, m in p.aliases.items()) or "-"
    click.echo(
        f"{p.name} ({p.kind})\n"
        f"  base URL:  {p.base_url}\n"
        f"  key:       {p.secret_ref}\n"
        f"  models:    {', '.join(p.models) or 'any (of its family)'}\n"
        f"  aliases:   {aliases}"
    )


@providers.command(name="add")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(KINDS), help="The wire format it speaks.")
@click.option("--base-url", required=True, help="e.g. https://api.openai.com/v1")
@click.option(
    "--secret",
    "secret_ref",
    required=True,
    metavar="REF",
    help="Where its key is: local:NAME ('preloop secrets set NAME'), vault:PATH#FIELD or env:VAR.",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="MODEL",
    help="A model it serves, exact or a glob like 'claude-*' (repeatable; none: any model of "
    "its family).",
)
@click.option("--alias", "aliases", multiple=True, metavar="A=M", help="Alias A for model M.")
@target_options
@json_option
def add(
    name: str,
    kind: str,
    base_url: str,
    secret_ref: str,
    models: tuple[str, ...],
    aliases: tuple[str, ...],
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Add provider NAME."""
    body = {
        "name": name,
        "kind": kind,
        "base_url": base_url,
        "secret_ref": secret_ref,
        "models": list(models),
        "aliases": _aliases(aliases),
    }
    created = target.call(lambda c: c.add_provider(body))
    if as_json:
        echo_json(created)
        return
    click.echo(f"Added provider {created.name}.")
    _echo_provider(created)


@providers.command(name="list")
@target_options
@json_option
def list_providers(target: TargetFlags, as_json: bool) -> None:
    """Every provider (the reference of its key, never the key)."""
    rows = target.call(lambda c: c.providers())
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            ["name", "kind", "base url", "key", "models", "aliases"],
            [
                [
                    r.name,
                    r.kind,
                    r.base_url,
                    r.secret_ref,
                    ", ".join(r.models) or "any",
                    ", ".join(f"{a}={m}" for a, m in r.aliases.items()),
                ]
                for r in rows
            ],
        )
    )


@providers.command()
@click.argument("name")
@target_options
@json_option
def show(name: str, target: TargetFlags, as_json: bool) -> None:
    """Show provider NAME."""
    found = target.call(lambda c: c.provider(name))
    if as_json:
        echo_json(found)
    else:
        _echo_provider(found)


@providers.command()
@click.argument("name")
@target_options
def remove(name: str, target: TargetFlags) -> None:
    """Remove provider NAME (its key stays in custody)."""
    target.call(lambda c: c.remove_provider(name))
    click.echo(f"Removed provider {name}.")


@click.group()
def secrets() -> None:
    """Store, list, delete and rotate local_encrypted secrets (admin)."""


def _read_value(name: str) -> str:
    """The value from stdin when it is not a terminal, else a hidden prompt (twice)."""
    if not sys.stdin.isatty():
        value = sys.stdin.read().strip()
    else:
        value = click.prompt(
            f"Value of {name}", hide_input=True, confirmation_prompt=True, prompt_suffix=": "
        ).strip()
    if not value:
        raise ValidationError(f"no value for secret {name!r} on stdin or at the prompt")
    return value


@secrets.command(name="set")
@click.argument("name")
@target_options
def set_secret(name: str, target: TargetFlags) -> None:
    """Store NAME as local:NAME. The value comes from stdin (e.g. `preloop secrets set
    openai < key.txt`) or a hidden prompt, never from the command line."""
    target.resolve()  # fails on a missing key before asking for a value
    value = _read_value(name)
    stored = target.call(lambda c: c.set_secret(name, value))
    click.echo(f"Stored {stored.ref} (sealed with key {stored.key_id}).")


@secrets.command(name="list")
@target_options
@json_option
def list_secrets(target: TargetFlags, as_json: bool) -> None:
    """Secrets by name, backend and sealing key (never values)."""
    rows = target.call(lambda c: c.secrets())
    if as_json:
        echo_json(rows)
        return
    click.echo(
        table(
            ["ref", "backend", "key", "current", "updated"],
            [
                [
                    r.ref,
                    r.backend,
                    r.key_id,
                    {True: "yes", False: "NO (rotate)", None: "-"}[r.current],
                    stamp(r.updated_at) or None,
                ]
                for r in rows
            ],
        )
    )


@secrets.command(name="delete")
@click.argument("name")
@target_options
def delete_secret(name: str, target: TargetFlags) -> None:
    """Delete local:NAME."""
    target.call(lambda c: c.delete_secret(name))
    click.echo(f"Deleted local:{name}.")


@secrets.command()
@target_options
def rotate(target: TargetFlags) -> None:
    """Re-seal every local secret under the active key (the first of PRELOOP_SECRETS_KEYS).
    Idempotent: run it again after an interruption."""

    async def each_local(client: ApiClient) -> tuple[int, int]:
        local = [r for r in await client.secrets() if r.backend == "local"]
        changed = 0
        for number, row in enumerate(local, start=1):
            result = await client.rotate_secret(row.name)
            changed += result.rotated
            state = "re-sealed under" if result.rotated else "already under"
            click.echo(f"[{number}/{len(local)}] {row.ref}: {state} {result.key_id}")
        return changed, len(local)

    changed, count = target.call(each_local)
    click.echo(
        f"Rotated {changed} of {count} secrets. Once every server runs with the new key "
        "first, the old key can be dropped from PRELOOP_SECRETS_KEYS."
    )
