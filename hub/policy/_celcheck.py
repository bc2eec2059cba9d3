"""Static checks of a parsed CEL expression that cel-python itself does not make.

cel-python accepts ``arg.command`` (a typo of ``args``) or ``s.lowerAscii()`` (a function it
lacks) and only fails when the rule runs, which for a policy means every call the rule sees
is denied. These checks move such mistakes to load time:

- every free identifier is a policy variable, a type name or a comprehension variable;
- every function and method exists in cel-python (or is a macro);
- a string literal given to ``matches()`` is a valid RE2 pattern;
- the tree is not nested deeper than cel-python can evaluate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lark
from celpy.evaluation import base_functions

_MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter", "dyn"})
_COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_TYPE_NAMES = frozenset(
    {"bool", "bytes", "double", "duration", "int", "list", "map", "null_type", "string"}
    | {"timestamp", "type", "uint", "google"}
)
_FUNCTIONS = frozenset(name for name in base_functions if name[:1].isalpha()) | _MACROS
# Parse trees deeper than this fail to evaluate within cel-python's recursion limit (about
# 50 nested parentheses); refuse them when the policy loads instead of denying every call.
_MAX_DEPTH = 400


@dataclass(frozen=True)
class TreeProblem:
    message: str
    column: int | None = None
    line: int | None = None


class _Found(Exception):
    def __init__(self, problem: TreeProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def check_tree(
    tree: lark.Tree[Any],
    variables: frozenset[str] | None,
    regex_error: Callable[[str], str | None],
) -> TreeProblem | None:
    """The first problem in ``tree``, or ``None``. ``variables`` ``None`` skips the name and
    function checks; ``regex_error`` says why a CEL string literal is not a valid pattern."""
    try:
        _Checker(variables, regex_error).check(tree)
    except _Found as found:
        return found.problem
    return None


class _Checker:
    """Static checks cel-python does not do: unknown names, unknown functions, bad regexes."""

    def __init__(
        self, variables: frozenset[str] | None, regex_error: Callable[[str], str | None]
    ) -> None:
        self._variables = variables
        self._regex_error = regex_error

    def check(self, tree: lark.Tree[Any]) -> None:
        self._walk(tree, frozenset(), 0)

    def _walk(self, node: lark.Tree[Any], bound: frozenset[str], depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            raise _Found(TreeProblem(f"expression nested too deeply (over {_MAX_DEPTH} levels)"))
        depth += 1
        kind = node.data
        if kind == "ident":
            self._check_name(node, bound)
            return
        if kind == "ident_arg":
            name = _token(node.children[0])
            self._check_function(name, node.children[0])
            args = _exprlist(node)
            if name == "matches" and len(args) == 2:
                self._check_regex(args[1])
            for arg in args:
                self._walk(arg, bound, depth)
            return
        if kind == "member_dot_arg":
            target, method = node.children[0], _token(node.children[1])
            self._check_function(method, node.children[1])
            args = _exprlist(node)
            if isinstance(target, lark.Tree):
                self._walk(target, bound, depth)
            if method in _COMPREHENSIONS and len(args) >= 2:
                variable = _ident_of(args[0])
                inner = bound | {variable} if variable else bound
                for arg in args[1:]:
                    self._walk(arg, inner, depth)
                return
            if method == "matches" and len(args) == 1:
                self._check_regex(args[0])
            for arg in args:
                self._walk(arg, bound, depth)
            return
        for child in node.children:
            if isinstance(child, lark.Tree):
                self._walk(child, bound, depth)

    def _check_name(self, node: lark.Tree[Any], bound: frozenset[str]) -> None:
        if self._variables is None:
            return
        name = _token(node.children[0])
        if name in bound or name in self._variables or name in _TYPE_NAMES:
            return
        token = node.children[0]
        column = token.column if isinstance(token, lark.Token) else None
        known = ", ".join(sorted(self._variables))
        close = [v for v in self._variables if _similar(v, name)]
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise _Found(
            TreeProblem(
                f"unknown variable '{name}' at column {column}{hint}; available: {known}",
                column=column,
                line=token.line if isinstance(token, lark.Token) else None,
            )
        )

    def _check_function(self, name: str, token: Any) -> None:
        if self._variables is None or name in _FUNCTIONS:
            return
        column = token.column if isinstance(token, lark.Token) else None
        raise _Found(
            TreeProblem(
                f"unknown function '{name}' at column {column}",
                column=column,
                line=token.line if isinstance(token, lark.Token) else None,
            )
        )

    def _check_regex(self, arg: lark.Tree[Any]) -> None:
        literal = _literal_token(arg)
        if literal is None:
            return
        error = self._regex_error(str(literal))
        if error is not None:
            raise _Found(
                TreeProblem(
                    f"invalid regular expression at column {literal.column}: {error}",
                    column=literal.column,
                    line=literal.line,
                )
            )


def _similar(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def _token(value: Any) -> str:
    if isinstance(value, lark.Token):
        return str(value.value)
    if isinstance(value, lark.Tree) and value.children:
        return _token(value.children[0])
    return ""


def _exprlist(node: lark.Tree[Any]) -> list[lark.Tree[Any]]:
    for child in node.children:
        if isinstance(child, lark.Tree) and child.data == "exprlist":
            return [c for c in child.children if isinstance(c, lark.Tree)]
    return []


def _single_path(node: lark.Tree[Any]) -> lark.Tree[Any]:
    """Descend through the one-child wrappers the grammar adds around a primary."""
    while len(node.children) == 1 and isinstance(node.children[0], lark.Tree):
        node = node.children[0]
    return node


def _ident_of(expr: lark.Tree[Any]) -> str | None:
    inner = _single_path(expr)
    if inner.data == "ident":
        return _token(inner)
    return None


def _literal_token(expr: lark.Tree[Any]) -> lark.Token | None:
    inner = _single_path(expr)
    if inner.data == "literal" and inner.children and isinstance(inner.children[0], lark.Token):
        return inner.children[0]
    return None
