"""Regular expressions that mean the same in Python and in JSON Schema (ECMA-262), so the
OpenAPI document can state the patterns the hub checks with.

Python's ``\\s`` also matches ``\\x1c``-``\\x1f`` and ``\\x85``, ECMA's does not; a class
naming them matches the same characters in both. ``NOT_SPACE`` is ``\\S`` for both."""

SPACE = r"[\s\x1c-\x1f\x85]"
NOT_SPACE = r"[^\s\x1c-\x1f\x85]"
