"""docs/decisions/README.md lists every decision record once, in order, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

DECISIONS = Path(__file__).parents[3] / "docs" / "decisions"
_LINK = re.compile(r"^- \[(\d{4})\]\((\d{4}-[a-z0-9-]+\.md)\): \S", re.MULTILINE)


def records() -> list[str]:
    return sorted(p.name for p in DECISIONS.glob("*.md") if p.name != "README.md")


def index_links() -> list[tuple[str, str]]:
    return _LINK.findall((DECISIONS / "README.md").read_text(encoding="utf-8"))


def test_every_record_is_named_by_number() -> None:
    assert [r for r in records() if not re.fullmatch(r"\d{4}-[a-z0-9-]+\.md", r)] == []
    numbers = [r[:4] for r in records()]
    assert sorted(n for n in set(numbers) if numbers.count(n) > 1) == []


def test_the_index_lists_every_record_once_in_order() -> None:
    listed = [file for _, file in index_links()]

    assert listed == records()


def test_each_index_line_shows_its_file_number() -> None:
    assert [(n, f) for n, f in index_links() if not f.startswith(f"{n}-")] == []


def test_every_entry_of_the_index_is_a_checked_link() -> None:
    text = (DECISIONS / "README.md").read_text(encoding="utf-8")

    assert text.count("\n- [") == len(index_links())
