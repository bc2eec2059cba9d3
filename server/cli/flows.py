"""``preloop flows``: start a flow execution and get its gateway token and environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from server.cli.output import echo_json, json_option, stamp, table
from server.cli.target import TargetFlags, target_options

if TYPE_CHECKING:
    from hub.wire import ExecutionStarted


@click.group()
def flows() -> None:
    """Run flows: an execution and a short-lived token for the model gateway."""


def env_lines(started: ExecutionStarted) -> list[str]:
    token = started.token
    return [
        f"OPENAI_BASE_URL={started.openai_base_url}",
        f"OPENAI_API_KEY={token}",
        f"ANTHROPIC_BASE_URL={started.anthropic_base_url}",
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
@target_options
@json_option
def run(
    flow: str,
    ttl: int,
    models: tuple[str, ...],
    principal: str,
    env_only: bool,
    target: TargetFlags,
    as_json: bool,
) -> None:
    """Start an execution of FLOW and print its runtime token (shown once) and the
    environment an agent's OpenAI or Anthropic SDK needs."""
    body = {"ttl_seconds": ttl, "models": list(models), "principal": principal}
    started = target.call(lambda c: c.start_execution(flow, body))
    if as_json:
        echo_json(started)
        return
    if env_only:
        click.echo("\n".join(f"export {line}" for line in env_lines(started)))
        return
    execution = started.execution
    click.echo(
        f"Started execution {execution.id} of flow {execution.flow} as "
        f"{execution.principal}; token {started.token_id} expires "
        f"{stamp(started.expires_at)}. The token is shown once. For the agent:\n"
    )
    click.echo("\n".join(env_lines(started)))


@flows.command()
@click.argument("execution_id")
@target_options
@json_option
def show(execution_id: str, target: TargetFlags, as_json: bool) -> None:
    """An execution and its tokens (never their text)."""
    found = target.call(lambda c: c.execution(execution_id))
    if as_json:
        echo_json(found)
        return
    execution = found.execution
    click.echo(f"{execution.id}: flow {execution.flow}, run by {execution.principal}")
    click.echo(
        table(
            ["token", "status", "expires", "models"],
            [
                [t.id, t.status, stamp(t.expires_at), ", ".join(t.models) or "all"]
                for t in found.tokens
            ],
        )
    )


@flows.command(name="revoke")
@click.argument("execution_id")
@target_options
def revoke(execution_id: str, target: TargetFlags) -> None:
    """Revoke the execution's tokens: the gateway refuses them at once."""
    target.call(lambda c: c.revoke_execution(execution_id))
    click.echo(f"Revoked the tokens of {execution_id}.")
