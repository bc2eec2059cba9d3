"""Every command that talks to a server takes the one option group (``--url``, ``--key``,
``--profile``, from server/cli/target.py): the same names, help and environment, never a
hand-made copy."""

from __future__ import annotations

from collections.abc import Iterator

import click

from server.cli.main import COMMANDS, cli
from server.cli.target import target_options


def _commands() -> Iterator[tuple[str, click.Command]]:
    context = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None
        if isinstance(command, click.Group):
            for sub, found in command.commands.items():
                yield f"{name} {sub}", found
        else:
            yield name, command


def _options(command: click.Command) -> dict[str, click.Option]:
    return {p.name: p for p in command.params if isinstance(p, click.Option) and p.name}


def test_commands_that_take_a_key_take_the_whole_group() -> None:
    @target_options
    def reference(target: object) -> None: ...

    group = _options(click.command()(reference))
    # (``preloop login URL --key KEY --profile NAME`` names what to save, not where to connect)
    targeted = {
        name: _options(c) for name, c in _commands() if "profile" in _options(c) and name != "login"
    }
    assert {"tui", "mcp stdio", "policy apply", "keys list", "servers add"} <= set(targeted)
    for name, options in targeted.items():
        for param in ("key", "profile"):
            mine, theirs = options[param], group[param]
            assert (mine.opts, mine.help, mine.envvar) == (theirs.opts, theirs.help, theirs.envvar)
        expected = ["--preloop-url"] if name == "servers add" else ["--url"]
        assert expected == options["url"].opts, name
