"""Quick checks (hub.policy._precheck) answer simple rules in Python exactly as cel-python, the
reference engine, does, or not at all: on the correctness corpus, on every supported shape
against values of every type, on random expressions, and in whole decisions (with and without
quick checks, on both engines). No timing assertions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.policy import (
    Action,
    CelPythonEngine,
    engine_named,
    load_cases_file,
    load_policy,
    load_policy_file,
)
from hub.policy._precheck import quick_check
from hub.policy.bench import bench_call, generate_policy
from hub.policy.cel import CelCompileError, CelEvaluationError
from tests.properties import examples

HERE = Path(__file__).parent
POLICIES = HERE.parents[2] / "policies"
CASES: list[dict[str, Any]] = yaml.safe_load((HERE / "cel_corpus.yaml").read_text())["cases"]
REFERENCE = CelPythonEngine()


def reference(source: str, activation: dict[str, Any]) -> tuple[str, Any]:
    program = REFERENCE.compile(source)
    try:
        return "value", program.evaluate(REFERENCE.prepare(activation))
    except CelEvaluationError as exc:
        return "error", exc.message


def assert_quick_agrees(source: str, activation: dict[str, Any]) -> bool:
    """The quick answer, if any, is cel-python's value; returns whether there was one."""
    check = quick_check(REFERENCE.compile(source).tree)
    quick = check(activation) if check is not None else None
    if quick is None:
        return False
    assert ("value", quick) == reference(source, activation), (source, activation)
    assert type(quick) is bool
    return True


# -- the corpus ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_corpus_cases_answered_quickly_get_the_reference_answer(case: dict[str, Any]) -> None:
    try:
        program = REFERENCE.compile(case["expression"])
    except CelCompileError:
        return
    check = quick_check(program.tree)
    if check is None:
        return
    quick = check(case.get("activation") or {})
    if quick is not None:
        assert "error" not in case, case["name"]
        assert case["expect"] is quick


def test_the_shapes_of_real_rules_have_quick_checks() -> None:
    supported = [
        "args.command.startsWith('ls')",
        "args.command.contains('deploy') && args.env == 'production'",
        "args.path.startsWith('/etc/') || args.path.endsWith('.pem')",
        "args.query.matches('(?i)^\\\\s*(drop|truncate)\\\\s+table')",
        "has(args.limit) && args.limit > 1000",
        "principal.role == 'admin' && args.env in ['prod', 'staging']",
        "size(args.items) > 100 || args.command.endsWith('--force')",
        "tool.server != 'github'",
        "args.n <= -1 || args.n >= 10",
    ]
    unsupported = [
        "args.a || args.b && args.c",  # mixed operators
        "args.n + 1 > 2",  # arithmetic
        "args.items.exists(x, x == 'a')",  # macros
        "context.time.getHours() > 9",  # not a field of args, principal or tool
        "has(args.a) ? args.a == 'x' : false",  # ternary
        "args.s == b'x'",  # bytes literal
        "args.n > 1u",  # uint literal
        "args.m.k == 'x'",  # nested field
    ]

    assert all(quick_check(REFERENCE.compile(s).tree) is not None for s in supported)
    assert all(quick_check(REFERENCE.compile(s).tree) is None for s in unsupported)


# -- every atom against values of every type --------------------------------------------------

ATOMS = [
    "has(args.v)",
    "args.v.contains('ab')",
    "args.v.startsWith('ab')",
    "args.v.endsWith('ab')",
    "args.v.matches('^a.?b')",
    "args.v == 'ab'",
    "args.v != 'ab'",
    "args.v in ['ab', 'x']",
    "args.v in []",
    "args.v > 1",
    "args.v == 0",
    "args.v != 0",
    "args.v < -3",
    "args.v <= 2",
    "args.v >= 2",
    "size(args.v) > 1",
    "size(args.v) == 0",
    "principal.role == 'ab'",
    "tool.name.startsWith('a')",
]
VALUES = [
    "ab",
    "abc",
    "",
    "xab",
    "héllo",
    0,
    1,
    2,
    -5,
    2**63 - 1,
    -(2**63),
    1.5,
    True,
    False,
    None,
    [],
    ["ab"],
    [1, 2],
    {},
    {"k": 1},
]
OTHER = "has(args.w)"  # false: args has no w


@pytest.mark.parametrize("atom", ATOMS)
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_every_atom_on_every_type_of_value(atom: str, value: Any) -> None:
    activation = {
        "args": {"v": value},
        "principal": {"role": value},
        "tool": {"name": value, "server": ""},
    }
    for source in (atom, f"{atom} && {OTHER}", f"{OTHER} && {atom}", f"!{OTHER} || {atom}"):
        if source.startswith("!"):  # '!x || atom' is not a supported shape: no quick check
            assert quick_check(REFERENCE.compile(source).tree) is None
            continue
        assert_quick_agrees(source, activation)
    # a missing key, or a variable that is not a map
    assert_quick_agrees(atom, {"args": {}, "principal": {}, "tool": {}})
    assert_quick_agrees(atom, {"args": [value], "principal": "x", "tool": 1})


def test_a_false_operand_decides_a_conjunction_even_next_to_an_error() -> None:
    source = "args.missing == 'x' && args.v.startsWith('a')"

    assert assert_quick_agrees(source, {"args": {"v": "zz"}})  # False, though the left errs
    assert not assert_quick_agrees(source, {"args": {"v": "ab"}})  # unknown: the engine errs


