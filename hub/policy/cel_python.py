"""The reference CEL engine (cel-python), and the interface every engine keeps.

    CelEngine.compile(source)        -> CelProgram        raises CelCompileError(message, column)
    CelEngine.prepare(values)        -> activation        converts Python values once per call
    CelProgram.evaluate(activation)  -> Python value      raises CelEvaluationError

:class:`CelPythonEngine` runs cel-python's *interpreted* runner (its compiled runner is faster
but mishandles ``has(x) ? … : …``). It is the reference the correctness corpus holds every
other engine to, and the fallback when cel-rust cannot run. :mod:`hub.policy.cel` registers
the engines and picks the default; the cel-rust engine (:mod:`hub.policy.cel_rust`) builds on
this module, which imports no other engine (decision 0081: no import cycles).
"""

from __future__ import annotations

import datetime
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import celpy
import lark
import lark.exceptions
import re2  # cel-python's regex engine (a dependency of cel-python): matches() runs on it
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, CELUnsupportedError, Evaluator

from hub.errors import PreloopError, ValidationError
from hub.policy._celcheck import check_tree
from hub.policy._celtypes import TypeChecker

__all__ = [
    "POLICY_VARIABLES",
    "CelCompileError",
    "CelEngine",
    "CelEvaluationError",
    "CelProgram",
    "CelPythonEngine",
    "CelPythonProgram",
]

POLICY_VARIABLES: frozenset[str] = frozenset(
    {"args", "tool", "principal", "context", "justification"}
)

# cel-python raises the interpreter's recursion limit to 2500 when its first Environment is
# made; do it once, here, rather than at some later moment in the middle of a request.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 2500))
_QUIET_RE2 = re2.Options()
_QUIET_RE2.log_errors = False  # a rejected pattern is our error message, not stderr noise


