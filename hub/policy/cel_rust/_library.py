"""Loading the ``common-expression-language`` library (import name ``cel``) without its
command-line interface, and checking the behaviour the translation relies on."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from typing import Any


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