# -- random expressions of the supported shapes ---------------------------------------------

_STRINGS = st.sampled_from(["", "a", "ab", "b", "ba", "é"])
_VALUES = st.one_of(
    _STRINGS,
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([2**63 - 1, -(2**63), 1.0, True, None, [], ["a"], {"a": 1}]),
)


def _quoted(text: str) -> str:
    return "'" + text + "'"


_ATOM = st.one_of(
    st.builds(lambda f: f"has(args.{f})", st.sampled_from("xyz")),
    st.builds(
        lambda f, m, s: f"args.{f}.{m}({_quoted(s)})",
        st.sampled_from("xyz"),
        st.sampled_from(["contains", "startsWith", "endsWith", "matches"]),
        _STRINGS,
    ),
    st.builds(
        lambda f, op, s: f"args.{f} {op} {_quoted(s)}",
        st.sampled_from("xyz"),
        st.sampled_from(["==", "!="]),
        _STRINGS,
    ),
    st.builds(
        lambda f, op, n: f"args.{f} {op} {n}",
        st.sampled_from("xyz"),
        st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
        st.integers(min_value=-3, max_value=3),
    ),
    st.builds(
        lambda f, op, n: f"size(args.{f}) {op} {n}",
        st.sampled_from("xyz"),
        st.sampled_from(["==", ">", "<="]),
        st.integers(min_value=0, max_value=2),
    ),
    st.builds(
        lambda f, items: f"args.{f} in [{', '.join(map(_quoted, items))}]",
        st.sampled_from("xyz"),
        st.lists(_STRINGS, max_size=3),
    ),
)
_EXPRESSIONS = st.builds(
    lambda atoms, joiner: joiner.join(atoms),
    st.lists(_ATOM, min_size=1, max_size=4),
    st.sampled_from([" && ", " || "]),
)


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=_EXPRESSIONS,
    args=st.dictionaries(st.sampled_from("xyz"), _VALUES, max_size=3),
)
def test_quick_answers_are_the_reference_answers(source: str, args: dict[str, Any]) -> None:
    assert_quick_agrees(source, {"args": args})


# -- whole decisions -------------------------------------------------------------------------


def _calls(size: int) -> list[Any]:
    odd_args: list[dict[str, Any]] = [
        {},
        {"command": 5, "env": None},
        {"command": "git diff", "env": "prod", "limit": True, "items": "abc"},
        {"command": "ls", "limit": 2**63 - 1, "items": {"a": 1}, "path": ["/etc/"]},
        {"query": "DROP TABLE users", "command": "rm --force", "items": list(range(200))},
        {"command": "deploy", "env": "production", "limit": 5000, "path": "/srv/x.pem"},
    ]
    calls = []
    for index in range(size):
        base = bench_call(index)
        calls.append(base)
        for args in odd_args:
            calls.append(type(base)(**{**_fields(base), "args": {**base.args, **args}}))
            calls.append(type(base)(**{**_fields(base), "args": args}))
    return calls


def _fields(call: Any) -> dict[str, Any]:
    return {name: getattr(call, name) for name in call.__struct_fields__}


@pytest.mark.parametrize("engine", ["cel-rust", "cel-python"])
def test_decisions_with_quick_checks_are_the_reference_engines(engine: str) -> None:
    text = generate_policy(12, rules_per_tool=5, seed=3)
    fast = load_policy(text, engine=engine_named(engine))
    slow = load_policy(text, engine=engine_named("cel-python"), prechecks=False)

    for call in _calls(12):
        assert slow.decide(call) == fast.decide(call), call


@pytest.mark.parametrize(
    "path",
    sorted(p for p in POLICIES.glob("*.yaml") if not p.name.endswith(".cases.yaml")),
    ids=lambda p: p.stem,
)
def test_shipped_policies_decide_alike_with_quick_checks(path: Path) -> None:
    fast = load_policy_file(path)  # the default engine, with quick checks
    slow = load_policy_file(path, engine=engine_named("cel-python"), prechecks=False)

    for case in load_cases_file(path.with_name(f"{path.stem}.cases.yaml")):
        assert slow.decide(case.to_call()) == fast.decide(case.to_call()), case.name


@pytest.mark.parametrize("engine", ["cel-rust", "cel-python"])
@pytest.mark.parametrize(
    "odd", [2**64, -(2**63) - 1, {1, 2}, object()], ids=["2**64", "-2**63-1", "set", "object"]
)
def test_a_value_cel_cannot_represent_still_fails_closed(engine: str, odd: Any) -> None:
    """The quick check could answer this rule (and allow), but the reference engine cannot
    take the call's values at all: the decision is the evaluation error's, never an allow."""
    text = """
version: "1.0"
metadata: {name: odd}
defaults: {action: allow, on_error: deny}
tools:
  - name: bash
    conditions:
      - {expression: "args.command.startsWith('ls')", action: allow}
"""
    fast = load_policy(text, engine=engine_named(engine))
    slow = load_policy(text, engine=engine_named("cel-python"), prechecks=False)
    call = bench_call(0)
    call = type(call)(**{**_fields(call), "tool": "bash", "args": {"command": "ls", "n": odd}})

    decision = fast.decide(call)

    assert slow.decide(call) == decision
    assert Action.DENY is decision.action
    assert decision.error is not None
    assert "bash#1" == decision.rule
