"""The built-ins' names outside the tools: key allow-lists take them bare, and no upstream
server may be registered under their reserved server name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.allowlist import PATTERN_SHAPE, check_patterns, matches
from hub.auditing import Auditor
from hub.builtin_tools.names import BUILTIN_TOOL_NAMES
from hub.clock import FrozenClock
from hub.errors import ValidationError
from hub.identity import IdentityService
from hub.mcp_servers import ServerRegistry
from hub.memory import InMemoryStorage
from hub.policy.model import McpServerSpec, Transport


def test_allow_lists_take_built_in_names_bare_and_their_wildcards_match_them() -> None:
    patterns = check_patterns(["get_issue", "*_pull_request", "github__*"])

    assert patterns == ("get_issue", "*_pull_request", "github__*")
    assert matches(patterns, "get_issue")
    assert matches(patterns, "update_pull_request")
    assert not matches(patterns, "search")
    assert all(re.match(PATTERN_SHAPE, name) for name in BUILTIN_TOOL_NAMES)
    with pytest.raises(ValidationError, match="matches no tool"):
        check_patterns(["get_isue"])


async def test_no_upstream_server_may_be_called_preloop() -> None:
    storage, clock = InMemoryStorage(), FrozenClock()
    account = await IdentityService(storage, clock, Auditor(storage.audit, clock)).default_account()
    spec = McpServerSpec(name="preloop", transport=Transport.STDIO, command="x")

    with pytest.raises(ValidationError, match="reserved for Preloop's built-in tools"):
        await ServerRegistry(storage, clock).register(account.id, spec, source="api")


def test_policy_eval_points_a_built_in_at_server_preloop(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from server.cli.main import cli

    policy = tmp_path / "p.yaml"
    policy.write_text(
        'version: "1.0"\nmetadata: {name: t}\ndefaults: {unknown_tools: deny}\n'
        "tools:\n  - {name: get_issue, source: builtin, action: allow}\n"
    )
    runner = CliRunner()

    bare = runner.invoke(cli, ["policy", "eval", str(policy), "--tool", "get_issue"])
    served = runner.invoke(
        cli, ["policy", "eval", str(policy), "--tool", "get_issue", "--server", "preloop"]
    )

    assert isinstance(bare.exception, ValidationError)  # main() prints it and exits 1
    assert "pass --server preloop" in bare.exception.message
    assert 0 == served.exit_code, served.output
    assert "decision:    allow" in served.output
