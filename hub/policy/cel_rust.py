"""CEL on cel-rust: cel-python's answers, computed by a Rust interpreter.

``RustCelEngine`` (name ``cel-rust``) runs expressions on the Rust CEL interpreter of the PyPI
package ``common-expression-language`` (import name ``cel``; optional, extra ``fast``) and gives
the same value, or the same error, as :class:`~hub.policy.cel.CelPythonEngine`:

- ``compile`` goes through cel-python first, so both engines accept the same expressions and
  raise the same load-time errors (with columns). cel-python's parse tree is then translated
  into the source of a Rust program.
- The two interpreters disagree in places: cel-python refuses ``1 == 1.0``, ``1 == 'a'``,
  ``null == 1`` and ``1 < 1.5`` (Rust compares across types), counts ``size`` of a string in
  code points (Rust: bytes), runs ``matches`` on RE2 with ASCII ``\\d \\w \\s \\b`` (Rust:
  Unicode classes), makes ``x / 0.0`` infinite, rejects ``-(-2^63)`` (Rust wraps it), iterates
  maps in insertion order (Rust: hash order), returns plain Python strings from ``+`` (on which
  ``contains`` fails), and formats ``string(1.0)`` or ``string(timestamp)`` differently. The
  translation guards every operator whose answer could differ: when the operand types are not
  ones on which both agree, the Rust program stops with an error; ``matches``, ``size`` of a
  string and conversions (``string(x)``, ``int(x)``, ...) call back into Python.
- Whenever the Rust program stops with an error, cel-python evaluates the expression for that
  call, so every error (message included), and every value cel-python produces where Rust errs
  (``l[-1]``, ``size(null)``, ``has(s.f)`` on a string ...), comes from cel-python. A policy
  error denies the call: it is not on the fast path.
- Expressions the translation does not cover (``type(x)``, ``uint``, message construction,
  map literals with computed keys ...) and calls whose values are not plain JSON-like data
  (non-string map keys, naive datetimes ...) are evaluated by cel-python.

Per call, ``prepare`` checks the activation once; each program hands Rust only the values it
reads: ``args.path`` becomes a Rust variable of its own, converted once per call and shared by
the call's other rules (converting a Python string into a Rust value costs about a microsecond,
as much as evaluating a rule).
"""

from __future__ import annotations

import datetime
import importlib
import importlib.machinery
import importlib.util
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import lark
import re2
from celpy import celtypes
from celpy.evaluation import CELEvalError, base_functions

from hub.policy._celcheck import _MACROS, _TYPE_NAMES
from hub.policy.cel import (
    _QUIET_RE2,
    POLICY_VARIABLES,
    CelPythonEngine,
    CelPythonProgram,
    _to_python,
)

__all__ = ["RustCelEngine", "RustCelProgram", "library_version"]

_UTC = datetime.UTC
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_MAX_DURATION_SECONDS = 315_576_000_000  # cel-python's DurationType range


def _load_library() -> Any:
    """The ``cel`` extension module, loaded without the package's ``__init__``, which imports
    the package's command-line interface (typer, rich, prompt_toolkit: about half a second).
    Registered as ``cel.cel``, so a later ``import cel`` reuses it."""
    loaded = sys.modules.get("cel.cel")
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("cel")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the common-expression-language package is not installed")
    for folder in spec.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, "cel" + suffix)
            if not os.path.isfile(path):
                continue
            loader = importlib.machinery.ExtensionFileLoader("cel.cel", path)
            module_spec = importlib.util.spec_from_file_location("cel.cel", path, loader=loader)
            if module_spec is None:  # pragma: no cover - spec_from_file_location with a loader
                break
            module = importlib.util.module_from_spec(module_spec)
            loader.exec_module(module)
            sys.modules["cel.cel"] = module
            return module
    return importlib.import_module("cel")  # pragma: no cover - a layout we did not expect


