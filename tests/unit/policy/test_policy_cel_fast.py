"""The cel-rust engine gives cel-python's answers: same compile errors, same values, same
evaluation errors (the correctness corpus runs against it in test_policy_cel.py). Here: the
places where the two interpreters differ, a differential battery, a property test over random
expressions and activations, whole policies, and engine selection. No timing assertions."""

from __future__ import annotations

import functools
import importlib.util
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.policy import (
    ENGINES,
    CelPythonEngine,
    engine_named,
    load_cases_file,
    load_policy,
    load_policy_file,
    run_cases,
)
from hub.policy.bench import bench_call, generate_policy
from hub.policy.cel import CelCompileError, CelEngine, CelEvaluationError
from hub.policy.engine import index_key

if importlib.util.find_spec("cel") is None:  # a main dependency: test_policy_cel.py fails
    pytest.skip("common-expression-language is not installed", allow_module_level=True)

from hub.policy import cel_rust  # installed: it must import (and pass its self-test)
from hub.policy.cel_rust import RustCelEngine
from tests.properties import examples

POLICIES = Path(__file__).resolve().parents[3] / "policies"
PY = CelPythonEngine()
RS = RustCelEngine()
PY_ANY = CelPythonEngine(variables=None)
RS_ANY = RustCelEngine(variables=None)


# -- comparing the engines ------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types (NaN equals NaN; -0.0 is not 0.0; same UTC offset)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


def outcome(engine: CelEngine, source: str, activation: dict[str, Any]) -> tuple[str, Any]:
    try:
        program = engine.compile(source)
    except CelCompileError as exc:
        return "compile error", (exc.message, exc.column, exc.line)
    try:
        return "value", program.evaluate(engine.prepare(activation))
    except CelEvaluationError as exc:
        return "evaluation error", exc.message


def assert_agree(source: str, activation: dict[str, Any], *, any_names: bool = False) -> None:
    python, rust = (PY_ANY, RS_ANY) if any_names else (PY, RS)
    expected = outcome(python, source, activation)
    actual = outcome(rust, source, activation)

    assert expected[0] == actual[0], (source, activation, expected, actual)
    if expected[0] == "value":
        assert same(expected[1], actual[1]), (source, activation, expected, actual)
    else:
        assert expected[1] == actual[1], (source, activation, expected, actual)


def rust_only(source: str, activation: dict[str, Any]) -> Any:
    """The value, asserting Rust computed it (no fallback to cel-python)."""
    program = RS_ANY.compile(source)
    prepared = RS_ANY.prepare(activation)
    value = program.evaluate(prepared)

    assert program.native, source
    assert not prepared.used_cel_python, source
    return value


