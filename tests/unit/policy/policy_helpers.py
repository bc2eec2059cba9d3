"""Helpers for the policy tests: load YAML written inline, build calls, collect problems.

(A plain module rather than conftest.py, so test modules can import it by a unique name.)
"""

from __future__ import annotations

import itertools
import textwrap
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.errors import PolicyError, Problem
from hub.policy import CallContext, CompiledPolicy, Principal, ToolCall, load_policy

NOON = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def policy(text: str, *, filename: str = "policy.yaml") -> CompiledPolicy:
    """Load a policy written as an indented triple-quoted string."""
    return load_policy(textwrap.dedent(text).lstrip("\n"), filename=filename)


def problems(text: str, *, filename: str = "policy.yaml") -> list[Problem]:
    """The problems loading ``text`` reports (it must fail)."""
    with pytest.raises(PolicyError) as caught:
        policy(text, filename=filename)
    return list(caught.value.problems)


def located(found: list[Problem]) -> list[tuple[int | None, str | None]]:
    """(line, key) of each problem, the part tests pin down exactly."""
    return [(p.line, p.key) for p in found]


def call(
    tool: str,
    args: dict[str, Any] | None = None,
    *,
    server: str = "",
    justification: str | None = None,
    principal: Principal | None = None,
    time: datetime = NOON,
    session: str = "",
    flow: str = "",
) -> ToolCall:
    return ToolCall(
        tool=tool,
        server=server,
        args=args or {},
        principal=principal or Principal(),
        context=CallContext(time=time, session=session, flow=flow),
        justification=justification,
    )


def billion_laughs(levels: int = 9) -> str:
    """The classic alias bomb: nine values, then ``levels - 1`` lists of nine aliases of the
    list before (9**9 = 387,420,489 values once expanded) in under 400 bytes."""
    names = "abcdefghijklmnopqrstuvwxyz"[:levels]
    lines = ["a: &a [" + ", ".join(['"x"'] * 9) + "]"]
    for before, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{before}"] * 9) + "]")
    return "\n".join(lines) + "\n"
