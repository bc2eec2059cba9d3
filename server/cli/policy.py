"""``preloop policy``: offline file commands and server-side versioning."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hub.builtin_tools.names import BUILTIN_SERVER
from hub.errors import PolicyError, ValidationError
from server.cli.output import echo_json, json_option, print_error, stamp, table
from server.cli.target import TargetFlags, target_options

if TYPE_CHECKING:
    from hub.policy import CompiledPolicy


@click.group()
def policy() -> None:
    """Validate, test, apply and version policies."""


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from exc


def _json_arg(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{option} is not valid JSON: {exc}") from exc


@policy.command()
@click.argument("files", nargs=-1, required=True)
@json_option
def validate(files: tuple[str, ...], as_json: bool) -> None:
    """Check policy FILES offline. Exit 1 if any has a problem; every problem is listed."""
    from hub.policy import load_policy

    results: list[dict[str, Any]] = []
    for file in files:
        try:
            compiled = load_policy(_read(file), filename=file)
        except PolicyError as exc:
            results.append(
                {"file": file, "valid": False, "problems": [p.render() for p in exc.problems]}
            )
            if not as_json:
                click.echo(f"{file}: invalid", err=True)
                print_error(exc)
            continue
        doc = compiled.document
        results.append(
            {
                "file": file,
                "valid": True,
                "name": doc.metadata.name,
                "tools": len(doc.tools),
                "workflows": len(doc.approval_workflows),
            }
        )
        if not as_json:
            click.echo(
                f"{file}: valid ({doc.metadata.name!r}: {len(doc.tools)} tools, "
                f"{len(doc.approval_workflows)} approval workflows)"
            )
    if as_json:
        echo_json(results)
    if not all(r["valid"] for r in results):
        sys.exit(1)


@policy.command(name="eval")
@click.argument("file")
@click.option("--tool", required=True, help="Tool name.")
@click.option(
    "--server",
    default="",
    help="MCP server the tool belongs to ('preloop' for a built-in tool).",
)
@click.option("--args", "args_json", default="{}", show_default=True, help="Arguments as JSON.")
@click.option(
    "--principal",
    "principal_json",
    default="{}",
    help='Caller as JSON: {"key_id", "user", "agent", "role", "labels"}.',
)
@click.option("--justification", default=None, help="The agent's justification.")
@json_option
def eval_(
    file: str,
    tool: str,
    server: str,
    args_json: str,
    principal_json: str,
    justification: str | None,
    as_json: bool,
) -> None:
    """Decide one call against FILE offline and say which rule matched and why."""
    import msgspec

    from hub.clock import SystemClock
    from hub.policy import CallContext, Principal, ToolCall, load_policy

    compiled = load_policy(_read(file), filename=file)
    _check_server(compiled, tool, server)
    args = _json_arg(args_json, "--args")
    if not isinstance(args, dict):
        raise ValidationError("--args must be a JSON object")
    try:
        principal = msgspec.convert(_json_arg(principal_json, "--principal"), Principal)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"--principal: {exc}") from exc
    decision = compiled.decide(
        ToolCall(
            tool=tool,
            server=server,
            args=args,
            principal=principal,
            context=CallContext(time=SystemClock().now()),
            justification=justification,
        )
    )
    if as_json:
        echo_json(decision)
        return
    click.echo(f"decision:    {decision.action}")
    click.echo(
        f"rule:        {decision.rule}"
        + (f" ({decision.rule_description})" if decision.rule_description else "")
    )
    if decision.workflow:
        click.echo(f"workflow:    {decision.workflow}")
    if decision.message:
        click.echo(f"message:     {decision.message}")
    click.echo(f"why:         {decision.explanation}")
    if decision.error:
        click.echo(f"error:       {decision.error}")


def _check_server(compiled: CompiledPolicy, tool: str, server: str) -> None:
    """A tool the policy lists only under servers needs ``--server``: without it the call
    would silently get the unknown-tools default."""
    only_builtin = compiled.lookup("", tool) is None and not compiled.servers_of(tool)
    if not server and only_builtin and compiled.lookup(BUILTIN_SERVER, tool) is not None:
        raise ValidationError(
            f"the policy lists '{tool}' as a built-in tool (source: builtin): pass "
            f"--server {BUILTIN_SERVER} to decide a call of it"
        )
    servers = compiled.servers_of(tool)
    if server or not servers or compiled.lookup("", tool) is not None:
        return
    options = " or ".join(f"--server {s}" for s in servers)
    raise ValidationError(
        f"the policy lists tool '{tool}' only under server(s) {', '.join(servers)}: "
        f"pass {options} (a call with no server would get the unknown-tools default)"
    )


@policy.command(name="test")
@click.argument("file")
@click.option("--cases", "cases_file", required=True, help="Cases YAML file.")
@json_option
def test_(file: str, cases_file: str, as_json: bool) -> None:
    """Run policy unit tests: each case is a call and its expected decision. Exit 1 on failure."""
    from hub.policy import load_cases, load_policy, run_cases

    compiled = load_policy(_read(file), filename=file)
    cases = load_cases(_read(cases_file), filename=cases_file)
    report = run_cases(compiled, cases)
    if as_json:
        echo_json(report)
    else:
        click.echo(report.render_table())
    if not report.passed:
        sys.exit(1)


@policy.command()
@click.argument("file")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--comment", default="", help="Why: kept with the version.")
@target_options
@json_option
def apply(file: str, dry_run: bool, comment: str, target: TargetFlags, as_json: bool) -> None:
    """Make FILE the server's policy (a new version); prints the diff."""
    source = _read(file)
    result = target.call(lambda c: c.apply_policy(source, comment, filename=file, dry_run=dry_run))
    if as_json:
        echo_json(result)
        return
    if result.diff:
        click.echo(result.diff.rstrip("\n"))
    if not result.changed:
        click.echo(f"No changes: version {result.version} already matches {file}.")
    elif dry_run:
        click.echo(f"Dry run: applying {file} would change the policy (nothing applied).")
    else:
        click.echo(f"Applied {file} as version {result.version}.")