# -- where the interpreters differ ----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "activation", "expected"),
    [
        # cel-python refuses to compare across types; Rust would answer
        ("i == d", {"i": 1, "d": 1.0}, "evaluation error"),
        ("i < d", {"i": 1, "d": 1.5}, "evaluation error"),
        ("i == s", {"i": 1, "s": "a"}, "evaluation error"),
        ("i == n", {"i": 1, "n": None}, "evaluation error"),
        ("1 in l", {"l": [1.0]}, "evaluation error"),
        ("1 in m", {"m": {"a": 1}}, "evaluation error"),
        ("-i", {"i": -(2**63)}, "evaluation error"),  # Rust wraps around
        ("(s + 'b').contains('b')", {"s": "a"}, "evaluation error"),  # a plain str
        # ... and answers where Rust fails
        ("b == 1", {"b": True}, True),
        ("l[-1]", {"l": [1, 2]}, 2),
        ("size(n)", {"n": None}, 0),
        ("has(s.f)", {"s": "text"}, False),
        ("s[0]", {"s": "héllo"}, "h"),
        ("l.contains(1)", {"l": [1, 2]}, True),
        ("mi % -1", {"mi": -(2**63)}, 0),
        # its own conventions
        ("size(s)", {"s": "héllo"}, 5),  # code points, not bytes
        ("s.matches('\\\\d')", {"s": "٣"}, False),  # RE2's \d is ASCII
        ("s.matches('^\\\\s')", {"s": "\u00a0x"}, False),
        ("matches(s, 'l+')", {"s": "hello"}, True),  # Rust has no global matches()
        ("d / 0.0", {"d": -1.0}, math.inf),  # cel-python: any x / 0.0 is +inf
        ("string(d)", {"d": 1.0}, "1.0"),
        ("string(td)", {"td": timedelta(minutes=90)}, "5400s"),
        ("m.map(k, k)", {"m": {"b": 1, "a": 2, "c": 3}}, ["b", "a", "c"]),  # insertion order
        ("{'a': 1, 'a': 2}", {}, "evaluation error"),
        (
            "t.getHours()",
            {"t": datetime(2026, 1, 4, 2, 0, tzinfo=timezone(timedelta(hours=5)))},
            21,
        ),
        (
            "string(t)",
            {"t": datetime(2026, 1, 4, 2, 0, tzinfo=timezone(timedelta(hours=5)))},
            "2026-01-04T02:00:00+05:00",
        ),
        ("timestamp('2026-01-01T00:00:00+05:30').getHours()", {}, 18),
    ],
)
def test_differences_are_resolved_the_cel_python_way(
    source: str, activation: dict[str, Any], expected: Any
) -> None:
    kind, value = outcome(RS_ANY, source, activation)

    assert outcome(PY_ANY, source, activation)[0] == kind
    if expected == "evaluation error":
        assert kind == "evaluation error", value
    else:
        assert kind == "value", value
        assert same(value, expected)


@pytest.mark.parametrize(
    ("source", "activation", "expected"),
    [
        (
            "args.command.contains('deploy') && args.env == 'production'",
            {"args": {"command": "deploy x", "env": "production"}},
            True,
        ),
        ("args.env in ['prod', 'staging']", {"args": {"env": "dev"}}, False),
        ("has(args.limit) && args.limit > 100", {"args": {"limit": 500}}, True),
        ("has(args.limit) && args.limit > 100", {"args": {}}, False),
        (
            "size(args.items) > 2 || args.command.endsWith('--force')",
            {"args": {"items": [1, 2, 3], "command": ""}},
            True,
        ),
        (
            "args.query.matches('(?i)^\\\\s*drop\\\\s+table')",
            {"args": {"query": " DROP table x"}},
            True,
        ),
        ("size(justification) > 0", {"justification": "hotfix"}, True),
        (
            "args.items.exists(x, x.startsWith('/etc'))",
            {"args": {"items": ["/tmp", "/etc/x"]}},
            True,
        ),
        ("args.n * 2 + 1", {"args": {"n": 4}}, 9),
        (
            "context.time.getHours() >= 9 && context.time.getDayOfWeek() < 6",
            {"context": {"time": datetime(2026, 1, 5, 10, tzinfo=UTC)}},
            True,
        ),
        (
            "context.time - timestamp('2026-01-01T00:00:00Z') > duration('1h')",
            {"context": {"time": datetime(2026, 1, 1, 12, tzinfo=UTC)}},
            True,
        ),
        ("false && args.missing", {"args": {}}, False),
        ("args.missing || true", {"args": {}}, True),
        ("principal.labels.team == 'a'", {"principal": {"labels": {"team": "a"}}}, True),
        ("'team' in principal.labels", {"principal": {"labels": {"team": "a"}}}, True),
    ],
)
def test_typical_policy_expressions_run_on_rust(
    source: str, activation: dict[str, Any], expected: Any
) -> None:
    assert same(rust_only(source, activation), expected)


def test_a_missing_key_is_cel_pythons_error_message() -> None:
    program = RS.compile("args.command.contains('a') && args.other")

    with pytest.raises(CelEvaluationError) as caught:
        program.evaluate({"args": {}})

    assert caught.value.message == "no such key: 'command'"


