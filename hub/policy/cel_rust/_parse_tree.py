"""Reading cel-python's parse trees (lark): operators, free variables, constants, and CEL
source both interpreters read."""

from __future__ import annotations

from typing import Any

import lark
from celpy.evaluation import base_functions

from hub.policy._celcheck import _MACROS, _TYPE_NAMES
from hub.policy.cel_rust._guards import _TYPE_IDENTS, _Unsupported

_RELATIONS = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
}
_ARITHMETIC = {
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
}
_WRAPPERS = frozenset(
    {
        "expr",
        "conditionalor",
        "conditionaland",
        "relation",
        "addition",
        "multiplication",
        "unary",
        "member",
        "primary",
    }
)
_COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})
# Names that cannot be Rust variables or comprehension variables here: the translation's own
# names, CEL type names (the guards use them) and function names.
_NOT_VARIABLES = _TYPE_NAMES | _TYPE_IDENTS | _MACROS | frozenset(base_functions)


def _token(value: Any) -> str:
    return str(value.value) if isinstance(value, lark.Token) else ""


def _unwrap(tree: lark.Tree[Any]) -> lark.Tree[Any]:
    while (
        tree.data in _WRAPPERS
        and len(tree.children) == 1
        and isinstance(tree.children[0], lark.Tree)
    ):
        tree = tree.children[0]
    return tree


def _arguments(tree: lark.Tree[Any]) -> list[lark.Tree[Any]]:
    for child in tree.children:
        if isinstance(child, lark.Tree) and child.data == "exprlist":
            return [c for c in child.children if isinstance(c, lark.Tree)]
    return []


def _bare_ident(tree: lark.Tree[Any]) -> str | None:
    inner = _unwrap(tree)
    return _token(inner.children[0]) if inner.data == "ident" else None


def _usable_name(name: str) -> bool:
    return not name.startswith("_pl") and name not in _NOT_VARIABLES


def _whole_variables(tree: lark.Tree[Any]) -> frozenset[str]:
    """Free variables used other than as ``v.field`` (those are handed to Rust whole)."""
    whole: set[str] = set()

    def walk(node: lark.Tree[Any], bound: frozenset[str]) -> None:
        if node.data == "member_dot" and _bare_ident(node.children[0]) is not None:
            return  # v.field (a field of a policy variable, or of a comprehension variable)
        if node.data == "ident":
            name = _token(node.children[0])
            if name not in bound:
                whole.add(name)
            return
        if node.data == "member_dot_arg" and _token(node.children[1]) in _COMPREHENSIONS:
            args = _arguments(node)
            walk(node.children[0], bound)
            variable = _bare_ident(args[0]) if args else None
            inner = bound | {variable} if variable else bound
            for arg in args[1:]:
                walk(arg, inner)
            return
        for child in node.children:
            if isinstance(child, lark.Tree):
                walk(child, bound)

    walk(tree, frozenset())
    return frozenset(whole)


def _reads_nothing(tree: lark.Tree[Any]) -> bool:
    """Whether the expression is a constant (it names no variable)."""
    return not any(
        node.data in ("ident", "dot_ident", "dot_ident_arg", "member_object")
        for node in tree.iter_subtrees()
    )


def _unparse(tree: lark.Tree[Any]) -> str:
    """CEL source for a parse tree, readable by both interpreters (used for constants)."""
    tree = _unwrap(tree)
    kind, children = tree.data, tree.children
    if kind == "literal":
        return _token(children[0])
    if kind == "expr":
        a, b, c = (_unparse(child) for child in children)
        return f"(({a}) ? ({b}) : ({c}))"
    if kind in ("conditionalor", "conditionaland"):
        op = "||" if kind == "conditionalor" else "&&"
        return f"(({_unparse(children[0])}) {op} ({_unparse(children[1])}))"
    if kind in ("relation", "addition", "multiplication"):
        operator_tree = children[0]
        op = {**_RELATIONS, **_ARITHMETIC}[operator_tree.data]
        return f"(({_unparse(operator_tree.children[0])}) {op} ({_unparse(children[1])}))"
    if kind == "unary":
        op = "!" if children[0].data == "unary_not" else "-"
        return f"({op}({_unparse(children[1])}))"
    if kind == "member_dot":
        return f"({_unparse(children[0])}).{_token(children[1])}"
    if kind == "member_dot_arg":
        args = ", ".join(_unparse(arg) for arg in _arguments(tree))
        return f"({_unparse(children[0])}).{_token(children[1])}({args})"
    if kind == "member_index":
        return f"({_unparse(children[0])})[{_unparse(children[1])}]"
    if kind == "ident_arg":
        args = ", ".join(_unparse(arg) for arg in _arguments(tree))
        return f"{_token(children[0])}({args})"
    if kind == "ident":
        return _token(children[0])
    if kind == "paren_expr":
        return f"({_unparse(children[0])})"
    if kind == "list_lit":
        items = list(children[0].children) if children else []
        return "[" + ", ".join(_unparse(item) for item in items) + "]"
    if kind == "map_lit":
        items = list(children[0].children) if children else []
        pairs = zip(items[0::2], items[1::2], strict=True)
        return "{" + ", ".join(f"{_unparse(k)}: {_unparse(v)}" for k, v in pairs) + "}"
    raise _Unsupported(kind)
