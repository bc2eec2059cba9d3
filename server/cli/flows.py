"""``preloop flows``: start a flow execution and get its gateway token and environment."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from server.cli.client import connect, server_options
from server.cli.output import echo_json, json_option, table


@click.group()
def flows() -> None:
    """Run flows: an execution and a short-lived token for the model gateway."""


def env_lines(started: dict[str, Any]) -> list[str]:
    token = started["token"]
    return [
        f"OPENAI_BASE_URL={started['openai_base_url']}",
        f"OPENAI_API_KEY={token}",
        f"ANTHROPIC_BASE_URL={started['anthropic_base_url']}",
        f"ANTHROPIC_API_KEY={token}",
    ]


@flows.command()
@click.argument("flow")
@click.option("--ttl", type=int, default=3600, show_default=True, metavar="SECONDS")
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="GLOB",
    help="Limit the token to these models (repeatable; none: every routed model).",
)
@click.option("--principal", default="", help="Who runs it (admin keys only; default flow:FLOW).")
@click.option(
    "--env", "env_only", is_flag=True, help="Print only the KEY=VALUE lines (for eval/export)."
)
@server_options
@json_option
def run(
    flow: str,
    ttl: int,
    models: tuple[str, ...],
    principal: str,
    env_only: bool,
    url: str | None,
    key: str | None,
    profile: str,
    as_json: bool,
) -> None:
    """Start an execution of FLOW and print its runtime token (shown once) and the
    environment an agent's OpenAI or Anthropic SDK needs."""
    started = connect(url, key, profile).post(
        f"/api/v1/flows/{quote(flow, safe='')}/executions",
        {"ttl_seconds": ttl, "models": list(models), "principal": principal},
    )
    if as_json:
        echo_json(started)
        return
    if env_only:
        click.echo("\n".join(f"export {line}" for line in env_lines(started)))
        return
    execution = started["execution"]
    click.echo(
        f"Started execution {execution['id']} of flow {execution['flow']} as "
        f"{execution['principal']}; token {started['token_id']} expires "
        f"{started['expires_at'][:19]}. The token is shown once. For the agent:\n"
    )
    click.echo("\n".join(env_lines(started)))


@flows.command()
@click.argument("execution_id")
@server_options
@json_option
def show(execution_id: str, url: str | None, key: str | None, profile: str, as_json: bool) -> None:
    """An execution and its tokens (never their text)."""
    found = connect(url, key, profile).get(f"/api/v1/flows/executions/{execution_id}")
    if as_json:
        echo_json(found)
        return
    execution = found["execution"]
    click.echo(f"{execution['id']}: flow {execution['flow']}, run by {execution['principal']}")
    click.echo(
        table(
            ["token", "status", "expires", "models"],
            [
                [t["id"], t["status"], t["expires_at"][:19], ", ".join(t["models"]) or "all"]
                for t in found["tokens"]
            ],
        )
    )


@flows.command(name="revoke")
@click.argument("execution_id")
@server_options
def revoke(execution_id: str, url: str | None, key: str | None, profile: str) -> None:
    """Revoke the execution's tokens: the gateway refuses them at once."""
    connect(url, key, profile).post(f"/api/v1/flows/executions/{execution_id}/revoke-token")
    click.echo(f"Revoked the tokens of {execution_id}.")
