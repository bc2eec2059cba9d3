"""Type errors a CEL expression makes whatever the call are reported when the policy loads,
by both engines alike; expressions whose types depend on the call are left to evaluation."""

from __future__ import annotations

import pytest

from hub.policy import ENGINES, CelCompileError
from tests.unit.policy.policy_helpers import problems

ALWAYS_WRONG = [
    ("args.message == 1 + 'a'", 17, "'+' cannot be applied to int and string"),
    ("'a' - 'b' == args.s", 1, "'-' cannot be applied to string and string"),
    ("args.n > 'abc' * 2", 10, "'*' cannot be applied to string and int"),
    ("'a' - args.x == 1", 1, "'-' cannot take a string on the left, whatever the other side is"),
    ("args.n < 1 || 'a' < 1.5", 15, "'<' cannot be applied to string and double"),
    ("args.ok && 1 == 'a'", 12, "'==' cannot be applied to int and string"),
    ("-'x' == args.s", 1, "'-' cannot be applied to a string"),
    ("!1", 1, "'!' cannot be applied to an int"),
    ("1 ? args.a : args.b", 1, "the condition before '?' must be a bool, not int"),
    ("null < args.n", 1, "'<' cannot take a null on the left, whatever the other side is"),
]

DEPENDS_ON_THE_CALL = [
    "args.s + 1 == 2",  # args.s may be an int
    "args.n == 1.0",  # args.n may be a double
    "args.tags == ['a']",
    "args.x in ['a', 'b']",
    "'a' in args.x",
    "args.d + duration('1s') > duration('2s')",
    "[1, 2].all(x, x > args.n)",
    "true ? 1 : 'a'",  # the branch not taken is not an error
    "9223372036854775807 + 1 > args.n",  # overflow: an evaluation error, not a type error
    "1 / 0 == args.n",  # likewise
    "size(args.s) > 20 && context.time > timestamp('2026-01-01T00:00:00Z')",
]


@pytest.mark.parametrize("engine_name", sorted(ENGINES))
@pytest.mark.parametrize(("source", "column", "what"), ALWAYS_WRONG)
def test_a_type_error_whatever_the_call_is_a_compile_error(
    engine_name: str, source: str, column: int, what: str
) -> None:
    with pytest.raises(CelCompileError) as caught:
        ENGINES[engine_name]().compile(source)

    expected = f"type error at column {column}: {what} (it would fail on every call)"
    assert (expected, column) == (caught.value.message, caught.value.column)


@pytest.mark.parametrize("engine_name", sorted(ENGINES))
@pytest.mark.parametrize("source", DEPENDS_ON_THE_CALL)
def test_types_that_depend_on_the_call_compile(engine_name: str, source: str) -> None:
    program = ENGINES[engine_name]().compile(source)

    assert source == program.source


def test_the_policy_problem_names_the_file_tool_and_rule() -> None:
    [problem] = problems(
        """
        version: "1.0"
        metadata:
          name: typed
        tools:
          - name: echo
            server: everything
            conditions:
              - expression: "args.message.size() > 3"
                action: allow
              - expression: "args.message == 1 + 'a'"
                action: deny
        mcp_servers:
          - name: everything
            transport: stdio
            command: npx
        """,
        filename="typed.yaml",
    )

    expected = (
        "type error at column 17: '+' cannot be applied to int and string (it would fail on "
        "every call) (tool 'everything/echo', rule 2)"
    )
    assert expected == problem.message
    assert ("typed.yaml", 10, "tools[0].conditions[1].expression") == (
        problem.file,
        problem.line,
        problem.key,
    )
