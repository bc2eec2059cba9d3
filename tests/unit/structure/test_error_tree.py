"""Every error class Preloop defines is in the one tree ``hub/errors.py`` draws (decision 0080).

Every module of hub, server, bots and tui is imported; each exception class defined there must
subclass ``PreloopError``, end in ``Error``, be drawn in ``hub/errors.py``'s docstring under the
parent it really has, and have a name no other error class has. The only exceptions are the
private control-flow signals listed in :data:`PRIVATE_SIGNALS`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import itertools
import pkgutil
import re
from types import ModuleType

import hub.errors
from hub.errors import PreloopError

PACKAGES = ("hub", "server", "bots", "tui")

# Private exceptions that carry a result or a "give up" out of a recursion and are caught in
# their own package: signals, not errors; they never reach a surface (decision 0080).
PRIVATE_SIGNALS: dict[str, str] = {
    "hub.policy._celcheck._Found": "the first problem found in a CEL parse tree",
    "hub.policy._celtypes._TypeProblem": "the first CEL type problem found in a parse tree",
    "hub.policy._precheck._NoCheck": "a rule the quick checks cannot answer (cel then does)",
    "hub.policy.cel_rust._guards._Unsupported": "CEL the Rust translation does not cover",
    "tui.feed._Rejected": "the server refused the live feed's subscription (retried there)",
}

# Error classes on their way out, each with the change that removes it.
LEAVING: dict[str, str] = {}

_DRAWN = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>_?[A-Z]\w*)\b")


@functools.cache
def all_modules() -> tuple[ModuleType, ...]:
    modules: list[ModuleType] = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if not info.name.endswith(".__main__"):  # runs the CLI when imported
                modules.append(importlib.import_module(info.name))
    return tuple(modules)


@functools.cache
def defined_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined (not merely imported) in our packages, by dotted name."""
    found: dict[str, type[BaseException]] = {}
    for module in all_modules():
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def drawn_tree() -> dict[str, str | None]:
    """The docstring's drawing: each class name and the name of the class it hangs under."""
    assert hub.errors.__doc__ is not None
    lines = hub.errors.__doc__.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("    PreloopError "))
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in itertools.takewhile(str.strip, lines[first:]):
        match = _DRAWN.match(line.removeprefix("    "))
        assert match is not None, f"not a line of the drawing: {line!r}"
        depth = len(match["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        assert match["name"] not in parents, f"{match['name']} is drawn twice"
        parents[match["name"]] = stack[-1][1] if stack else None
        stack.append((depth, match["name"]))
    return parents


def tree_parent(cls: type[BaseException]) -> str | None:
    """The class ``cls`` hangs under in the tree: its first base that is a PreloopError."""
    for base in cls.__bases__:
        if issubclass(base, PreloopError):
            return base.__name__
    return None


def test_the_drawing_is_read() -> None:
    tree = drawn_tree()

    assert tree["PreloopError"] is None
    assert tree["PolicyTooLargeError"] == "PolicyError"
    assert tree["NotFoundError"] == "PreloopError"


def test_every_error_class_is_a_drawn_preloop_error() -> None:
    tree = drawn_tree()
    exceptions = defined_exceptions()
    wrong: list[str] = []
    for name, cls in sorted(exceptions.items()):
        if name in PRIVATE_SIGNALS or name in LEAVING:
            continue
        short = cls.__name__
        if not issubclass(cls, PreloopError):
            wrong.append(f"{name}: not a PreloopError (subclass one of hub/errors.py's tree)")
        if not short.endswith("Error"):
            wrong.append(f"{name}: the name does not end in 'Error'")
        if short not in tree:
            wrong.append(f"{name}: not drawn in hub/errors.py's docstring")
        elif cls is not PreloopError and tree[short] != tree_parent(cls):
            wrong.append(f"{name}: drawn under {tree[short]}, defined under {tree_parent(cls)}")

    assert wrong == [], "\n".join(wrong)


def test_error_class_names_are_unique() -> None:
    names = [cls.__name__ for cls in defined_exceptions().values()]

    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_the_drawing_shows_only_classes_that_exist() -> None:
    defined = {cls.__name__ for cls in defined_exceptions().values()}

    assert sorted(set(drawn_tree()) - defined) == []


def test_private_signals_are_private_and_exist() -> None:
    exceptions = defined_exceptions()

    for name in PRIVATE_SIGNALS:
        assert name in exceptions, f"{name} is gone: remove it from PRIVATE_SIGNALS"
        assert exceptions[name].__name__.startswith("_"), name
    for name in LEAVING:
        assert name in exceptions, f"{name} is gone: remove it from LEAVING"