def test_a_bad_pattern_at_run_time_is_an_error_and_callbacks_log_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    program = RS.compile("args.s.matches(args.p) || int(args.s) > 1")

    with pytest.raises(CelEvaluationError):
        program.evaluate({"args": {"s": "x", "p": "("}})
    assert program.evaluate({"args": {"s": "x", "p": "x"}}) is True
    # (cel-python's own RE2 call may report the bad pattern on stderr; the library's warning
    # about a failing Python callback must not appear)
    assert "Python function" not in capfd.readouterr().err


# -- compile errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "args.command.contains(",
        "args.x = 1",
        "a b",
        "args.x == 'abc",
        "   ",
        "arg.command == 'ls'",
        "args.s.lowerAscii() == 'a'",
        "args.s.matches('(')",
        "(" * 60 + "true" + ")" * 60,
    ],
)
def test_compile_errors_are_cel_pythons(source: str) -> None:
    with pytest.raises(CelCompileError) as expected:
        PY.compile(source)
    with pytest.raises(CelCompileError) as actual:
        RS.compile(source)

    assert (actual.value.message, actual.value.column, actual.value.line) == (
        expected.value.message,
        expected.value.column,
        expected.value.line,
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [("type(args.n) == int", True), ("args.n + 0 == int(1u)", True), ("{args.k: 1}.x", 1)],
)
def test_expressions_outside_the_translation_are_evaluated_by_cel_python(
    source: str, expected: Any
) -> None:
    program = RS.compile(source)

    assert not program.native
    assert program.evaluate({"args": {"n": 1, "k": "x"}}) == expected


# -- activations ----------------------------------------------------------------------------


def test_values_cel_cannot_represent_fail_in_prepare_like_cel_python() -> None:
    for activation in ({"args": {"x": {1, 2}}}, {"args": {"x": 2**70}}, {"args": {"b": b"x"}}):
        with pytest.raises(CelEvaluationError, match="not representable"):
            PY.prepare(activation)
        with pytest.raises(CelEvaluationError, match="not representable"):
            RS.prepare(activation)


@pytest.mark.parametrize(
    "activation",
    [
        {"args": {"m": {1: "a"}, "s": "a"}},  # a non-string key
        {"args": {"t": datetime(2026, 1, 1, 12), "s": "a"}},  # a naive datetime
        {
            "args": {"s": "a"},
            "context": {"time": datetime(2026, 1, 1, tzinfo=ZoneInfo("Asia/Tokyo"))},
        },
    ],
)
def test_unusual_activations_give_cel_pythons_answers(activation: dict[str, Any]) -> None:
    for source in (
        "args.s == 'a'",
        "size(args.m) == 1",
        "args.t.getHours()",
        "string(context.time)",
    ):
        assert_agree(source, activation)


def test_a_prepared_activation_is_reused_across_programs() -> None:
    prepared = RS.prepare({"args": {"n": 2, "s": "x"}})

    assert RS.prepare(prepared) is prepared
    assert RS.compile("args.n == 2").evaluate(prepared) is True
    assert RS.compile("args.n + 1").evaluate(prepared) == 3
    assert RS.compile("args.s + args.s").evaluate(prepared) == "xx"
    assert not prepared.used_cel_python


# -- a differential battery -----------------------------------------------------------------

