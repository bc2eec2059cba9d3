"""Cheap answers for simple rules, in Python, before the CEL engine is asked.

    quick_check(tree) -> QuickCheck | None          once per distinct expression, at load
    QuickCheck(activation) -> True | False | None   per call; None: ask the CEL engine

Most policy rules are a few comparisons of one argument with literals, joined by ``&&`` or
``||``: ``args.command.startsWith('ls')``, ``has(args.limit) && args.limit > 100``,
``principal.role == 'admin' && args.env in ['prod', 'staging']``. Handing such a rule to an
engine costs more than answering it: the Rust engine converts each string it reads (about a
microsecond each), cel-python interprets its parse tree (about 200 µs). A quick check answers
when the answer is certain and says ``None`` otherwise, and then the engine evaluates the rule
as before.

What is certain, exactly as cel-python (the reference engine) computes it:

- an *atom* on one field of ``args``, ``principal`` or ``tool`` whose value has the type the
  atom expects: ``has(v.f)`` (the variable is a map), ``v.f.contains/startsWith/endsWith/
  matches(string literal)`` and ``v.f == / != string literal`` and ``v.f in [string
  literals]`` (a string value), ``v.f <op> int literal`` (an int value, not a bool),
  ``size(v.f) <op> int literal`` (a string, in code points, or a list or a map). Any other
  value (missing key, other type) makes the atom unknown: the engine answers, with its errors;
- ``a && b && …``: ``False`` as soon as one atom is ``False`` (CEL's ``&&`` is commutative:
  ``false && error`` is ``false``, whichever side errs), ``True`` when all are ``True``;
- ``a || b || …``: ``True`` as soon as one atom is ``True``, ``False`` when all are ``False``.

Everything else (other shapes, nested mixes of ``&&`` and ``||``, macros, arithmetic) has no
quick check. The checks run on the call's activation *after* the engine has prepared it, so a
value the engine cannot represent still fails the call the way it did. The policy corpus and
the decision tests run with and without quick checks (``load_policy(..., prechecks=False)``).
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Mapping
from typing import Any

import celpy
import lark
import re2
from celpy import celtypes

from hub.policy.cel_python import _QUIET_RE2

__all__ = ["QuickCheck", "quick_check"]

QuickCheck = Callable[[Mapping[str, Any]], "bool | None"]
_Atom = Callable[[Mapping[str, Any]], "bool | None"]

_VARIABLES = frozenset({"args", "principal", "tool"})
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_MISSING: Any = object()
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "relation_eq": operator.eq,
    "relation_ne": operator.ne,
    "relation_lt": operator.lt,
    "relation_le": operator.le,
    "relation_gt": operator.gt,
    "relation_ge": operator.ge,
}
_STRING_METHODS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda value, literal: literal in value,
    "startsWith": str.startswith,
    "endsWith": str.endswith,
}
# Single-child wrappers of cel-python's grammar, from the top of an expression to a primary.
_WRAPPERS = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication"}
    | {"unary", "member", "primary"}
)
_literals = celpy.Environment()
_literals_lock = threading.Lock()  # policies load in threads; the parser holds its text


class _NoCheck(Exception):
    """Not a shape with a quick check."""


def quick_check(tree: lark.Tree[Any]) -> QuickCheck | None:
    """A quick check for the checked cel-python parse tree of an expression, or ``None``."""
    try:
        return _expression(tree)
    except _NoCheck:
        return None
    except Exception:  # an unexpected tree shape: no quick check, the engine answers
        return None


def _expression(tree: lark.Tree[Any]) -> QuickCheck:
    node = _only_child(tree, "expr")  # a ternary has three children: no quick check
    ors = _flatten(node, "conditionalor")
    if len(ors) > 1:
        return _joined([_atom(_only_child(item, "conditionaland")) for item in ors], decisive=True)
    ands = _flatten(ors[0], "conditionaland")
    if len(ands) > 1:
        return _joined([_atom(item) for item in ands], decisive=False)
    return _atom(ands[0])


def _only_child(node: Any, data: str) -> Any:
    if not isinstance(node, lark.Tree) or node.data != data or len(node.children) != 1:
        raise _NoCheck
    return node.children[0]


def _flatten(node: Any, data: str) -> list[Any]:
    """The operands of a left-nested chain of one binary operator (``a || b || c``)."""
    if not isinstance(node, lark.Tree) or node.data != data:
        raise _NoCheck
    if len(node.children) == 1:
        return [node.children[0]]
    if len(node.children) != 2:
        raise _NoCheck
    return [*_flatten(node.children[0], data), node.children[1]]


def _unwrap(node: Any) -> Any:
    """Down the single-child wrappers to the first node that does something."""
    while isinstance(node, lark.Tree) and node.data in _WRAPPERS and len(node.children) == 1:
        node = node.children[0]
    return node


def _joined(atoms: list[_Atom], *, decisive: bool) -> QuickCheck:
    """The atoms joined by ``&&`` (``decisive=False``: one false atom decides) or by ``||``
    (``decisive=True``: one true atom decides); ``None`` (not certain) when no atom decided
    and one of them could not tell."""

    def check(activation: Mapping[str, Any]) -> bool | None:
        certain = True
        for atom in atoms:
            value = atom(activation)
            if value is decisive:
                return decisive
            if value is None:
                certain = False
        return (not decisive) if certain else None

    return check


def _atom(relation: Any) -> _Atom:
    """One comparison (a ``relation`` node of the grammar)."""
    if not isinstance(relation, lark.Tree) or relation.data != "relation":
        raise _NoCheck
    if len(relation.children) == 2:
        operator_node, right = relation.children
        if isinstance(operator_node, lark.Tree) and len(operator_node.children) == 1:
            return _comparison(operator_node.data, operator_node.children[0], right)
        raise _NoCheck
    if len(relation.children) != 1:
        raise _NoCheck
    node = _unwrap(relation)
    if not isinstance(node, lark.Tree):
        raise _NoCheck
    if node.data == "ident_arg":  # has(v.f)
        name, *rest = node.children
        if str(name) != "has" or len(rest) != 1:
            raise _NoCheck
        variable, key = _field(_single_argument(rest[0]))
        return _has(variable, key)
    if node.data == "member_dot_arg":  # v.f.method('literal')
        target, method, arguments = node.children
        variable, key = _field(target)
        literal = _string(_single_argument(arguments))
        name = str(method)
        if name == "matches":
            return _matches(variable, key, literal)
        if name in _STRING_METHODS:
            return _string_method(variable, key, _STRING_METHODS[name], literal)
    raise _NoCheck


def _comparison(kind: str, left_relation: Any, right: Any) -> _Atom:
    left = _unwrap(left_relation)
    if kind == "relation_in":
        variable, key = _field(left)
        choices = _string_list(_unwrap(right))
        return _one_of(variable, key, choices)
    compare = _ORDER.get(kind)
    if compare is None:
        raise _NoCheck
    literal = _literal(_unwrap(right))
    if isinstance(left, lark.Tree) and left.data == "ident_arg":  # size(v.f) <op> int
        name, *rest = left.children
        if str(name) != "size" or len(rest) != 1 or type(literal) is not int:
            raise _NoCheck
        variable, key = _field(_single_argument(rest[0]))
        return _size(variable, key, compare, literal)
    variable, key = _field(left)
    if type(literal) is int:
        return _int_compare(variable, key, compare, literal)
    if type(literal) is str and kind in ("relation_eq", "relation_ne"):
        return _string_equal(variable, key, kind == "relation_eq", literal)
    raise _NoCheck


def _single_argument(exprlist: Any) -> Any:
    if not isinstance(exprlist, lark.Tree) or exprlist.data != "exprlist":
        raise _NoCheck
    if len(exprlist.children) != 1:
        raise _NoCheck
    return _unwrap(exprlist.children[0])


def _field(node: Any) -> tuple[str, str]:
    """``(variable, key)`` for ``variable.key`` with a policy variable we can read."""
    node = _unwrap(node)
    if not isinstance(node, lark.Tree) or node.data != "member_dot" or len(node.children) != 2:
        raise _NoCheck
    target, key = node.children
    target = _unwrap(target)
    if not isinstance(target, lark.Tree) or target.data != "ident" or len(target.children) != 1:
        raise _NoCheck
    variable = str(target.children[0])
    if variable not in _VARIABLES or not isinstance(key, lark.Token):
        raise _NoCheck
    return variable, str(key)


def _literal(node: Any) -> Any:
    """The value of a string or int literal, as cel-python reads it (escapes, raw strings)."""
    if not isinstance(node, lark.Tree) or node.data != "literal" or len(node.children) != 1:
        raise _NoCheck
    with _literals_lock:
        value = _literals.program(_literals.compile(str(node.children[0]))).evaluate({})
    if isinstance(value, celtypes.StringType):
        return str(value)
    if type(value) is celtypes.IntType and _INT_MIN <= int(value) <= _INT_MAX:
        return int(value)
    raise _NoCheck


def _string(node: Any) -> str:
    value = _literal(node)
    if type(value) is not str:
        raise _NoCheck
    return value


def _string_list(node: Any) -> frozenset[str]:
    if not isinstance(node, lark.Tree) or node.data != "list_lit":
        raise _NoCheck
    if not node.children:
        return frozenset()
    (exprlist,) = node.children
    if not isinstance(exprlist, lark.Tree) or exprlist.data != "exprlist":
        raise _NoCheck
    return frozenset(_string(_unwrap(item)) for item in exprlist.children)


def _value(activation: Mapping[str, Any], variable: str, key: str) -> Any:
    root = activation.get(variable)
    return root.get(key, _MISSING) if type(root) is dict else _MISSING


def _has(variable: str, key: str) -> _Atom:
    def atom(activation: Mapping[str, Any]) -> bool | None:
        root = activation.get(variable)
        return key in root if type(root) is dict else None

    return atom


def _string_method(
    variable: str, key: str, method: Callable[[str, str], bool], literal: str
) -> _Atom:
    def atom(activation: Mapping[str, Any]) -> bool | None:
        value = _value(activation, variable, key)
        return method(value, literal) if type(value) is str else None

    return atom


def _matches(variable: str, key: str, pattern: str) -> _Atom:
    try:
        compiled = re2.compile(pattern, _QUIET_RE2)
    except re2.error as exc:  # refused at load already; no quick check if not
        raise _NoCheck from exc

    def atom(activation: Mapping[str, Any]) -> bool | None:
        value = _value(activation, variable, key)
        return compiled.search(value) is not None if type(value) is str else None

    return atom


def _string_equal(variable: str, key: str, equal: bool, literal: str) -> _Atom:
    def atom(activation: Mapping[str, Any]) -> bool | None:
        value = _value(activation, variable, key)
        return (value == literal) is equal if type(value) is str else None

    return atom


def _one_of(variable: str, key: str, choices: frozenset[str]) -> _Atom:
    def atom(activation: Mapping[str, Any]) -> bool | None:
        value = _value(activation, variable, key)
        return value in choices if type(value) is str else None

    return atom


def _int_compare(
    variable: str, key: str, compare: Callable[[Any, Any], bool], literal: int
) -> _Atom:
    def atom(activation: Mapping[str, Any]) -> bool | None:
        value = _value(activation, variable, key)
        if type(value) is int and _INT_MIN <= value <= _INT_MAX:
            return compare(value, literal)
        return None

    return atom


def _size(variable: str, key: str, compare: Callable[[Any, Any], bool], literal: int) -> _Atom:
    def atom(activation: Mapping[str, Any]) -> bool | None:
        value = _value(activation, variable, key)
        kind = type(value)
        if kind is str or kind is list or kind is dict:
            return compare(len(value), literal)
        return None

    return atom