def _self_test(lib: Any) -> None:
    """Refuse a library version whose behaviour the translation relies on has changed."""
    context = lib.Context()
    expected = {
        "false && _pl_bail()": False,
        "_pl_bail() || true": True,
        "type(1) == int && type('') == string && type([]) == list && type({}) == map": True,
        "[1, 2].exists(v, v == 2) && !['a'].all(v, v == 'b')": True,
    }
    for source, value in expected.items():
        if lib.compile(source).execute(context) is not value:
            raise ImportError(f"unexpected cel-rust behaviour for {source!r}")
    try:
        lib.compile("_pl_bail()").execute(context)
    except Exception:
        return
    raise ImportError("cel-rust does not fail on an undefined function")


try:
    _lib: Any = _load_library()
    _self_test(_lib)
except ImportError:
    raise
except Exception as exc:  # a broken install: the engine is simply not available
    raise ImportError(f"cel-rust is not usable: {exc}") from exc


def library_version() -> str:
    """The installed ``common-expression-language`` version."""
    from importlib.metadata import version

    return version("common-expression-language")


# -- values --------------------------------------------------------------------------------


class _Marker:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


# Returned by a Python callback to make the Rust program fail (Rust cannot convert it; a raised
# exception would work too, but the library logs those as warnings).
_BAIL: Any = _Marker("<bail>")
_NOT_PLAIN: Any = _Marker("<not plain>")
_MISSING: Any = _Marker("<missing>")


_SCALARS = frozenset({str, bool, float, type(None)})


def _plain(value: Any) -> Any:
    """``value`` as Rust should see it, or ``_NOT_PLAIN`` if Rust and cel-python could read it
    differently (only exact JSON-like types, string map keys, aware datetimes; datetimes are
    moved to UTC, which keeps the instant and is what cel-python's getters use). Returns the
    same object when nothing needs to change. Called once per decision: scalars are checked
    inline rather than by a call each."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else _NOT_PLAIN
    if kind is dict:
        copy: dict[str, Any] | None = None
        for key, item in value.items():
            if type(key) is not str:
                return _NOT_PLAIN
            item_kind = type(item)
            if item_kind in _SCALARS or (item_kind is int and _INT_MIN <= item <= _INT_MAX):
                continue
            converted = _plain(item)
            if converted is _NOT_PLAIN:
                return _NOT_PLAIN
            if converted is not item:
                copy = copy if copy is not None else dict(value)
                copy[key] = converted
        return copy if copy is not None else value
    if kind is list or kind is tuple:
        items: list[Any] | None = None
        for index, item in enumerate(value):
            item_kind = type(item)
            if item_kind in _SCALARS or (item_kind is int and _INT_MIN <= item <= _INT_MAX):
                continue
            converted = _plain(item)
            if converted is _NOT_PLAIN:
                return _NOT_PLAIN
            if converted is not item:
                items = items if items is not None else list(value)
                items[index] = converted
        return items if items is not None else value
    if kind is datetime.datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            return _NOT_PLAIN
        return value if value.tzinfo is _UTC else value.astimezone(_UTC)
    if kind is datetime.timedelta:
        return value if abs(value.total_seconds()) <= _MAX_DURATION_SECONDS else _NOT_PLAIN
    return _NOT_PLAIN


def _from_rust(value: Any) -> Any:
    """A Rust result as the plain Python value cel-python's engine returns, or ``_BAIL``."""
    kind = type(value)
    if kind is bool or kind is str or kind is float or value is None or kind is bytes:
        return value
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else _BAIL  # a uint cannot occur
    if kind is list:
        items = [_from_rust(item) for item in value]
        return _BAIL if any(item is _BAIL for item in items) else items
    if kind is dict:
        entries = {key: _from_rust(item) for key, item in value.items()}
        return _BAIL if any(item is _BAIL for item in entries.values()) else entries
    if kind is datetime.datetime:
        return value.astimezone(_UTC) if value.utcoffset() == datetime.timedelta(0) else _BAIL
    if kind is datetime.timedelta:
        return value
    return _BAIL


