"""Type errors a CEL expression makes whatever the call: found when the policy loads.

cel-python checks types only when it evaluates, so ``args.message == 1 + 'a'`` compiles and
then fails on every call (the rule denies or asks for approval each time). This check asks
cel-python itself, the reference engine, so it never disagrees with what evaluation would do:

- an operator whose operands are all constant (no variable in them: ``1 + 'a'``,
  ``-'x'``, ``!1``, ``1 == 'a'``, ``'a' < 1.5``) is evaluated on their values; a type error
  (cel-python's "no matching overload") is reported;
- a binary operator with one constant operand and one that depends on the call
  (``'a' - args.x``) is tried with a value of every CEL type (and the constant itself) in
  place of the other operand; if none works, it is reported;
- the condition of ``c ? a : b``, when constant, must be a bool.

Anything else, and any error that is not a type error (overflow, division by zero), is left
to evaluation: an expression whose types depend on ``args`` is never refused.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.evaluation import CELEvalError, Evaluator

from hub.policy._celcheck import TreeProblem

_BINARY = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
}
_UNARY = {"unary_neg": "-", "unary_not": "!"}
_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (celtypes.BoolType, "bool"),  # before int: BoolType is an int
    (celtypes.UintType, "uint"),
    (celtypes.IntType, "int"),
    (celtypes.DoubleType, "double"),
    (celtypes.StringType, "string"),
    (celtypes.BytesType, "bytes"),
    (celtypes.ListType, "list"),
    (celtypes.MapType, "map"),
    (celtypes.TimestampType, "timestamp"),
    (celtypes.DurationType, "duration"),
    (type(None), "null"),
)
# One value of every CEL type, for the operand that depends on the call.
_SAMPLES: tuple[Any, ...] = (
    celtypes.IntType(1),
    celtypes.UintType(1),
    celtypes.DoubleType(1.5),
    celtypes.StringType("a"),
    celtypes.BytesType(b"a"),
    celtypes.BoolType(True),
    None,
    celtypes.ListType([]),
    celtypes.ListType([celtypes.IntType(1)]),
    celtypes.ListType([celtypes.StringType("a")]),
    celtypes.MapType({}),
    celtypes.MapType({celtypes.StringType("a"): celtypes.IntType(1)}),
    celtypes.TimestampType(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)),
    celtypes.DurationType(seconds=1),
)
_UNKNOWN = object()  # the value of a node that depends on the call (or failed otherwise)
_CONSTANT = object()  # a constant part cel-python evaluates only with its parent (ident_arg ...)
# The grammar's levels cel-python's evaluator can start from (the others it reads from their
# parent: a function call from its ``primary``, a list literal, a parenthesis ...).
_EVALUABLE = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication"}
    | {"unary", "member", "member_dot", "member_dot_arg", "member_index", "primary", "literal"}
)


class TypeChecker:
    """Checks parsed expressions against one cel-python environment (probe programs such as
    ``l - r`` are compiled once, on first use)."""

    def __init__(self, env: celpy.Environment) -> None:
        self._env = env
        self._base = env.program(env.compile("true")).new_activation()
        self._probes: dict[str, Any] = {}

    def check(self, tree: lark.Tree[Any]) -> TreeProblem | None:
        """The first type error in ``tree`` (innermost first), or ``None``."""
        try:
            _Walk(self).value(tree)
        except _TypeProblem as found:
            return found.problem
        return None

    def evaluate(self, tree: lark.Tree[Any]) -> Any:
        """The value of a constant subtree; a type error raises, any other error is unknown."""
        try:
            return Evaluator(ast=tree, activation=self._base).evaluate({})
        except CELEvalError as exc:
            return exc
        except Exception:  # cel-python lets some Python errors escape: left to evaluation
            return _UNKNOWN

    def probe(self, source: str, values: Mapping[str, Any]) -> Any:
        program = self._probes.get(source)
        if program is None:
            program = self._probes[source] = self._env.program(self._env.compile(source))
        try:
            return program.evaluate(dict(values))
        except CELEvalError as exc:
            return exc
        except Exception:  # not a type error we can name: evaluation decides
            return _UNKNOWN


class _TypeProblem(Exception):
    def __init__(self, problem: TreeProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _Walk:
    def __init__(self, checker: TypeChecker) -> None:
        self._checker = checker

    def value(self, node: lark.Tree[Any]) -> Any:
        """The node's constant value, or ``_UNKNOWN``; raises at the first type error."""
        if node.data == "ident":  # a variable: args, or a macro's (all, exists, map ...)
            return _UNKNOWN
        trees = [c for c in node.children if isinstance(c, lark.Tree)]
        values = [self.value(c) for c in trees]
        if len(node.children) == 1 and trees and values[0] is not _CONSTANT:
            return values[0]  # a wrapper of the grammar: its child's value
        operation = _is_operation(node) or _is_conditional(node)
        if any(v is _UNKNOWN for v in values):
            if operation:
                self._check_partly_known(node, values)
            return _UNKNOWN
        if node.data not in _EVALUABLE:
            return _CONSTANT
        value = self._checker.evaluate(node)
        if operation and _is_type_error(value):
            raise _TypeProblem(_constant_problem(node, values))
        return _UNKNOWN if isinstance(value, CELEvalError) else value

    def _check_partly_known(self, node: lark.Tree[Any], values: list[Any]) -> None:
        if _is_conditional(node) and values[0] is not _UNKNOWN:
            condition = values[0]
            if condition is not _CONSTANT and not isinstance(condition, celtypes.BoolType):
                raise _TypeProblem(
                    _problem(
                        node,
                        f"the condition before '?' must be a bool, not {_type_name(condition)}",
                    )
                )
            return
        operator = _binary_operator(node)
        if operator is None or len(values) != 2 or all(v is _UNKNOWN for v in values):
            return
        known_left = values[0] is not _UNKNOWN
        known = values[0] if known_left else values[1]
        if known is _CONSTANT or isinstance(known, CELEvalError):
            return
        for sample in (*_SAMPLES, known):
            pair = {"l": known, "r": sample} if known_left else {"l": sample, "r": known}
            if not _is_type_error(self._checker.probe(f"l {operator} r", pair)):
                return
        side = "left" if known_left else "right"
        raise _TypeProblem(
            _problem(
                node,
                f"'{operator}' cannot take {_article(_type_name(known))} on the {side}, "
                "whatever the other side is",
            )
        )


