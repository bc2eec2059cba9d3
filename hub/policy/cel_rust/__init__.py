"""CEL on cel-rust: cel-python's answers, computed by a Rust interpreter.

``RustCelEngine`` (name ``cel-rust``, the default engine) runs expressions on the Rust CEL
interpreter of the PyPI package ``common-expression-language`` (import name ``cel``; a main
dependency, but importing this package fails where its wheel is missing or fails the
self-test, and cel-python is then the default) and gives the same value, or the same error, as
:class:`~hub.policy.cel_python.CelPythonEngine`, the reference engine:

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

from hub.policy.cel_rust._library import library_version
from hub.policy.cel_rust._program import RustCelEngine, RustCelProgram

__all__ = ["RustCelEngine", "RustCelProgram", "library_version"]