def _same(expected: Any, actual: Any) -> bool:
    """Whether a Rust value is exactly cel-python's (type, float sign and NaN, UTC offset)."""
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, float):
        if math.isnan(expected):
            return math.isnan(actual)
        return bool(expected == actual) and math.copysign(1, expected) == math.copysign(1, actual)
    if isinstance(expected, datetime.datetime):
        return bool(expected == actual) and actual.utcoffset() == datetime.timedelta(0)
    if isinstance(expected, list):
        return len(expected) == len(actual) and all(map(_same, expected, actual))
    if isinstance(expected, dict):
        return expected.keys() == actual.keys() and all(
            _same(expected[key], actual[key]) for key in expected
        )
    return bool(expected == actual)


_CELTYPES = (
    celtypes.BoolType,
    celtypes.IntType,
    celtypes.DoubleType,
    celtypes.StringType,
    celtypes.BytesType,
    celtypes.TimestampType,
    celtypes.DurationType,
)


def _deep_celtype(value: Any) -> bool:
    """Whether a cel-python value, and every value inside it, is one of cel-python's own types
    (cel-python's ``+`` returns plain ``str``/``float``/``bytes``/``list``, which behave
    differently: a plain ``str`` has no ``contains``)."""
    if value is None or isinstance(value, _CELTYPES):
        return True
    if isinstance(value, celtypes.ListType):
        return all(_deep_celtype(item) for item in value)
    if isinstance(value, celtypes.MapType):
        return all(_deep_celtype(item) for item in value.values())
    return False


def _with_elements(node: _Node, kinds: list[str | None]) -> _Node:
    """``node`` (a list) knowing its elements' kind, if they share one cel-python compares
    like Rust (see ``in``)."""
    shared = set(kinds)
    if not shared:
        return replace(node, elements="")
    (kind,) = shared if len(shared) == 1 else (None,)
    return replace(node, elements=kind) if kind in _EQ_SAFE else node


def _kind_of(value: Any) -> str | None:
    kind = type(value)
    return {
        bool: "bool",
        int: "int",
        float: "double",
        str: "string",
        bytes: "bytes",
        type(None): "null_type",
        list: "list",
        dict: "map",
        datetime.datetime: "timestamp",
        datetime.timedelta: "duration",
    }.get(kind)


# -- Python callbacks ----------------------------------------------------------------------

_PATTERNS: dict[str, Any] = {}
_PATTERN_CACHE_SIZE = 1024


def _regex(pattern: str) -> Any:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        if len(_PATTERNS) >= _PATTERN_CACHE_SIZE:
            _PATTERNS.clear()
        try:
            compiled = re2.compile(pattern, _QUIET_RE2)
        except re2.error:
            compiled = _BAIL
        _PATTERNS[pattern] = compiled
    return compiled


def _matches(text: Any, pattern: Any) -> Any:
    """``matches`` exactly as cel-python runs it (``re2.search``)."""
    if type(text) is not str or type(pattern) is not str:
        return _BAIL
    compiled = _regex(pattern)
    return _BAIL if compiled is _BAIL else compiled.search(text) is not None


def _string_size(value: Any) -> Any:
    """``size`` of a string in code points, as cel-python counts it."""
    return len(value) if type(value) is str else _BAIL


def _to_celpy(value: Any) -> Any:
    """A scalar Rust value as cel-python's own type (``_MISSING`` for anything else)."""
    kind = type(value)
    converter = {
        bool: celtypes.BoolType,
        int: celtypes.IntType,
        float: celtypes.DoubleType,
        str: celtypes.StringType,
        bytes: celtypes.BytesType,
        datetime.datetime: celtypes.TimestampType,
        datetime.timedelta: celtypes.DurationType,
    }.get(kind)
    if converter is not None:
        return converter(value)
    return None if value is None else _MISSING


# cel-python's string(t) and bytes(t) show the timestamp's own UTC offset, which the UTC copy
# Rust holds has lost: let cel-python evaluate those.
_OFFSET_SENSITIVE = frozenset({"string", "bytes"})


