"""The dashboard's documented key bindings, collected from the classes that declare them.

The help screen and the command palette are both generated from :func:`documented`, so
neither can drift from the bindings themselves: a binding added to a screen's ``BINDINGS``
appears in both. Bindings marked ``show=False`` are still listed (the help lists *every* one).
A binding's ``description`` is the footer's short label; where it has a ``tooltip``, that
longer text is what the help and the palette say.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode


class KeyHelp(NamedTuple):
    key: str  # as shown to people, e.g. "a" or "ctrl+p"
    description: str
    action: str
    owner: DOMNode  # where the action runs (the app or a screen)
    section: str


def documented(app: App[Any], screen: DOMNode) -> list[KeyHelp]:
    """Every binding of ``screen`` (its section first), then the app's."""
    rows: list[KeyHelp] = []
    for owner, section in ((screen, getattr(screen, "HELP_SECTION", "Screen")), (app, "Global")):
        for binding in type(owner).BINDINGS:
            if not isinstance(binding, Binding):
                raise TypeError(f"{type(owner).__name__}.BINDINGS: use Binding(...), not tuples")
            keys = [replace(binding, key=key.strip()) for key in binding.key.split(",")]
            rows.append(
                KeyHelp(
                    key=" / ".join(app.get_key_display(key) for key in keys),
                    description=binding.tooltip or binding.description,
                    action=binding.action,
                    owner=owner,
                    section=section,
                )
            )
    return rows