@policy.command()
@click.option("--version", "version", type=int, default=None, help="A version (default: active).")
@click.option("-o", "--output", default=None, help="Write to this file instead of stdout.")
@target_options
def export(version: int | None, output: str | None, target: TargetFlags) -> None:
    """Print the active policy (or VERSION) as canonical YAML."""
    result = target.call(lambda c: c.export_policy(version))
    if output:
        Path(output).write_text(result.source, encoding="utf-8")
        click.echo(f"Wrote version {result.version} to {output}.", err=True)
    else:
        click.echo(result.source, nl=False)


@policy.command()
@click.argument("file")
@target_options
def diff(file: str, target: TargetFlags) -> None:
    """Show what applying FILE would change. Exit 1 when it differs (like diff)."""
    source = _read(file)
    result = target.call(lambda c: c.diff_policy(source, file))
    if result.changed:
        click.echo(result.diff.rstrip("\n"))
        sys.exit(1)
    click.echo("No differences.")


@policy.command()
@target_options
@json_option
def history(target: TargetFlags, as_json: bool) -> None:
    """List the applied versions, newest first."""
    versions = target.call(lambda c: c.policy_versions())
    if as_json:
        echo_json(versions)
        return
    click.echo(
        table(
            ["version", "active", "name", "created", "by", "comment"],
            [
                [
                    v.version,
                    "*" if v.active else "",
                    v.name,
                    stamp(v.created_at),
                    v.created_by,
                    v.comment,
                ]
                for v in versions
            ],
        )
    )


@policy.command()
@click.argument("version", type=int)
@target_options
@json_option
def rollback(version: int, target: TargetFlags, as_json: bool) -> None:
    """Apply VERSION's content again, as a new version."""
    result = target.call(lambda c: c.rollback_policy(version))
    if as_json:
        echo_json(result)
    elif result.changed:
        click.echo(
            f"Rolled back to the content of version {version}: now version {result.version}."
        )
    else:
        click.echo(
            f"Version {version} is already the active content (version "
            f"{result.version}); nothing changed."
        )