BATTERY = """i == d|i != d|i < d|d > i|1 == 'a'|i == n|n == i|s == n|null == null|[1] == [1.0]
1 in [1.0]|{1: 'a'}[1.0]|i + d|b == 1|l == [1, 2]|m == {'a': 1}|'a' in m|1 in m|i in l|s in ls
size(s)|s.size()|size(u)|size(n)|size(l)|size(m)|u.matches('\\\\d')|u.matches('^\\\\w')
u.matches('\\\\s')|matches(s, 'l+')|s.matches('(')|s.matches(s)|-i|-d|-mi|-(-i)|5 % i|i / 0
d / 0.0|d / z|z / z|-d / 0.0|int(d)|string(d)|string(i)|string(t)|string(td)|string(s)
string(b)|int(s)|double(s)|timestamp(s)|duration(s)|t.getHours()|t.getDayOfWeek()
t.getHours('America/New_York')|t.getDate('+05:30')|td.getHours()|td.getMinutes()
td.getMilliseconds()|t - t|t + td|t - td|td + td|t < t|t == t|(s + 'b').contains('b')
s.contains('l')|l.contains(1)|m.contains('a')|s.startsWith('h')|l.exists(x, x > 0)
l.all(x, x > 1)|l.map(x, x * 2)|l.filter(x, x > 1)|m.map(k, k)|m.filter(k, true)
m.exists(k, k == 'a')|m.all(k, k == 'a')|ls.exists_one(x, x == 'a')|l[0]|l[-1]|l[true]|m['a']
m.a|has(m.a)|has(m.zz)|has(s.f)|has(l.f)|has(n.f)|m.zz.y|has(m.zz.y)|s[0]|i && true
true && i|b && false|false || b|!b|!i|b ? i : d|n ? 1 : 2|i + 1 == 2|(i + 1) == 2.0
(d + 0.0) == 1|1 == (d + 0.0)|(d + 1.0) / 0|(d + 1.0) / 0.0|d * 2.0 < 3|3 < d * 2.0
[d + 0.5] == [1.5]|('a' + s).size()|s + s|b'a' + b'b'|l + l|l + [s]|ls + ['x']|dyn(i) == 1.0
i == dyn(1)|{'a': s}.a.contains('h')|[s][0].contains('h')|[s + 'x'][0].contains('h')
ls.exists(x, x.contains('a'))|(ls + [s + 'x']).exists(x, x.contains('x'))|{'a': 1, 'a': 2}
{'a': 1, 1: 2}|i in [1, 2, 3]|s in ['a', 'héllo']|d in [1.0]|n in [null]|b in [true]|i in []
t in [t]|'x' in {'x': 1}|s > 'a'|b < true|b'a' < b'b'|n < n|td < duration('1h')
t > timestamp('2026-01-01T00:00:00Z')|timestamp('2026-01-01T00:00:00+05:30').getHours()
string(timestamp('2026-01-01T00:00:00+05:30'))|duration('1ns')|duration('90m') + duration('30m')
timestamp('2026-01-01T00:00:00+05:30') == timestamp('2025-12-31T18:30:00Z')|int('0x10')
int(' 42')|double('1e3')|double('inf')|string(1.0/3.0)|bool('true')|bool(s)|bytes(s)
string(b'\\xff')|9223372036854775807 + i|i * i|mi / -1|mi % -1|-9223372036854775808|i - 1 < i
'abc'.matches('b')|u == s|u + s == s + u|size(u + s)|i > 0 ? s : l|[i, s][1]|[i, d].map(x, x)
m.exists(x, x > 0)|l.exists(x, x == 'a')|l.all(x, x == 'a')|[1, 'a'].exists_one(x, x > 0)
[0, 1].all(x, x == 0 ? false : 5)|l.exists(x, m[x])|{'k': [s]}.k[0].contains('é')
[[1], [2]].map(x, x[0])|-(d + 0.5)|(s + s).startsWith(s)|size(b'ab' + b'c')""".replace("\n", "|")
ACTIVATIONS = [
    {
        "i": 1, "d": 1.0, "s": "héllo", "n": None, "l": [1, 2], "m": {"a": 1, "1": 2}, "b": True,
        "u": "٣ é", "z": 0.0, "t": datetime(2026, 1, 4, 23, 30, tzinfo=UTC),
        "td": timedelta(hours=-25, minutes=3), "ls": ["a", "b"], "mi": -(2**63),
    },
    {
        "i": "x", "d": 2, "s": 5, "n": "n", "l": {"a": 1}, "m": [1], "b": 0, "u": None,
        "z": -0.0, "t": datetime(2026, 1, 4, 23, 30, tzinfo=ZoneInfo("America/New_York")),
        "td": 3, "ls": ["a", 1], "mi": 5.5,
    },
    {
        "i": 2**63 - 1, "d": math.nan, "s": "", "n": [None], "l": [], "m": {}, "b": False,
        "u": "\u00a0x", "z": 1e308,
        "t": datetime(2026, 1, 4, 2, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        "td": timedelta(microseconds=1500), "ls": [], "mi": -(2**63) + 1,
    },
]  # fmt: skip


@pytest.mark.parametrize("source", BATTERY.split("|"))
def test_the_engines_agree_on_the_battery(source: str) -> None:
    for activation in ACTIVATIONS:
        assert_agree(source, activation, any_names=True)


# -- property: random expressions over random activations ----------------------------------

_LITERALS = [
    "0", "1", "-1", "2", "9223372036854775807", "-9223372036854775808", "1.0", "0.0", "-2.5",
    "1e300", "'a'", "''", "'héllo'", "'٣'", "'ab'", "b'a'", "true", "false", "null", "[]",
    "[1, 2]", "['a', 'b']", "{}", "{'a': 1}", "duration('1h')",
    "timestamp('2026-01-01T00:00:00Z')", "timestamp('2026-01-01T00:00:00+05:30')",
]  # fmt: skip
_PATHS = [
    "args.a", "args.b", "args.s", "args.l", "args.m", "args.m.a", "args.missing", "args",
    "principal.role", "principal.labels", "context.time", "justification", "tool.name",
]  # fmt: skip
_PATTERNS = ["'a'", "'^h'", "'\\\\d'", "'(?i)A'", "'\\\\bx\\\\b'", "'('", "args.s"]
_BINARY = ["==", "!=", "<", "<=", ">", ">=", "in", "+", "-", "*", "/", "%", "&&", "||"]


def _expressions(variables: list[str]) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(_LITERALS + variables)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        body = _expressions([*variables, "x"]) if "x" not in variables else inner
        return st.one_of(
            st.tuples(inner, st.sampled_from(_BINARY), inner).map(
                lambda t: f"({t[0]}) {t[1]} ({t[2]})"
            ),
            st.tuples(st.sampled_from(["!", "-"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]}) ? ({t[1]}) : ({t[2]})"),
            inner.map(lambda e: f"size({e})"),
            st.tuples(inner, st.sampled_from(["contains", "startsWith", "endsWith"]), inner).map(
                lambda t: f"({t[0]}).{t[1]}({t[2]})"
            ),
            st.tuples(inner, st.sampled_from(_PATTERNS)).map(lambda t: f"({t[0]}).matches({t[1]})"),
            st.tuples(
                st.sampled_from(
                    ["int", "string", "double", "bool", "dyn", "timestamp", "duration"]
                ),
                inner,
            ).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(
                inner, st.sampled_from(["exists", "all", "exists_one", "map", "filter"]), body
            ).map(lambda t: f"({t[0]}).{t[1]}(x, {t[2]})"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]})[{t[1]}]"),
            st.tuples(inner, st.sampled_from(["getHours", "getDayOfWeek", "getMinutes"])).map(
                lambda t: f"({t[0]}).{t[1]}()"
            ),
            st.sampled_from(["has(args.a)", "has(args.m.a)", "has(principal.labels.team)"]),
            st.tuples(inner, inner).map(lambda t: f"[{t[0]}, {t[1]}]"),
            inner.map(lambda e: f"{{'k': {e}}}.k"),
        )

    return st.recursive(leaves, extend, max_leaves=6)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, -1, 2, 2**63 - 1, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 1.5]),
    st.text(alphabet="ahé٣ \u00a0x(", max_size=4),
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-8)), ZoneInfo("Asia/Tokyo")]),
    ),
    st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=3)),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "team", "é"]), inner, max_size=3)
    ),
    max_leaves=5,
)
_ACTIVATIONS = st.fixed_dictionaries(
    {},
    optional={
        "args": st.dictionaries(
            st.sampled_from(["a", "b", "s", "l", "m", "n"]), _VALUES, max_size=5
        ),
        "principal": st.fixed_dictionaries(
            {"role": _SCALARS, "labels": st.dictionaries(st.sampled_from(["team", "a"]), _SCALARS)}
        ),
        "context": st.fixed_dictionaries({"time": _SCALARS}),
        "justification": _SCALARS,
        "tool": st.fixed_dictionaries({"name": st.text(max_size=3)}),
    },
)


