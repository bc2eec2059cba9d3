"""``hub.wire``, the REST API's wire types: it imports only the core (and msgspec and the
standard library), loads nothing heavy, exports every type, and its names for the policy
engine's values stay those of ``hub.policy``."""

from __future__ import annotations

import ast
import subprocess
import sys
import typing
from pathlib import Path

import msgspec

import hub.wire
from hub.policy import Action, JustificationMode
from hub.wire import ActionName, JustificationName

WIRE = Path(hub.wire.__file__).parent
REPO = WIRE.parents[1]


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_wire_types_import_only_the_core_msgspec_and_the_standard_library() -> None:
    outside = {
        f"{path.name}: {name}"
        for path in sorted(WIRE.glob("*.py"))
        for name in _imported(path)
        if name.split(".")[0] not in {"hub", "msgspec", "__future__"}
        and name.split(".")[0] not in sys.stdlib_module_names
    }
    assert set() == outside


def test_importing_the_wire_types_loads_no_client_and_no_policy_engine() -> None:
    heavy = ("httpx", "celpy", "lark", "yaml", "hub.policy", "hub.api_client", "server", "tui")
    probe = f"import sys, hub.wire; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "[]" == done.stdout.strip()


def test_every_wire_type_is_exported() -> None:
    structs = {
        name
        for module in (WIRE.glob("*.py"))
        if module.stem != "__init__"
        for name, value in vars(__import__(f"hub.wire.{module.stem}", fromlist=["x"])).items()
        if isinstance(value, type)
        and issubclass(value, msgspec.Struct)
        and value.__module__.startswith("hub.wire")
    }
    assert structs <= set(hub.wire.__all__)


def test_the_policy_values_on_the_wire_are_the_engine_s() -> None:
    assert {a.value for a in Action} == set(typing.get_args(ActionName))
    assert {m.value for m in JustificationMode} == set(typing.get_args(JustificationName))
