"""The README's policies are real: every YAML block in it loads and decides as described."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from hub.policy import CallContext, ToolCall, load_policy

README = Path(__file__).parents[3] / "README.md"


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_every_policy_in_the_readme_loads() -> None:
    blocks = yaml_blocks()
    assert len(blocks) >= 2
    for block in blocks:
        load_policy(block, filename="README.md")


def test_the_end_to_end_demo_policy_holds_deploys_only() -> None:
    [demo] = [b for b in yaml_blocks() if "server-everything" in b]
    policy = load_policy(demo, filename="README.md")
    noon = CallContext(time=datetime(2026, 1, 1, 12, tzinfo=UTC))

    def action(tool: str, args: dict[str, object]) -> str:
        call = ToolCall(tool=tool, server="everything", args=args, context=noon)
        return policy.decide(call).action.value

    assert action("echo", {"message": "hello"}) == "allow"
    assert action("echo", {"message": "deploy now"}) == "require_approval"
    assert action("get-sum", {"a": 1, "b": 2}) == "allow"
    assert action("get-tiny-image", {}) == "deny"