@settings(max_examples=examples(250), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=_expressions(_PATHS), activation=_ACTIVATIONS)
def test_the_engines_agree_on_random_expressions(source: str, activation: dict[str, Any]) -> None:
    assert_agree(source, activation)


# Well-typed expressions over well-typed activations, so values (not only errors) compare.
_TYPED_LEAVES = {
    "int": ["0", "1", "-3", "7", "9223372036854775807", "args.n", "args.l[0]", "size(args.ls)"],
    "double": ["0.0", "1.5", "-2.0", "args.d", "1e308"],
    "string": ["''", "'a'", "'é'", "'ab'", "args.s", "principal.role", "args.ls[0]"],
    "bool": ["true", "false", "args.b", "has(args.s)", "has(args.zz)"],
    "list": ["args.l", "[]", "[1, 2]", "args.ls"],
}


@functools.cache
def _typed(kind: str, depth: int, x: str | None = None) -> st.SearchStrategy[str]:
    """Expressions of one CEL type (``x``: the kind of a comprehension variable in scope)."""
    leaves = _TYPED_LEAVES[kind] + (["x"] if x == kind else [])
    if depth == 0:
        return st.sampled_from(leaves)

    def sub(k: str) -> st.SearchStrategy[str]:
        return _typed(k, depth - 1, x)

    def binary(k: str, ops: list[str]) -> st.SearchStrategy[str]:
        return st.tuples(sub(k), st.sampled_from(ops), sub(k)).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        )

    ternary = st.tuples(sub("bool"), sub(kind), sub(kind)).map(
        lambda t: f"({t[0]} ? {t[1]} : {t[2]})"
    )
    options: list[st.SearchStrategy[str]] = [st.sampled_from(leaves), ternary]
    if kind == "int":
        options += [
            binary("int", ["+", "-", "*", "/", "%"]),
            sub("int").map(lambda e: f"-({e})"),
            sub("string").map(lambda e: f"size({e})"),
            sub("list").map(lambda e: f"{e}.size()"),
            st.sampled_from(
                ["context.time.getHours()", "context.time.getDayOfWeek()", "int(args.d)"]
            ),
        ]
    elif kind == "double":
        options += [
            binary("double", ["+", "-", "*", "/"]),
            sub("int").map(lambda e: f"double({e})"),
        ]
    elif kind == "string":
        options += [binary("string", ["+"]), sub("int").map(lambda e: f"string({e})")]
    elif kind == "bool":
        options += [
            binary("int", ["==", "!=", "<", ">="]),
            binary("double", ["==", "<", ">"]),
            binary("string", ["==", "!=", "<"]),
            binary("bool", ["&&", "||", "=="]),
            sub("bool").map(lambda e: f"!{e}"),
            st.tuples(
                sub("string"),
                st.sampled_from(["contains", "startsWith", "endsWith"]),
                sub("string"),
            ).map(lambda t: f"{t[0]}.{t[1]}({t[2]})"),
            st.tuples(sub("string"), st.sampled_from(_PATTERNS[:-2])).map(
                lambda t: f"{t[0]}.matches({t[1]})"
            ),
            sub("int").map(lambda e: f"{e} in args.l"),
            sub("string").map(lambda e: f"{e} in ['a', 'é', '']"),
            sub("string").map(lambda e: f"{e} in args.m"),
            st.sampled_from(["context.time > timestamp('2026-01-01T00:00:00Z')", "args.b == null"]),
            st.tuples(
                st.sampled_from(["exists", "all", "exists_one"]), _typed("bool", depth - 1, "int")
            ).map(lambda t: f"args.l.{t[0]}(x, {t[1]})"),
        ]
    elif kind == "list":
        options += [
            binary("list", ["+"]),
            _typed("int", depth - 1, "int").map(lambda e: f"args.l.map(x, {e})"),
            _typed("bool", depth - 1, "int").map(lambda e: f"args.l.filter(x, {e})"),
        ]
    return st.one_of(*options)