class CelCompileError(ValidationError):
    """An expression that cannot be compiled. ``column`` and ``line`` are 1-based, within
    the expression text (``None`` when unknown). Loading a policy turns it into one
    :class:`~hub.errors.Problem` of a ``PolicyError``."""

    title = "Invalid CEL expression"

    def __init__(self, message: str, column: int | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.line = line


class CelEvaluationError(PreloopError):
    """An expression that could not be evaluated for this input (missing key, bad types…).
    The decision engine turns it into a refusal or an approval, never a forwarded call."""

    title = "CEL evaluation error"

    def __init__(self, message: str) -> None:
        super().__init__(message)


@runtime_checkable
class CelProgram(Protocol):
    source: str

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        """The value of the expression for ``activation`` (plain or prepared)."""
        ...


@runtime_checkable
class CelEngine(Protocol):
    name: str

    def compile(self, source: str) -> CelProgram: ...

    def prepare(self, activation: Mapping[str, Any]) -> Mapping[str, Any]:
        """Convert plain values once, so several programs can share one activation."""
        ...


class _Prepared(Mapping[str, Any]):
    """An activation already converted to cel-python values."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class CelPythonProgram:
    """A compiled cel-python program. ``tree`` is its checked parse tree (other engines
    translate it, so they accept exactly what this engine accepts)."""

    __slots__ = ("_engine", "_runner", "source", "tree")

    def __init__(
        self, engine: CelPythonEngine, source: str, runner: celpy.Runner, tree: lark.Tree[Any]
    ) -> None:
        self._engine = engine
        self._runner = runner
        self.source = source
        self.tree = tree

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        return _to_python(self.evaluate_raw(activation))

    def evaluate_raw(self, activation: Mapping[str, Any]) -> Any:
        """The value as cel-python computed it (its own types, e.g. ``StringType``, or a plain
        Python ``str`` where cel-python's arithmetic produced one)."""
        prepared = (
            activation if isinstance(activation, _Prepared) else self._engine.prepare(activation)
        )
        try:
            value = self._runner.evaluate(dict(prepared.items()))
        except CELEvalError as exc:
            raise CelEvaluationError(_eval_message(exc)) from exc
        except CELUnsupportedError as exc:
            raise CelEvaluationError(f"unsupported: {exc}") from exc
        except (RecursionError, MemoryError) as exc:
            raise CelEvaluationError("expression too complex to evaluate") from exc
        except Exception as exc:  # cel-python lets some Python errors escape (re.error, ...)
            raise CelEvaluationError(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(value, CELEvalError):
            raise CelEvaluationError(_eval_message(value))
        return value


class _Runner(celpy.InterpretedRunner):
    """cel-python's interpreted runner, with its base activation (annotations and functions)
    built once instead of on every evaluation; each evaluation still clones it before binding
    the call's values, so sharing it is safe. About twice as fast."""

    def __init__(
        self, environment: celpy.Environment, ast: lark.Tree[Any], functions: dict[str, Any]
    ) -> None:
        super().__init__(environment, ast, functions)
        self._base = self.new_activation()

    def evaluate(self, context: Any) -> Any:
        return Evaluator(ast=self.ast, activation=self._base).evaluate(context)


class CelPythonEngine:
    """cel-python (``celpy``), interpreted runner.

    ``variables``: the names an expression may refer to; a reference to any other name, or a
    call to a function cel-python does not have, is a compile error rather than an error on
    every call. ``None`` skips that check.
    """

    name = "cel-python"

    def __init__(self, variables: frozenset[str] | None = POLICY_VARIABLES) -> None:
        self._env = celpy.Environment()
        self._variables = variables
        self._types = TypeChecker(self._env)
        self._lock = threading.RLock()

    def compile(self, source: str) -> CelPythonProgram:
        if not source.strip():
            raise CelCompileError("the expression is empty", column=1, line=1)
        # Policies load in worker threads, and cel-python's parser keeps the text it is
        # parsing on itself (one per environment): one compilation at a time per engine.
        with self._lock:
            return self._compile(source)

    def _compile(self, source: str) -> CelPythonProgram:
        try:
            ast = self._env.compile(source)
            problem = check_tree(ast, self._variables, self.regex_error) or self._types.check(ast)
        except CELParseError as exc:
            raise CelCompileError(
                f"CEL syntax error at column {exc.column}: {_parse_message(exc)}",
                column=exc.column,
                line=exc.line,
            ) from exc
        except RecursionError as exc:
            raise CelCompileError("expression nested too deeply") from exc
        if problem is not None:
            raise CelCompileError(problem.message, column=problem.column, line=problem.line)
        return CelPythonProgram(self, source, _Runner(self._env, ast, _OVERRIDES), ast)

    def prepare(self, activation: Mapping[str, Any]) -> Mapping[str, Any]:
        if isinstance(activation, _Prepared):
            return activation
        try:
            return _Prepared({k: json_to_cel(v) for k, v in activation.items()})
        except (ValueError, TypeError) as exc:
            raise CelEvaluationError(f"value not representable in CEL: {exc}") from exc

    def regex_error(self, literal: str) -> str | None:
        """Why RE2, the engine cel-python's ``matches()`` uses, rejects the pattern in the
        string literal ``literal`` (CEL source, quotes included); ``None`` if it is fine."""
        try:
            pattern = self._env.program(self._env.compile(literal)).evaluate({})
        except Exception:  # not a constant we can read here: checked when evaluated
            return None
        if not isinstance(pattern, celtypes.StringType):
            return None
        try:
            re2.compile(str(pattern), _QUIET_RE2)
        except re2.error as exc:
            detail = exc.args[0] if exc.args else "invalid pattern"
            return detail.decode() if isinstance(detail, bytes) else str(detail)
        return None


def _logical_and(x: Any, y: Any) -> Any:
    """CEL ``&&`` that keeps the first error's message when neither side is a bool (cel-python
    reports "no matching overload" there, hiding e.g. which key was missing)."""
    if isinstance(x, CELEvalError) and not isinstance(y, celtypes.BoolType):
        return x
    if isinstance(y, CELEvalError) and not isinstance(x, celtypes.BoolType):
        return y
    return celtypes.logical_and(x, y)


def _logical_or(x: Any, y: Any) -> Any:
    """CEL ``||``, keeping the first error's message like :func:`_logical_and`."""
    if isinstance(x, CELEvalError) and not isinstance(y, celtypes.BoolType):
        return x
    if isinstance(y, CELEvalError) and not isinstance(x, celtypes.BoolType):
        return y
    return celtypes.logical_or(x, y)


_OVERRIDES: dict[str, Any] = {"_&&_": _logical_and, "_||_": _logical_or}


def _parse_message(exc: CELParseError) -> str:
    """A one-line reason from the lark error cel-python wraps (its text is a caret drawing)."""
    original = exc.__context__
    if isinstance(original, lark.exceptions.UnexpectedToken):
        if original.token.type == "$END":
            return "unexpected end of expression"
        return f"unexpected '{original.token}'"
    if isinstance(original, lark.exceptions.UnexpectedCharacters):
        if original.char in "\"'":
            return f"unexpected {original.char} (unterminated string?)"
        return f"unexpected character '{original.char}'"
    return "invalid expression"


def _eval_message(exc: CELEvalError) -> str:
    raw = str(exc.args[0]) if exc.args else str(exc)
    raw = raw.split(" (in activation", 1)[0]
    raw = raw.replace("no such member in mapping", "no such key")
    if raw.startswith("found no matching overload"):
        raw = "no matching overload (wrong types for this operator or function)"
    if raw == "return error for overflow" and len(exc.args) > 2 and exc.args[2]:
        raw = f"conversion failed: {exc.args[2][0]}"
    return raw[:300]


def _to_python(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, (celtypes.IntType, celtypes.UintType)):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.BytesType):
        return bytes(value)
    if isinstance(value, celtypes.TimestampType):
        plain = datetime.datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=value.tzinfo or datetime.UTC,
        )
        return plain.astimezone(datetime.UTC)
    if isinstance(value, celtypes.DurationType):
        return datetime.timedelta(
            days=value.days, seconds=value.seconds, microseconds=value.microseconds
        )
    if isinstance(value, list):  # ListType, or the plain list cel-python's + returns
        return [_to_python(v) for v in value]
    if isinstance(value, dict):
        return {_to_python(k): _to_python(v) for k, v in value.items()}
    if isinstance(value, bool | int | float | str | bytes):
        return value
    return value
