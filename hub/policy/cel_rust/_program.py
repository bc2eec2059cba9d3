"""Running translated programs: one call's activation, the compiled program (with its
cel-python fallback) and the engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from celpy import celtypes

from hub.policy.cel_python import POLICY_VARIABLES, CelPythonEngine, CelPythonProgram, _to_python
from hub.policy.cel_rust._guards import _Need, _Node, _with_elements
from hub.policy.cel_rust._library import _lib
from hub.policy.cel_rust._translate import _Translation, _Translator
from hub.policy.cel_rust._values import (
    _BAIL,
    _CELTYPES,
    _MISSING,
    _NOT_PLAIN,
    _deep_celtype,
    _from_rust,
    _kind_of,
    _plain,
    _same,
)

_EMPTY_CONTEXT: Any = _lib.Context()


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
    def tree(self) -> Any:
        """cel-python's checked parse tree of the expression."""
        return self._fallback.tree

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
    """cel-rust (``common-expression-language``) with cel-python's semantics; see the package
    documentation (:mod:`hub.policy.cel_rust`). ``variables`` as for
    :class:`~hub.policy.cel_python.CelPythonEngine`."""

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
