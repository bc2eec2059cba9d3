"""docs/architecture.md describes the code as it is: every file or folder it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[3]
DOC = ROOT / "docs" / "architecture.md"
_PATH = re.compile(r"`((?:hub|server|bots|tui|tests)/[\w./]*)`")


def named_paths() -> list[str]:
    return sorted(set(_PATH.findall(DOC.read_text(encoding="utf-8"))))


def test_the_walk_through_names_files() -> None:
    paths = named_paths()

    assert "server/front.py" in paths
    assert len(paths) > 40


def test_every_named_path_exists() -> None:
    assert [p for p in named_paths() if not (ROOT / p.rstrip("/")).exists()] == []
