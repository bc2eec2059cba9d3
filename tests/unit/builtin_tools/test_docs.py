"""docs/builtin-tools.md: its policy example loads and decides as it says, and it documents
every tool with every argument its schema has."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.builtin_tools.definitions import DEFINITIONS
from hub.policy import CallContext, ToolCall, load_policy

DOC = (Path(__file__).resolve().parents[3] / "docs" / "builtin-tools.md").read_text("utf-8")


def test_the_policy_example_loads_and_holds_approving_a_pull_request() -> None:
    (example,) = re.findall(r"```yaml\n(.*?)```", DOC, flags=re.DOTALL)
    policy = load_policy(example, filename="docs/builtin-tools.md")
    call = ToolCall(
        tool="update_pull_request",
        server="preloop",
        args={"pull_request": "acme/app#7", "review_action": "approve"},
        context=CallContext(time=datetime(2026, 1, 1, tzinfo=UTC)),
    )

    assert "require_approval" == policy.decide(call).action.value


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: str(d["name"]))
def test_each_tool_and_argument_is_documented(definition: dict[str, object]) -> None:
    name = str(definition["name"])
    section = DOC.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
    schema = definition["inputSchema"]
    assert isinstance(schema, dict)
    missing = [arg for arg in schema["properties"] if f"`{arg}" not in section]
    assert [] == missing
