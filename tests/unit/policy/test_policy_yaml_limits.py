"""Limits on what a YAML document may cost to read: aliases that expand too far (the
"billion laughs" alias bomb) or that contain themselves are refused before anything is built,
with a problem naming the limit; ordinary anchors and aliases keep working."""

from __future__ import annotations

from typing import Any

import pytest

from hub.errors import PolicyError, PolicyTooLargeError
from hub.policy import load_cases, load_policy
from hub.policy._source import MAX_ALIAS_VALUES
from tests.unit.policy.policy_helpers import billion_laughs, policy


def test_the_billion_laughs_bomb_is_refused_naming_the_alias_limit() -> None:
    bomb = billion_laughs()

    with pytest.raises(PolicyTooLargeError) as caught:
        load_policy(bomb, filename="bomb.yaml")

    assert 400 > len(bomb.encode())
    [problem] = caught.value.problems
    assert "bomb.yaml" == problem.file
    assert f"YAML aliases would add more than {MAX_ALIAS_VALUES:,} values" in problem.message
    assert "alias bomb" in problem.message
    assert problem.line is not None


def test_a_policy_error_is_what_callers_catch() -> None:
    with pytest.raises(PolicyError):
        load_policy(billion_laughs(), filename="bomb.yaml")


def test_a_cases_file_is_held_to_the_same_limit() -> None:
    with pytest.raises(PolicyTooLargeError) as caught:
        load_cases(billion_laughs(), "bomb.cases.yaml")

    assert "alias bomb" in caught.value.problems[0].message


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(PolicyTooLargeError) as caught:
        load_policy("metadata: &m {name: *m}\n", filename="loop.yaml")

    [problem] = caught.value.problems
    assert "a YAML alias refers to a value that contains it (a recursive alias)" == problem.message
    assert (1, "loop.yaml") == (problem.line, problem.file)


def test_aliases_within_the_budget_still_expand() -> None:
    # as policies/coding-agent.yaml shares its shell rules
    loaded = policy(
        """
        version: "1.0"
        metadata:
          name: shared
          description: shared rules
        tools:
          - name: bash
            conditions: &rules
              - expression: "args.command.contains('rm -rf')"
                action: deny
          - name: sh
            conditions: *rules
        """
    )

    rules = [tool.conditions for tool in loaded.document.tools]
    assert rules[0] == rules[1]
    assert 1 == len(rules[1])


def test_aliases_close_to_the_limit_load() -> None:
    # four levels: aliases add 90 + 819 + 7,380 = 8,289 values, under the limit
    levels = "".join(f"      {line}\n" for line in billion_laughs(levels=4).splitlines())
    text = f"cases:\n  - name: big\n    tool: t\n    expect: allow\n    args:\n{levels}"

    [case] = load_cases(text, "big.cases.yaml")

    assert 9**4 == _leaves(case.args["d"])


def _leaves(value: Any) -> int:
    return sum(_leaves(item) for item in value) if isinstance(value, list) else 1
