"""``${NAME}`` references in MCP server definitions, resolved only through an allow-list.

A policy file is shared, reviewed and exported; secrets must not live in it. A server's
``command``, ``args``, ``env`` values, ``url`` and ``headers`` values may instead say
``${GITHUB_TOKEN}``. Loading a policy leaves these literal (so export round-trips); the edge
that starts or connects to the server calls :func:`resolve_server_env` with the operator's
explicit allow-list. A policy can therefore never read a variable the operator did not name
(``${DATABASE_URL}`` in a malicious policy gets an error, not the database password).
``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Set

import msgspec

from hub.errors import ConfigError
from hub.policy.model import McpServerSpec

__all__ = ["find_references", "resolve_server_env"]

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def find_references(text: str) -> Iterator[str]:
    """Every name referenced as ``${NAME}`` in ``text`` (escaped ``$${`` skipped)."""
    for match in _REFERENCE.finditer(text):
        if match.group(1) is not None:
            yield match.group(1)


def server_values(server: McpServerSpec) -> Iterator[tuple[str, str]]:
    """(key path within the server, value) of every field that may hold references."""
    if server.command is not None:
        yield "command", server.command
    for index, arg in enumerate(server.args):
        yield f"args[{index}]", arg
    for key, value in server.env.items():
        yield f"env.{key}", value
    if server.url is not None:
        yield "url", server.url
    for key, value in server.headers.items():
        yield f"headers.{key}", value


def is_valid_name(name: str) -> bool:
    return _NAME.match(name) is not None


def resolve_server_env(
    server: McpServerSpec, environ: Mapping[str, str], allowed: Set[str]
) -> McpServerSpec:
    """A copy of ``server`` with every ``${NAME}`` replaced by ``environ[NAME]``.

    Only names in ``allowed`` are looked up. Raises :class:`ConfigError` naming every
    reference that is not allowed or not set (all of them, not just the first).
    """
    problems: list[str] = []

    def substitute(where: str, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name = match.group(1)
            if not is_valid_name(name):
                problems.append(f"{where}: '${{{name}}}' is not a valid variable reference")
            elif name not in allowed:
                problems.append(
                    f"{where}: variable '{name}' is not in the allow-list of environment "
                    "variables servers may use"
                )
            elif name not in environ:
                problems.append(f"{where}: variable '{name}' is allowed but not set")
            else:
                return environ[name]
            return match.group(0)

        return _REFERENCE.sub(one, text)

    prefix = f"mcp_servers[{server.name}]"
    resolved = msgspec.structs.replace(
        server,
        command=substitute(f"{prefix}.command", server.command)
        if server.command is not None
        else None,
        args=tuple(substitute(f"{prefix}.args[{i}]", arg) for i, arg in enumerate(server.args)),
        env={k: substitute(f"{prefix}.env.{k}", v) for k, v in server.env.items()},
        url=substitute(f"{prefix}.url", server.url) if server.url is not None else None,
        headers={k: substitute(f"{prefix}.headers.{k}", v) for k, v in server.headers.items()},
    )
    if problems:
        raise ConfigError(
            f"cannot resolve server '{server.name}':\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return resolved
