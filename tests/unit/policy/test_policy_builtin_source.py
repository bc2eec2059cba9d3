"""``source: builtin`` in policies (docs/decisions/0089): a built-in entry matches only calls
of the built-in tool (server ``preloop``), an upstream entry only upstream calls; the loader
checks the name and the source, and no upstream server may be called ``preloop``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.errors import PolicyError
from hub.policy import CallContext, ToolCall, load_policy

BASE = """
version: "1.0"
metadata: {name: t}
defaults: {action: allow, unknown_tools: deny}
"""
NOW = CallContext(time=datetime(2026, 1, 1, tzinfo=UTC))


def decide(policy: str, tool: str, server: str, **args: object) -> tuple[str, str]:
    decision = load_policy(BASE + policy).decide(
        ToolCall(tool=tool, server=server, args=dict(args), context=NOW)
    )
    return decision.action.value, decision.rule


def test_a_builtin_entry_never_matches_an_upstream_tool_of_that_name() -> None:
    policy = "tools:\n  - {name: search, source: builtin, action: allow}\n"

    assert ("allow", "tools.search.action") == decide(policy, "search", "preloop")
    assert ("deny", "defaults.unknown_tools") == decide(policy, "search", "github")


def test_a_server_less_upstream_entry_never_matches_a_built_in() -> None:
    policy = "tools:\n  - {name: get_issue, action: allow}\n"

    assert ("allow", "tools.get_issue.action") == decide(policy, "get_issue", "jira")
    assert ("deny", "defaults.unknown_tools") == decide(policy, "get_issue", "preloop")


def test_cel_sees_a_built_ins_arguments_and_its_server() -> None:
    policy = """
tools:
  - name: update_issue
    source: builtin
    conditions:
      - id: closing
        expression: "tool.server == 'preloop' && has(args.status) && args.status == 'closed'"
        action: deny
"""

    assert ("deny", "closing") == decide(policy, "update_issue", "preloop", status="closed")
    assert ("allow", "defaults.action") == decide(policy, "update_issue", "preloop", title="t")


def test_an_upstream_and_a_built_in_entry_of_one_name_are_not_duplicates() -> None:
    policy = """
tools:
  - {name: search, action: deny}
  - {name: search, source: builtin, action: allow}
"""

    assert ("allow", "tools.search.action") == decide(policy, "search", "preloop")
    assert ("deny", "tools.search.action") == decide(policy, "search", "github")


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        (
            "tools:\n  - {name: get_isue, source: builtin}\n",
            "tools[0].name: unknown built-in tool 'get_isue' (built-in tools: get_issue,",
        ),
        (
            "tools:\n  - {name: get_issue, source: builtin, server: gh}\n",
            "tools[0].server: a built-in tool (source: builtin) runs in Preloop: no server",
        ),
        (
            "tools:\n  - {name: get_issue, source: plugin}\n",
            "tools[0].source",
        ),
        (
            "tools:\n  - {name: x, server: preloop}\n",
            "tools[0].server: the server name 'preloop' is reserved for Preloop's built-in",
        ),
        (
            "mcp_servers:\n  - {name: preloop, transport: stdio, command: x}\n",
            "mcp_servers[0].name: the server name 'preloop' is reserved",
        ),
        (
            "tools:\n  - {name: search, source: builtin}\n  - {name: search, source: builtin}\n",
            "duplicate tool 'search' (source: builtin)",
        ),
    ],
)
def test_the_loader_checks_sources_and_the_reserved_server(policy: str, problem: str) -> None:
    with pytest.raises(PolicyError) as raised:
        load_policy(BASE + policy)

    assert problem in str(raised.value)
