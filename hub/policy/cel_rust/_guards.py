"""The translation's vocabulary: translated nodes, the Rust variables a program reads, the
types on which both interpreters agree, and the guards that make the Rust program fail
wherever its answer could differ from cel-python's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from hub.policy.cel_rust._values import _MISSING


class _Unsupported(Exception):
    """The translation does not cover this expression; cel-python evaluates it."""


@dataclass(frozen=True, slots=True)
class _Node:
    """A translated subexpression. ``kind`` is the CEL type of its value whenever the Rust
    program produces one (``None``: not known); ``celtype``: cel-python's value is one of
    cel-python's own types (not a plain ``str``, ``float`` ... from its ``+``); ``deep``: so are
    the value and every value inside it."""

    src: str
    kind: str | None = None
    celtype: bool = True
    deep: bool = True
    elements: str | None = None  # a list's element kind, if all share one ("": empty list)
    value: Any = _MISSING  # a constant's value


@dataclass(frozen=True, slots=True)
class _Need:
    """A Rust variable a program reads: a whole policy variable, one field of one, or whether
    a field is present (``has``)."""

    name: str
    variable: str
    key: str
    mode: str  # "whole", "field" or "has"

    def resolve(self, values: Mapping[str, Any]) -> Any:
        root = values.get(self.variable, _MISSING)
        if self.mode == "whole":
            return root
        if type(root) is not dict:
            return _MISSING  # Rust fails on the missing variable; cel-python answers
        if self.mode == "has":
            return self.key in root
        return root.get(self.key, _MISSING)


_BAIL_SRC = "_pl_bail()"  # an undefined function: calling it fails the Rust program
_INT_MIN_SRC = "(-9223372036854775807 - 1)"
_TYPE_IDENTS = frozenset({"bool", "int", "double", "string", "bytes", "null_type", "list", "map"})
_EQ_SAFE = frozenset(
    {"bool", "int", "double", "string", "bytes", "null_type", "timestamp", "duration"}
)
_ORD_SAFE = _EQ_SAFE - {"null_type"}
_ARITH_SAFE = {
    "+": frozenset({"int", "double", "string", "bytes", "list"}),
    "-": frozenset({"int", "double", "timestamp"}),
    "*": frozenset({"int", "double"}),
    "/": frozenset({"int", "double"}),
    "%": frozenset({"int"}),
}
_DUPLICATE_LIMIT = 240  # longest operand a guard may repeat
_SOURCE_LIMIT = 20_000


def _with_elements(node: _Node, kinds: list[str | None]) -> _Node:
    """``node`` (a list) knowing its elements' kind, if they share one cel-python compares
    like Rust (see ``in``)."""
    shared = set(kinds)
    if not shared:
        return replace(node, elements="")
    (kind,) = shared if len(shared) == 1 else (None,)
    return replace(node, elements=kind) if kind in _EQ_SAFE else node


class _GuardBuilder:
    """The translator's helpers: nodes within the source limit, the Rust variables and
    callbacks a program needs, and guards (conditions under which Rust gives cel-python's
    answer; otherwise the program fails)."""

    _needs: dict[str, _Need]
    _callbacks: set[str]

    def _node(
        self,
        src: str,
        kind: str | None = None,
        *,
        celtype: bool = True,
        deep: bool = True,
    ) -> _Node:
        if len(src) > _SOURCE_LIMIT:
            raise _Unsupported("translation too long")
        return _Node(src, kind, celtype, deep and celtype)

    def _bail(self, kind: str | None) -> _Node:
        # Never produces a value, so any ``kind`` holds; the natural one avoids more guards.
        return _Node(_BAIL_SRC, kind)

    def _callback(self, name: str, args: list[_Node], kind: str | None) -> _Node:
        self._callbacks.add(name)
        joined = ", ".join(arg.src for arg in args)
        return self._node(f"{name}({joined})", kind)

    def _need(self, variable: str, key: str, mode: str) -> str:
        if mode == "whole":
            name = variable
        else:
            prefix = "_pl_h" if mode == "has" else "_pl_f"
            name = f"{prefix}{len(variable)}_{variable}_{key}"
        self._needs.setdefault(name, _Need(name, variable, key, mode))
        return name

    def _guard(self, condition: str, native: str) -> str:
        return f"(({condition}) ? ({native}) : {_BAIL_SRC})"

    @staticmethod
    def _repeatable(node: _Node) -> bool:
        return len(node.src) <= _DUPLICATE_LIMIT

    def _type_test(self, node: _Node, kind: str, model: _Node) -> str | None:
        """A Rust condition: ``node``'s value has type ``kind`` (``model`` is a node of that
        kind, for types without a name in Rust)."""
        if not self._repeatable(node):
            return None
        if kind in _TYPE_IDENTS:
            return f"type({node.src}) == {kind}"
        if not self._repeatable(model):
            return None
        return f"type({node.src}) == type({model.src})"

    def _same_type(self, left: _Node, right: _Node, safe: frozenset[str]) -> str | None:
        """A condition under which both operands have one type of ``safe``: ``""`` when that
        is known, ``None`` when it cannot hold (or would cost too much to check)."""
        if left.kind is not None and right.kind is not None:
            return "" if left.kind == right.kind and left.kind in safe else None
        if left.kind is not None or right.kind is not None:
            known, other = (left, right) if left.kind is not None else (right, left)
            if known.kind not in safe:
                return None
            return self._type_test(other, known.kind or "", known)
        if not (self._repeatable(left) and self._repeatable(right)):
            return None
        names = ", ".join(sorted(safe & _TYPE_IDENTS))
        return f"type({left.src}) == type({right.src}) && type({left.src}) in [{names}]"
