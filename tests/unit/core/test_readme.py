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


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_gateway_walkthrough_installs_the_sdk_before_using_it() -> None:
    [walkthrough] = [b for b in sh_blocks() if "from openai import" in b]
    lines = walkthrough.splitlines()
    installs = [i for i, line in enumerate(lines) if line.startswith("pip install openai")]
    uses = [i for i, line in enumerate(lines) if "from openai import" in line]
    assert installs, "`pip install openai` is missing: `make run` does not install the SDK"
    assert installs[0] < uses[0]


def test_what_is_shipped_is_not_announced_as_coming_next() -> None:
    text = README.read_text()
    works, _, rest = text.partition("Not built yet:")
    assert rest, "the README says what is not built yet"
    upcoming = rest.split("\n\n", 1)[0].lower()
    shipped = ["slack", "mattermost", "email", "push", "preloop tui", "gateway", "budgets"]
    assert [] == [name for name in shipped if name in upcoming]
    intro = works.split("## The two commands")[0].lower()
    assert [] == [name for name in [*shipped, "ai approval"] if name not in intro]
