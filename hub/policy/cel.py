"""CEL behind one small interface, so the engine can be swapped for a faster one.

    CelEngine.compile(source)        -> CelProgram        raises CelCompileError(message, column)
    CelEngine.prepare(values)        -> activation        converts Python values once per call
    CelProgram.evaluate(activation)  -> Python value      raises CelEvaluationError

Programs are compiled once, when a policy loads, and evaluated many times. Results come back
as plain Python values (bool, int, float, str, bytes, list, dict, datetime, timedelta, None)
so callers and the correctness corpus do not depend on one engine's types.

Two engines. ``cel-python`` (:class:`CelPythonEngine`, cel-python's *interpreted* runner; its
compiled runner is faster but mishandles ``has(x) ? … : …``) is the *reference*: every other
engine must give its answers on ``tests/unit/policy/cel_corpus.yaml`` (each case is run on
every engine and compared with cel-python's value or error) before it is registered in
:data:`ENGINES`. ``cel-rust`` (:mod:`hub.policy.cel_rust`, on the ``common-expression-language``
package, a main dependency) gives cel-python's answers about fifty times faster and is the
*default* (:func:`default_engine`); where its wheel cannot be installed or does not pass its
self-test, cel-python is the default and one warning says so (decision 0066).
:func:`engine_named` picks an engine by name (``auto``: the default).

The interface, its errors and the reference engine are in :mod:`hub.policy.cel_python` (and
re-exported here); cel-rust builds on that module, and this one registers both, so no module
imports one that imports it back (decision 0081).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from hub.policy.cel_python import (
    POLICY_VARIABLES,
    CelCompileError,
    CelEngine,
    CelEvaluationError,
    CelProgram,
    CelPythonEngine,
    CelPythonProgram,
)

__all__ = [
    "AUTO_ENGINE",
    "ENGINES",
    "FAST_ENGINE",
    "POLICY_VARIABLES",
    "REFERENCE_ENGINE",
    "CelCompileError",
    "CelEngine",
    "CelEvaluationError",
    "CelProgram",
    "CelPythonEngine",
    "CelPythonProgram",
    "default_engine",
    "engine_named",
]

log = logging.getLogger("preloop.policy")

REFERENCE_ENGINE = "cel-python"  # the engine the correctness corpus holds the others to
FAST_ENGINE = "cel-rust"  # the default when it is installed and passes its self-test
AUTO_ENGINE = "auto"  # engine_named's name for the default engine


def _registered_engines() -> tuple[dict[str, Callable[[], CelEngine]], str | None]:
    """The engines that can run here, and why cel-rust cannot (``None`` when it can)."""
    engines: dict[str, Callable[[], CelEngine]] = {CelPythonEngine.name: CelPythonEngine}
    try:  # a main dependency, but a platform without its wheel installs without it
        from hub.policy.cel_rust import RustCelEngine
    except ImportError as exc:
        return engines, str(exc) or type(exc).__name__
    engines[RustCelEngine.name] = RustCelEngine
    return engines, None


_ENGINES, _FAST_MISSING = _registered_engines()
ENGINES: Mapping[str, Callable[[], CelEngine]] = _ENGINES
_warned = False


def default_engine() -> CelEngine:
    """cel-rust when it is installed (the default install has it), else cel-python, the
    reference engine, with one warning per process saying why and what it costs."""
    global _warned
    factory = ENGINES.get(FAST_ENGINE)
    if factory is not None:
        return factory()
    if not _warned:
        _warned = True
        log.warning(
            "CEL engine: cel-python (the reference engine) because cel-rust is not usable "
            "(%s); policy decisions cost about 1 ms per five rules instead of about 20 us. "
            "Install common-expression-language to use cel-rust.",
            _FAST_MISSING,
        )
    return CelPythonEngine()


def engine_named(name: str) -> CelEngine:
    """A new engine of the given name (see :data:`ENGINES`; ``auto`` is
    :func:`default_engine`); ``ValueError`` names the ones available when there is no such
    engine (or its package is not installed)."""
    wanted = name.strip()
    if wanted == AUTO_ENGINE:
        return default_engine()
    factory = ENGINES.get(wanted)
    if factory is None:
        available = ", ".join([AUTO_ENGINE, *sorted(ENGINES)])
        hint = (
            f" (common-expression-language is not usable here: {_FAST_MISSING})"
            if wanted == FAST_ENGINE
            else ""
        )
        raise ValueError(f"unknown CEL engine '{name}'{hint}; available: {available}")
    return factory()