def _is_operation(node: lark.Tree[Any]) -> bool:
    return _binary_operator(node) is not None or _unary_operator(node) is not None


def _binary_operator(node: lark.Tree[Any]) -> str | None:
    if node.data in ("relation", "addition", "multiplication") and len(node.children) == 2:
        first = node.children[0]
        if isinstance(first, lark.Tree):
            return _BINARY.get(str(first.data))
    return None


def _unary_operator(node: lark.Tree[Any]) -> str | None:
    if node.data == "unary" and len(node.children) == 2:
        first = node.children[0]
        if isinstance(first, lark.Tree):
            return _UNARY.get(str(first.data))
    return None


def _is_conditional(node: lark.Tree[Any]) -> bool:
    return node.data == "expr" and len(node.children) == 3


def _is_type_error(value: Any) -> bool:
    return isinstance(value, CELEvalError) and len(value.args) > 1 and value.args[1] is TypeError


def _constant_problem(node: lark.Tree[Any], values: list[Any]) -> TreeProblem:
    binary, unary = _binary_operator(node), _unary_operator(node)
    if binary is not None and len(values) == 2:
        left, right = (_type_name(v) for v in values)
        return _problem(node, f"'{binary}' cannot be applied to {left} and {right}")
    if unary is not None and values:
        return _problem(node, f"'{unary}' cannot be applied to {_article(_type_name(values[-1]))}")
    return _problem(node, f"the condition before '?' must be a bool, not {_type_name(values[0])}")


def _problem(node: lark.Tree[Any], what: str) -> TreeProblem:
    column: int | None = getattr(node.meta, "column", None)  # where the operation starts
    line: int | None = getattr(node.meta, "line", None)
    return TreeProblem(
        f"type error at column {column}: {what} (it would fail on every call)",
        column=column,
        line=line,
    )


def _type_name(value: Any) -> str:
    for cls, name in _TYPE_NAMES:
        if isinstance(value, cls):
            return name
    return type(value).__name__


def _article(name: str) -> str:
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"