_TEXT = st.text(alphabet="aé٣ b", max_size=3)
_TYPED_ACTIVATIONS = st.fixed_dictionaries(
    {
        "args": st.fixed_dictionaries(
            {
                "n": st.integers(min_value=-5, max_value=5)
                | st.sampled_from([2**63 - 1, -(2**63)]),
                "d": st.floats(allow_nan=False, width=32) | st.sampled_from([0.0, -0.0, 1.5]),
                "s": _TEXT,
                "b": st.booleans(),
                "l": st.lists(st.integers(min_value=-3, max_value=3), max_size=3),
                "ls": st.lists(_TEXT, max_size=3),
                "m": st.dictionaries(_TEXT, st.integers(min_value=0, max_value=3), max_size=3),
            }
        ),
        "principal": st.fixed_dictionaries({"role": _TEXT}),
        "context": st.fixed_dictionaries(
            {
                "time": st.datetimes(
                    min_value=datetime(2025, 1, 1),
                    max_value=datetime(2027, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-8))]),
                )
            }
        ),
    }
)


@settings(max_examples=examples(250), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(["bool", "int", "double", "string", "list"]).flatmap(
        lambda k: _typed(k, 3)
    ),
    activation=_TYPED_ACTIVATIONS,
)
def test_the_engines_agree_on_random_well_typed_expressions(
    source: str, activation: dict[str, Any]
) -> None:
    assert_agree(source, activation)


