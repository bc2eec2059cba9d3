"""cel-python's parse tree translated into the source of a Rust CEL program, with a guard on
every operator whose answer could differ (see :mod:`hub.policy.cel_rust`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import lark

from hub.policy.cel_rust._callbacks import _CALLBACKS, _CONVERSIONS, _GETTERS, _STRING_TESTS, _regex
from hub.policy.cel_rust._guards import (
    _ARITH_SAFE,
    _BAIL_SRC,
    _EQ_SAFE,
    _INT_MIN_SRC,
    _ORD_SAFE,
    _TYPE_IDENTS,
    _GuardBuilder,
    _Need,
    _Node,
    _Unsupported,
    _with_elements,
)
from hub.policy.cel_rust._parse_tree import (
    _ARITHMETIC,
    _COMPREHENSIONS,
    _RELATIONS,
    _arguments,
    _bare_ident,
    _reads_nothing,
    _token,
    _unparse,
    _unwrap,
    _usable_name,
    _whole_variables,
)


@dataclass(frozen=True, slots=True)
class _Translation:
    source: str
    needs: tuple[_Need, ...]
    callbacks: tuple[tuple[str, Callable[..., Any]], ...]


class _Translator(_GuardBuilder):
    """cel-python's parse tree → Rust CEL source that fails wherever its answer could differ."""

    def __init__(self, tree: lark.Tree[Any], constant: Callable[[str], _Node | None]) -> None:
        self._tree = tree
        self._constant = constant
        self._whole = _whole_variables(tree)
        self._needs: dict[str, _Need] = {}
        self._callbacks: set[str] = set()

    def translate(self) -> _Translation:
        node = self._emit(self._tree, {})
        return _Translation(
            source=node.src,
            needs=tuple(self._needs.values()),
            callbacks=tuple(
                (name, _CALLBACKS[name])
                for name in sorted(self._callbacks)
                if f"{name}(" in node.src  # not folded away into a constant
            ),
        )

    # -- helpers ---------------------------------------------------------------------------

    def _flattened(self, tree: lark.Tree[Any], bound: Mapping[str, bool]) -> str | None:
        """The policy variable ``tree`` names, if its fields can be handed to Rust one by one."""
        name = _bare_ident(tree)
        if name is None or name in bound or name in self._whole or not _usable_name(name):
            return None
        return name

    # -- dispatch --------------------------------------------------------------------------

    def _emit(self, tree: lark.Tree[Any], bound: Mapping[str, bool]) -> _Node:
        tree = _unwrap(tree)
        node = self._emit_tree(tree, bound)
        if tree.data not in ("literal", "paren_expr") and _reads_nothing(tree):
            folded = self._constant(_unparse(tree))
            if folded is not None:
                return folded
        return node

    def _emit_tree(self, tree: lark.Tree[Any], bound: Mapping[str, bool]) -> _Node:
        kind, children = tree.data, tree.children
        if kind == "literal":
            return self._literal(children[0])
        if kind == "expr":
            cond, then, other = (self._emit(child, bound) for child in children)
            return self._node(
                f"(({cond.src}) ? ({then.src}) : ({other.src}))",
                then.kind if then.kind == other.kind else None,
                celtype=then.celtype and other.celtype,
                deep=then.deep and other.deep,
            )
        if kind in ("conditionalor", "conditionaland"):
            left, right = (self._emit(child, bound) for child in children)
            op = "||" if kind == "conditionalor" else "&&"
            return self._node(f"(({left.src}) {op} ({right.src}))", "bool")
        if kind == "relation":
            left = self._emit(children[0].children[0], bound)
            right = self._emit(children[1], bound)
            return self._relation(_RELATIONS[children[0].data], left, right)
        if kind in ("addition", "multiplication"):
            left = self._emit(children[0].children[0], bound)
            right = self._emit(children[1], bound)
            return self._arithmetic(_ARITHMETIC[children[0].data], left, right)
        if kind == "unary":
            operand = self._emit(children[1], bound)
            if children[0].data == "unary_not":
                return self._node(f"(!({operand.src}))", "bool")
            return self._negate(operand)
        if kind == "member_dot":
            return self._select(children[0], _token(children[1]), bound)
        if kind == "member_dot_arg":
            return self._method(tree, bound)
        if kind == "member_index":
            target = self._emit(children[0], bound)
            index = self._emit(children[1], bound)
            return self._node(
                f"({target.src})[{index.src}]",
                celtype=target.deep,
                deep=target.deep,
            )
        if kind == "ident_arg":
            return self._function(tree, bound)
        if kind == "ident":
            return self._ident(_token(children[0]), bound)
        if kind == "paren_expr":
            inner = self._emit(children[0], bound)
            return replace(inner, src=f"({inner.src})")
        if kind == "list_lit":
            items = [self._emit(item, bound) for item in (children[0].children if children else [])]
            node = self._node(
                "[" + ", ".join(item.src for item in items) + "]",
                "list",
                deep=all(item.deep for item in items),
            )
            return _with_elements(node, [item.kind for item in items])
        if kind == "map_lit":
            return self._map_literal(children, bound)
        raise _Unsupported(kind)  # dot_ident (.name), member_object (Message{...})

    # -- leaves ----------------------------------------------------------------------------

    def _literal(self, token: Any) -> _Node:
        if not isinstance(token, lark.Token) or token.type == "UINT_LIT":
            raise _Unsupported("uint")
        node = self._constant(str(token.value))
        if node is None:
            raise _Unsupported(f"literal {token.value}")
        return node

    def _ident(self, name: str, bound: Mapping[str, bool]) -> _Node:
        if name in bound:
            return _Node(name, celtype=bound[name], deep=bound[name])
        if not _usable_name(name):
            raise _Unsupported(name)
        return _Node(self._need(name, "", "whole"))

    def _select(self, target: lark.Tree[Any], field: str, bound: Mapping[str, bool]) -> _Node:
        variable = self._flattened(target, bound)
        if variable is not None:
            return _Node(self._need(variable, field, "field"))
        node = self._emit(target, bound)
        return self._node(f"({node.src}).{field}", celtype=node.deep, deep=node.deep)

    def _map_literal(self, children: list[Any], bound: Mapping[str, bool]) -> _Node:
        items = list(children[0].children) if children else []
        pairs: list[str] = []
        keys: set[str] = set()
        deep = True
        for key_tree, value_tree in zip(items[0::2], items[1::2], strict=True):
            key = self._emit(key_tree, bound)
            value = self._emit(value_tree, bound)
            inner = _unwrap(key_tree)
            # Every map Rust sees must have string keys (``in`` relies on it), each once
            # (cel-python rejects duplicates, Rust keeps the last).
            if inner.data != "literal" or key.kind != "string" or type(key.value) is not str:
                raise _Unsupported("map key")
            if key.value in keys:
                raise _Unsupported("duplicate map key")
            keys.add(key.value)
            deep = deep and value.deep
            pairs.append(f"{key.src}: {value.src}")
        return self._node("{" + ", ".join(pairs) + "}", "map", deep=deep)

    # -- operators -------------------------------------------------------------------------

    def _relation(self, op: str, left: _Node, right: _Node) -> _Node:
        if op == "in":
            return self._in(left, right)
        safe = _EQ_SAFE if op in ("==", "!=") else _ORD_SAFE
        condition = self._same_type(left, right, safe)
        if condition is None:
            return self._bail("bool")
        native = f"({left.src}) {op} ({right.src})"
        src = native if not condition else self._guard(condition, native)
        return self._node(f"({src})", "bool")

    def _in(self, item: _Node, container: _Node) -> _Node:
        native = f"({item.src}) in ({container.src})"
        if container.kind == "map" or container.kind is None:
            # Every map here has string keys: a string's membership is a key lookup in both.
            tests = []
            if item.kind is None:
                tests.append(self._type_test(item, "string", item))
            elif item.kind != "string":
                return self._bail("bool")
            if container.kind is None:
                tests.append(self._type_test(container, "map", container))
            if any(test is None for test in tests):
                return self._bail("bool")
            src = self._guard(" && ".join(t for t in tests if t), native) if tests else native
            return self._node(f"({src})", "bool")
        # A list: cel-python compares the item with each element (and fails on a type
        # mismatch); Rust agrees when all elements have the item's type, as in the usual
        # ``x in ['a', 'b']``.
        elements = container.elements
        if container.kind != "list" or elements is None:
            return self._bail("bool")
        if elements == "" or item.kind == elements:
            return self._node(f"({native})", "bool")
        if item.kind is not None or elements not in _TYPE_IDENTS:
            return self._bail("bool")
        test = self._type_test(item, elements, item)
        if test is None:
            return self._bail("bool")
        return self._node(f"({self._guard(test, native)})", "bool")

    def _arithmetic(self, op: str, left: _Node, right: _Node) -> _Node:
        safe = _ARITH_SAFE[op]
        condition = self._same_type(left, right, safe)
        if condition is None:
            return self._bail(None)
        kind = left.kind or right.kind
        if op == "/" and kind != "int":  # cel-python: x / 0.0 is +inf (even 0.0 / 0.0)
            if not self._repeatable(right):
                return self._bail(kind)
            nonzero = f"({right.src}) != 0.0"
            if kind is None:
                nonzero = f"(type({left.src}) == int || {nonzero})"
            condition = f"{condition} && {nonzero}" if condition else nonzero
        native = f"({left.src}) {op} ({right.src})"
        src = native if not condition else self._guard(condition, native)
        result = "duration" if kind == "timestamp" else kind
        # cel-python's int and division results are its own types; its double +, -, * and
        # its string, bytes and list + give plain Python values.
        celtype = result in ("int", "duration") or op in ("/", "%")
        return self._node(
            f"({src})",
            result,
            celtype=celtype,
            deep=left.deep and right.deep if result in (None, "list") else celtype,
        )

    def _negate(self, operand: _Node) -> _Node:
        src = operand.src
        if operand.kind == "double":
            return self._node(f"(-({src}))", "double", celtype=operand.celtype)
        if operand.kind not in ("int", None) or not self._repeatable(operand):
            return self._bail(operand.kind)
        # Rust wraps -(-2^63) around; cel-python reports an overflow.
        not_min = f"({src}) != {_INT_MIN_SRC}"
        if operand.kind == "int":
            guarded = self._guard(not_min, f"-({src})")
        else:
            guarded = (
                f"(type({src}) == double ? -({src}) : "
                f"{self._guard(f'type({src}) == int && {not_min}', f'-({src})')})"
            )
        return self._node(f"({guarded})", operand.kind, celtype=operand.celtype)

    # -- calls -----------------------------------------------------------------------------

    def _size(self, value: _Node) -> _Node:
        if value.kind == "string":
            return self._callback("_pl_size", [value], "int")
        if value.kind in ("list", "map", "bytes"):
            return self._node(f"size({value.src})", "int")
        if value.kind is not None or not self._repeatable(value):
            return self._bail("int")  # cel-python: size(null) is 0, Rust fails: cel-python runs
        self._callbacks.add("_pl_size")
        src = f"(type({value.src}) == string ? _pl_size({value.src}) : size({value.src}))"
        return self._node(src, "int")

    def _method(self, tree: lark.Tree[Any], bound: Mapping[str, bool]) -> _Node:
        method = _token(tree.children[1])
        args = _arguments(tree)
        if method in _COMPREHENSIONS:
            return self._comprehension(tree.children[0], method, args, bound)
        target = self._emit(tree.children[0], bound)
        values = [self._emit(arg, bound) for arg in args]
        if method == "size" and not values:
            return self._size(target)
        if method == "matches" and len(values) == 1:
            if type(values[0].value) is str:
                _regex(values[0].value)  # compile a literal pattern once, at load
            return self._callback("_pl_re", [target, values[0]], "bool")
        if method in _STRING_TESTS and len(values) == 1:
            if method == "contains" and not target.celtype:
                return self._bail("bool")  # a plain str from cel-python's +: it has no contains
            return self._node(f"({target.src}).{method}({values[0].src})", "bool")
        if method in _GETTERS and len(values) <= 1:
            if not target.celtype:
                return self._bail("int")
            if not values:  # Rust's getters read UTC, and every timestamp Rust sees is UTC
                return self._node(f"({target.src}).{method}()", "int")
            return self._callback(f"_pl_fn_{method}", [target, values[0]], "int")
        raise _Unsupported(method)

    def _comprehension(
        self,
        target_tree: lark.Tree[Any],
        macro: str,
        args: list[lark.Tree[Any]],
        bound: Mapping[str, bool],
    ) -> _Node:
        if len(args) != 2:
            raise _Unsupported(f"{macro} with {len(args)} arguments")
        variable = _bare_ident(args[0])
        if variable is None or not _usable_name(variable):
            raise _Unsupported("comprehension variable")
        target = self._emit(target_tree, bound)
        body = self._emit(args[1], {**bound, variable: target.deep})
        receiver = target.src
        if macro in ("map", "filter") and target.kind != "list":
            # Rust iterates a map in hash order, cel-python in insertion order.
            test = self._type_test(target, "map", target)
            if test is None:
                return self._bail("list")
            receiver = f"({test} ? {_BAIL_SRC} : ({receiver}))"
        src = f"({receiver}).{macro}({variable}, {body.src})"
        if macro in ("map", "filter"):
            deep = body.deep if macro == "map" else target.deep
            return self._node(src, "list", deep=deep)
        return self._node(src, "bool")

    def _function(self, tree: lark.Tree[Any], bound: Mapping[str, bool]) -> _Node:
        name = _token(tree.children[0])
        args = _arguments(tree)
        if name == "has" and len(args) == 1:
            return self._has(args[0], bound)
        values = [self._emit(arg, bound) for arg in args]
        if name == "dyn" and len(values) == 1:
            return values[0]
        if name == "size" and len(values) == 1:
            return self._size(values[0])
        if name == "matches" and len(values) == 2:
            return self._callback("_pl_re", values, "bool")
        if name in _CONVERSIONS and len(values) == 1:
            return self._callback(f"_pl_fn_{name}", values, _CONVERSIONS[name])
        if (name in _STRING_TESTS and len(values) == 2) or (
            name in _GETTERS and len(values) in (1, 2)
        ):
            if not values[0].celtype:
                return self._bail("int" if name in _GETTERS else "bool")
            return self._callback(f"_pl_fn_{name}", values, "int" if name in _GETTERS else "bool")
        raise _Unsupported(name)

    def _has(self, arg: lark.Tree[Any], bound: Mapping[str, bool]) -> _Node:
        inner = _unwrap(arg)
        if inner.data != "member_dot":
            raise _Unsupported("has() of something other than a field")
        field = _token(inner.children[1])
        variable = self._flattened(inner.children[0], bound)
        if variable is not None:
            return _Node(self._need(variable, field, "has"), "bool")
        target = self._emit(inner.children[0], bound)
        return self._node(f"has(({target.src}).{field})", "bool")
