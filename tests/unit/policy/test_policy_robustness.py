"""Whatever the input, loading either succeeds or raises PolicyError with located problems."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import PolicyError, Problem
from hub.policy import load_cases, load_policy
from tests.properties import examples

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_KEYS = st.sampled_from(
    [
        "version",
        "metadata",
        "name",
        "tools",
        "conditions",
        "expression",
        "action",
        "defaults",
        "approval_workflows",
        "mcp_servers",
        "transport",
        "url",
        "cases",
        "expect",
        "tool",
    ]
) | st.text(max_size=8)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=25,
)


def _problems(text: str, *, cases: bool = False) -> tuple[Problem, ...]:
    """The problems loading ``text`` reports; () when it loads."""
    try:
        if cases:
            load_cases(text, "fuzz.yaml")
        else:
            load_policy(text, filename="fuzz.yaml")
    except PolicyError as exc:
        found = exc.problems
    else:
        return ()
    assert found, "a PolicyError must carry at least one problem"
    return found


def _well_formed(found: tuple[Problem, ...]) -> bool:
    return all(p.file == "fuzz.yaml" and p.message for p in found)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    assert _well_formed(_problems(text))


@settings(max_examples=examples(300), deadline=None)
@given(_DATA)
def test_arbitrary_yaml_structures(data: Any) -> None:
    wrapped = {"version": "1.0", "metadata": {"name": "x"}, "tools": [data]}

    assert _well_formed(_problems(yaml.safe_dump(data)))
    assert _well_formed(_problems(yaml.safe_dump(wrapped)))


@settings(max_examples=examples(150), deadline=None)
@given(_DATA)
def test_arbitrary_cases_files(data: Any) -> None:
    assert _well_formed(_problems(yaml.safe_dump({"cases": [data]}), cases=True))