def _celpy_function(name: str) -> Callable[..., Any]:
    """A callback running cel-python's function ``name`` on scalar arguments."""
    function = base_functions[name]
    offset_sensitive = name in _OFFSET_SENSITIVE

    def call(*args: Any) -> Any:
        converted = []
        for arg in args:
            if offset_sensitive and type(arg) is datetime.datetime:
                return _BAIL
            value = _to_celpy(arg)
            if value is _MISSING:
                return _BAIL
            converted.append(value)
        try:
            result = function(*converted)
        except Exception:
            return _BAIL
        if isinstance(result, CELEvalError):
            return _BAIL
        plain = _to_python(result)
        return plain if _kind_of(plain) is not None and _from_rust(plain) is not _BAIL else _BAIL

    call.__name__ = f"celpy_{name}"
    return call


_GETTERS = frozenset(
    {
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getFullYear",
        "getHours",
        "getMilliseconds",
        "getMinutes",
        "getMonth",
        "getSeconds",
    }
)
# Conversion functions and the kind of value they return.
_CONVERSIONS = {
    "int": "int",
    "double": "double",
    "string": "string",
    "bytes": "bytes",
    "bool": "bool",
    "timestamp": "timestamp",
    "duration": "duration",
}
_STRING_TESTS = frozenset({"contains", "startsWith", "endsWith"})

_CALLBACKS: dict[str, Callable[..., Any]] = {
    "_pl_re": _matches,
    "_pl_size": _string_size,
    **{
        f"_pl_fn_{name}": _celpy_function(name)
        for name in (*_CONVERSIONS, *_STRING_TESTS, *_GETTERS)
    },
}


# -- translation ---------------------------------------------------------------------------


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
_DUPLICATE_LIMIT = 240  # longest operand a guard may repeat
_SOURCE_LIMIT = 20_000


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


@dataclass(frozen=True, slots=True)
class _Translation:
    source: str
    needs: tuple[_Need, ...]
    callbacks: tuple[tuple[str, Callable[..., Any]], ...]


class _Translator:
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

    def _flattened(self, tree: lark.Tree[Any], bound: Mapping[str, bool]) -> str | None:
        """The policy variable ``tree`` names, if its fields can be handed to Rust one by one."""
        name = _bare_ident(tree)
        if name is None or name in bound or name in self._whole or not _usable_name(name):
            return None
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


_EMPTY_CONTEXT: Any = _lib.Context()


# -- engine --------------------------------------------------------------------------------


class _RustActivation(Mapping[str, Any]):
    """One call's activation: the values as given, their Rust-ready copy (``None`` if Rust
    should not read them), the Rust context built as programs need its variables, and
    cel-python's conversion, made only if a program falls back to cel-python."""

    __slots__ = ("_celpy", "_context", "_engine", "_given", "_seen", "rust_values")

    def __init__(
        self,
        engine: CelPythonEngine,
        given: Mapping[str, Any],
        values: Mapping[str, Any] | None,
        celpy: Mapping[str, Any] | None = None,
    ) -> None:
        self._engine = engine
        self._given = given
        self.rust_values = values
        self._celpy = celpy
        self._context: Any = None
        self._seen: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        return self._given[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._given)

    def __len__(self) -> int:
        return len(self._given)

    @property
    def used_cel_python(self) -> bool:
        """Whether cel-python was needed for this call (a fallback, or unusual values)."""
        return self._celpy is not None

    def celpy(self) -> Mapping[str, Any]:
        if self._celpy is None:
            self._celpy = self._engine.prepare(self._given)
        return self._celpy

    def context(
        self, needs: tuple[_Need, ...], callbacks: tuple[tuple[str, Callable[..., Any]], ...]
    ) -> Any:
        context = self._context
        if context is None:
            context = self._context = _lib.Context()
        seen = self._seen
        batch: dict[str, Any] | None = None
        values = self.rust_values or {}
        for need in needs:
            if need.name not in seen:
                seen.add(need.name)
                value = need.resolve(values)
                if value is not _MISSING:
                    batch = batch if batch is not None else {}
                    batch[need.name] = value
        for name, function in callbacks:
            if name not in seen:
                seen.add(name)
                batch = batch if batch is not None else {}
                batch[name] = function
        if batch is not None:
            context.update(batch)
        return context


