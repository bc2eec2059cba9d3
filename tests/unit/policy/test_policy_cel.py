"""CEL engines: the correctness corpus (run against every registered engine, and every engine's
answer compared with the reference engine's, cel-python), the choice of the default engine, and
the details the policy engine relies on (compile errors with columns, one-line evaluation
errors)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.policy.cel import (
    ENGINES,
    FAST_ENGINE,
    REFERENCE_ENGINE,
    CelCompileError,
    CelEngine,
    CelEvaluationError,
    CelPythonEngine,
    default_engine,
    engine_named,
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


def answer(engine: CelEngine, case: dict[str, Any]) -> tuple[Any, ...]:
    """What ``engine`` makes of a corpus case: its compile error (message, column, line), its
    evaluation error (message), or its value with the value's exact type."""
    try:
        program = engine.compile(case["expression"])
    except CelCompileError as exc:
        return ("compile error", exc.message, exc.column, exc.line)
    try:
        value = program.evaluate(engine.prepare(case.get("activation") or {}))
    except CelEvaluationError as exc:
        return ("evaluation error", exc.message)
    if isinstance(value, float) and math.isnan(value):
        return ("value", float, "nan")
    return ("value", type(value), repr(value))


REFERENCE = CelPythonEngine()
OTHERS = {name: ENGINES[name]() for name in sorted(ENGINES) if name != REFERENCE_ENGINE}


def test_the_default_install_has_both_engines() -> None:
    assert {REFERENCE_ENGINE, FAST_ENGINE} <= set(ENGINES)
    assert REFERENCE_ENGINE == REFERENCE.name


@pytest.mark.parametrize("engine_name", sorted(OTHERS))
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_corpus_answers_are_the_reference_engines(engine_name: str, case: dict[str, Any]) -> None:
    """Every case, on every engine, gives exactly cel-python's answer: the same value of the
    same type, or the same error with the same message (and column, for compile errors)."""
    assert answer(REFERENCE, case) == answer(OTHERS[engine_name], case)


def test_the_default_engine_is_cel_rust_when_installed() -> None:
    assert FAST_ENGINE == default_engine().name
    assert FAST_ENGINE == engine_named("auto").name
    assert REFERENCE_ENGINE == engine_named("cel-python").name


def test_without_cel_rust_the_default_is_cel_python_with_one_warning() -> None:
    """A platform without the common-expression-language wheel: cel-python decides, and one
    log line (however many policies load) says why and what it costs."""
    code = """
import importlib.abc, logging, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "cel" or name.startswith("cel."):
            raise ImportError("no wheel for this platform")
        return None

sys.meta_path.insert(0, Refuse())
logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
from hub.policy import ENGINES, default_engine, engine_named, load_policy
print(sorted(ENGINES), default_engine().name, engine_named("auto").name)
policy = load_policy("{version: '1.0', metadata: {name: x}, tools: [{name: t}]}")
print(policy.engine.name)
try:
    engine_named("cel-rust")
except ValueError as exc:
    print(exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    lines = done.stdout.splitlines()
    assert "['cel-python'] cel-python cel-python" == lines[0]
    assert "cel-python" == lines[1]
    assert lines[2].startswith("unknown CEL engine 'cel-rust' (common-expression-language")
    warnings = [line for line in done.stderr.splitlines() if line.startswith("preloop.policy")]
    assert 1 == len(warnings), done.stderr
    assert "cel-python (the reference engine) because cel-rust is not usable" in warnings[0]


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
