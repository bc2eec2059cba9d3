"""The built-in tools' definitions, as /mcp serves them, against the committed snapshots in
toolsnaps/ (one JSON file per tool, as github-mcp-server's __toolsnaps__): a change to a name,
a description, a schema or an annotation fails here until it is made on purpose with

    PRELOOP_UPDATE_TOOLSNAPS=1 .venv/bin/python -m pytest tests/unit/builtin_tools/test_toolsnaps.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hub.builtin_tools.arguments import ARGUMENTS
from hub.builtin_tools.definitions import DEFINITIONS
from hub.builtin_tools.names import BUILTIN_TOOL_NAMES, READ_ONLY_TOOLS

SNAPS = Path(__file__).parent / "toolsnaps"
UPDATE = os.environ.get("PRELOOP_UPDATE_TOOLSNAPS") == "1"


def _text(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: str(d["name"]))
def test_each_tool_matches_its_snapshot(definition: dict[str, Any]) -> None:
    snap = SNAPS / f"{definition['name']}.snap"
    if UPDATE:
        snap.write_text(_text(definition), encoding="utf-8")
    assert snap.exists(), f"no snapshot {snap.name}: run with PRELOOP_UPDATE_TOOLSNAPS=1"
    assert snap.read_text(encoding="utf-8") == _text(definition), (
        f"the definition of {definition['name']} changed: if on purpose, regenerate with "
        "PRELOOP_UPDATE_TOOLSNAPS=1"
    )


def test_there_is_no_snapshot_of_a_tool_that_does_not_exist() -> None:
    assert sorted(BUILTIN_TOOL_NAMES) == sorted(p.stem for p in SNAPS.glob("*.snap"))


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: str(d["name"]))
def test_the_schema_and_the_decoded_arguments_agree(definition: dict[str, Any]) -> None:
    kind = ARGUMENTS[definition["name"]]
    schema = definition["inputSchema"]
    fields = kind.__struct_fields__  # the required ones first, as msgspec orders them
    required = list(fields[: len(fields) - len(kind.__struct_defaults__)])
    assert list(kind.__struct_fields__) == list(schema["properties"])
    assert required == schema["required"]
    assert schema["additionalProperties"] is False


def test_read_only_hints_are_on_the_four_reads_only() -> None:
    hints = {d["name"]: d["annotations"]["readOnlyHint"] for d in DEFINITIONS}
    assert {"get_issue", "search", "estimate_compliance", "get_pull_request"} == READ_ONLY_TOOLS
    assert {n for n, read_only in hints.items() if read_only} == READ_ONLY_TOOLS
    assert all(
        d["annotations"]["destructiveHint"] is False
        for d in DEFINITIONS
        if d["name"] not in READ_ONLY_TOOLS
    )