# -- whole policies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted(p for p in POLICIES.glob("*.yaml") if not p.name.endswith(".cases.yaml")),
    ids=lambda p: p.stem,
)
def test_shipped_policies_decide_alike_and_run_on_rust(path: Path) -> None:
    policy = load_policy_file(path, engine=RustCelEngine())
    baseline = load_policy_file(path)
    cases = load_cases_file(path.with_name(f"{path.stem}.cases.yaml"))

    assert run_cases(policy, cases).passed
    for case in cases:
        assert policy.decide(case.to_call()) == baseline.decide(case.to_call())
    programs = [
        rule.program
        for tool in policy.document.tools
        # where the entry is indexed: a built-in's under server "preloop" (decision 0089)
        for rule in policy.lookup(*index_key(tool)).rules  # type: ignore[union-attr]
        if rule.program is not None
    ]
    assert programs
    assert all(program.native for program in programs)


def test_the_benchmark_policy_decides_alike() -> None:
    text = generate_policy(40, rules_per_tool=5, seed=2)
    fast = load_policy(text, engine=engine_named("cel-rust"))
    slow = load_policy(text, engine=engine_named("cel-python"))

    for index in range(40):
        call = bench_call(index)
        assert fast.decide(call) == slow.decide(call)


# -- selection and packaging ----------------------------------------------------------------


def test_the_engine_is_registered_and_selectable_by_name() -> None:
    assert {"cel-python", "cel-rust"} <= set(ENGINES)
    assert engine_named("cel-rust").name == "cel-rust"
    assert engine_named(" cel-python ").name == "cel-python"


def test_an_unknown_engine_name_lists_the_available_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown CEL engine 'cel-go'; available: auto, cel-python, cel-rust"
    ):
        engine_named("cel-go")


def test_importing_the_engine_does_not_import_the_librarys_command_line() -> None:
    code = (
        "import sys, hub.policy.cel_rust; heavy = ('typer', 'rich', 'prompt_toolkit', 'click'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == ""
    assert cel_rust.library_version()
