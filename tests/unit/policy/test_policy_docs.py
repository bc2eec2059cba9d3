"""docs/policies.md: its examples load, its cases example gives the table it shows, and its
broken example gives the errors it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.errors import PolicyError
from hub.policy import load_cases, load_policy, run_cases

DOC = (Path(__file__).resolve().parents[3] / "docs" / "policies.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^( *)```(\w*)\n(.*?)^\1```", DOC, flags=re.MULTILINE | re.DOTALL)


def _dedent(indent: str, body: str) -> str:
    return "".join(line[len(indent) :] for line in body.splitlines(keepends=True))


YAML = [_dedent(indent, body) for indent, lang, body in BLOCKS if lang == "yaml"]
TEXT = [body for _, lang, body in BLOCKS if lang == ""]
POLICIES = [b for b in YAML if b.startswith("version:") and "name: broken" not in b]


def test_the_doc_has_examples() -> None:
    assert len(POLICIES) >= 6
    assert any(b.startswith("cases:") for b in YAML)


@pytest.mark.parametrize("text", POLICIES, ids=[f"example-{i}" for i in range(len(POLICIES))])
def test_every_policy_example_loads(text: str) -> None:
    assert load_policy(text, filename="docs/policies.md").document.version == "1.0"


def test_the_cases_example_prints_the_table_shown() -> None:
    (cases_text,) = [b for b in YAML if b.startswith("cases:")]
    report = run_cases(load_policy(POLICIES[0]), load_cases(cases_text))

    table = report.render_table()

    assert table.strip() in [block.strip() for block in TEXT]


def test_the_broken_example_gives_the_errors_shown() -> None:
    (broken,) = [b for b in YAML if "name: broken" in b]

    with pytest.raises(PolicyError) as caught:
        load_policy(broken, filename="policy.yaml")

    assert str(caught.value).strip() in [block.strip() for block in TEXT]