class RustCelProgram:
    """A compiled expression: its Rust program (``None`` when cel-python evaluates it) and
    the cel-python program that answers whenever Rust fails."""

    __slots__ = (
        "_callbacks",
        "_engine",
        "_fallback",
        "_needs",
        "_program",
        "rust_source",
        "source",
    )

    def __init__(
        self,
        engine: RustCelEngine,
        fallback: CelPythonProgram,
        translation: _Translation | None,
        program: Any,
    ) -> None:
        self._engine = engine
        self._fallback = fallback
        self._program = program
        self.source = fallback.source
        self.rust_source = translation.source if translation is not None else None
        self._needs = translation.needs if translation is not None else ()
        self._callbacks = translation.callbacks if translation is not None else ()

    @property
    def native(self) -> bool:
        """Whether Rust evaluates this expression (else cel-python always does)."""
        return self._program is not None

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        prepared = (
            activation
            if isinstance(activation, _RustActivation)
            else self._engine.prepare_activation(activation)
        )
        if self._program is not None and prepared.rust_values is not None:
            try:
                value = self._program.execute(prepared.context(self._needs, self._callbacks))
            except Exception:  # noqa: S110 - Rust failed: cel-python gives the answer below
                pass
            else:
                result = _from_rust(value)
                if result is not _BAIL:
                    return result
        return self._fallback.evaluate(prepared.celpy())


class RustCelEngine:
    """cel-rust (``common-expression-language``) with cel-python's semantics; see the module
    documentation. ``variables`` as for :class:`~hub.policy.cel.CelPythonEngine`."""

    name = "cel-rust"

    def __init__(self, variables: frozenset[str] | None = POLICY_VARIABLES) -> None:
        self._celpy = CelPythonEngine(variables)
        self._constant_nodes: dict[str, _Node | None] = {}

    def compile(self, source: str) -> RustCelProgram:
        fallback = self._celpy.compile(source)  # the same compile errors as cel-python
        translation: _Translation | None
        try:
            translation = _Translator(fallback.tree, self._constant).translate()
            program = _lib.compile(translation.source)
        except Exception:  # not covered (_Unsupported), or Rust refused the translation:
            translation, program = None, None  # cel-python evaluates it, always correct
        return RustCelProgram(self, fallback, translation, program)

    def prepare(self, activation: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.prepare_activation(activation)

    def prepare_activation(self, activation: Mapping[str, Any]) -> _RustActivation:
        if isinstance(activation, _RustActivation):
            return activation
        values = _plain(activation if type(activation) is dict else dict(activation))
        if values is _NOT_PLAIN:  # cel-python only (and its conversion errors, now)
            return _RustActivation(self._celpy, activation, None, self._celpy.prepare(activation))
        return _RustActivation(self._celpy, activation, values)

    def _constant(self, text: str) -> _Node | None:
        """A node for the constant expression ``text`` if both interpreters give it exactly
        the same value (checked once, here), else ``None``."""
        if text in self._constant_nodes:
            return self._constant_nodes[text]
        node: _Node | None = None
        try:
            raw = self._celpy.compile(text).evaluate_raw({})
            actual = _lib.compile(text).execute(_EMPTY_CONTEXT)
        except Exception:  # either fails: not a constant both agree on
            raw = actual = _MISSING
        if raw is not _MISSING and _same(_to_python(raw), actual):
            node = _Node(
                f"({text})",
                _kind_of(actual),
                celtype=raw is None
                or isinstance(raw, (*_CELTYPES, celtypes.ListType, celtypes.MapType)),
                deep=_deep_celtype(raw),
                value=actual,
            )
            if type(actual) is list:
                node = _with_elements(node, [_kind_of(item) for item in actual])
        self._constant_nodes[text] = node
        return node
