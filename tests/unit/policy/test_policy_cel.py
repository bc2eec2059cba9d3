"""CEL engines: the correctness corpus (run against every registered engine) and the details
the policy engine relies on (compile errors with columns, one-line evaluation errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.policy.cel import (
    ENGINES,
    CelCompileError,
    CelEngine,
    CelEvaluationError,
    CelPythonEngine,
    default_engine,
)

CORPUS = yaml.safe_load((Path(__file__).parent / "cel_corpus.yaml").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = CORPUS["cases"]


def test_the_corpus_is_large_enough_and_well_formed() -> None:
    names = [case["name"] for case in CASES]

    assert len(CASES) >= 40
    assert len(names) == len(set(names))
    for case in CASES:
        assert ("expect" in case) != ("error" in case), case["name"]
        assert case.get("error") in (None, "compile", "evaluation"), case["name"]
        assert set(case) <= {"name", "expression", "activation", "expect", "error"}


@pytest.mark.parametrize("engine_name", sorted(ENGINES))
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_corpus(engine_name: str, case: dict[str, Any]) -> None:
    engine: CelEngine = ENGINES[engine_name]()
    expected_error = case.get("error")

    if expected_error == "compile":
        with pytest.raises(CelCompileError):
            engine.compile(case["expression"])
        return
    program = engine.compile(case["expression"])
    activation = engine.prepare(case.get("activation") or {})
    if expected_error == "evaluation":
        with pytest.raises(CelEvaluationError):
            program.evaluate(activation)
        return
    value = program.evaluate(activation)
    assert value == case["expect"]
    assert type(value) is type(case["expect"])


def test_default_engine_is_registered() -> None:
    assert default_engine().name in ENGINES


@pytest.mark.parametrize(
    ("source", "column", "message"),
    [
        (
            "args.command.contains(",
            22,
            "CEL syntax error at column 22: unexpected end of expression",
        ),
        ("args.x = 1", 8, "CEL syntax error at column 8: unexpected character '='"),
        ("a b", 3, "CEL syntax error at column 3: unexpected 'b'"),
        (
            "args.x == 'abc",
            11,
            "CEL syntax error at column 11: unexpected ' (unterminated string?)",
        ),
    ],
)
def test_syntax_errors_carry_the_column(source: str, column: int, message: str) -> None:
    with pytest.raises(CelCompileError) as caught:
        CelPythonEngine().compile(source)

    assert (caught.value.column, caught.value.message) == (column, message)


def test_empty_expression_is_a_compile_error() -> None:
    with pytest.raises(CelCompileError, match="empty"):
        CelPythonEngine().compile("   ")


def test_comprehension_variables_are_not_unknown_names() -> None:
    program = CelPythonEngine().compile("args.xs.exists(item, item == args.want)")

    assert program.evaluate({"args": {"xs": [1, 2], "want": 2}}) is True


def test_name_check_can_be_turned_off() -> None:
    program = CelPythonEngine(variables=None).compile("anything == 1")

    assert program.evaluate({"anything": 1}) is True


def test_evaluation_errors_are_one_line_and_name_the_key() -> None:
    program = CelPythonEngine().compile("args.command.contains('a') && args.other")

    with pytest.raises(CelEvaluationError) as caught:
        program.evaluate({"args": {}})

    assert caught.value.message == "no such key: 'command'"


def test_a_prepared_activation_is_reused_across_programs() -> None:
    engine = CelPythonEngine()
    prepared = engine.prepare({"args": {"n": 2}})

    assert engine.prepare(prepared) is prepared
    assert engine.compile("args.n == 2").evaluate(prepared) is True
    assert engine.compile("args.n + 1").evaluate(prepared) == 3


def test_values_cel_cannot_represent_are_evaluation_errors() -> None:
    with pytest.raises(CelEvaluationError, match="not representable"):
        CelPythonEngine().prepare({"args": {"x": {1, 2}}})


def test_deeply_nested_expressions_are_refused_at_compile_time() -> None:
    engine = CelPythonEngine()
    fine = "(" * 20 + "true" + ")" * 20

    assert engine.compile(fine).evaluate({}) is True
    for depth in (60, 400):
        with pytest.raises(CelCompileError, match="nested too deeply"):
            engine.compile("(" * depth + "true" + ")" * depth)


def test_long_chains_of_conditions_evaluate() -> None:
    source = " && ".join(f"args.x != {n}" for n in range(30))

    assert CelPythonEngine().compile(source).evaluate({"args": {"x": 99}}) is True
