"""No import cycles among the modules of hub, server, bots and tui (decision 0081).

The graph is grimp's (what import-linter checks), without the imports under
``if TYPE_CHECKING:``. grimp also counts imports inside functions; such an import runs when
the function runs, which is at import time when the function is called by the module's own
top level, so the test cannot tell a lazy import from an eager one. A function-level import
that closes a cycle is therefore allowed only when :data:`LAZY_BACK_EDGES` names it, with the
reason the import has to wait; the test checks each entry is still needed and is only ever
imported from inside a function.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import itertools
from pathlib import Path

import grimp

PACKAGES = ("hub", "server", "bots", "tui")

# (importer, imported) -> why the importer imports it only inside a function.
LAZY_BACK_EDGES: dict[tuple[str, str], str] = {
    ("server.front", "server.app"): (
        "the front answers /healthz before Litestar is imported, then imports the app in a "
        "background thread (decision 0069); the app uses the front's McpEndpoints"
    ),
}


@functools.cache
def import_graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)


def strongly_connected(
    graph: grimp.ImportGraph, skip: frozenset[tuple[str, str]] = frozenset()
) -> list[list[str]]:
    """The groups of modules that import each other, directly or not (Tarjan, iterative),
    leaving out the imports in ``skip``."""

    def imported_by(module: str) -> list[str]:
        found = graph.find_modules_directly_imported_by(module)
        return sorted(m for m in found if (module, m) not in skip)

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(imported_by(root)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(imported_by(child))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return groups


def describe(graph: grimp.ImportGraph, group: list[str], skip: frozenset[tuple[str, str]]) -> str:
    """One cycle through ``group`` (the shortest back to its first module), each step with
    the line that imports."""
    members = set(group)
    start = group[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while start not in came_from:  # breadth first, inside the group, back to start
        following: list[str] = []
        for module in frontier:
            for child in sorted(graph.find_modules_directly_imported_by(module) & members):
                if (module, child) not in skip and child not in came_from:
                    came_from[child] = module
                    following.append(child)
        frontier = following
    chain = [start]
    while len(chain) == 1 or chain[-1] != start:
        chain.append(came_from[chain[-1]])
    chain.reverse()
    steps = []
    for importer, imported in itertools.pairwise(chain):
        [detail, *_] = graph.get_import_details(importer=importer, imported=imported)
        line = f"line {detail['line_number']}: {detail['line_contents']}"
        steps.append(f"  {importer} -> {imported}   ({line})")
    return f"cycle among {', '.join(group)}:\n" + "\n".join(steps)


def function_level_lines(module: str) -> set[int]:
    """Lines of the import statements of ``module`` that sit inside a function."""
    spec = importlib.util.find_spec(module)
    assert spec is not None
    assert spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    lines.add(inner.lineno)
    return lines


def test_no_import_cycles() -> None:
    graph = import_graph()
    skip = frozenset(LAZY_BACK_EDGES)

    cycles = [describe(graph, group, skip) for group in strongly_connected(graph, skip)]

    assert cycles == [], "\n\n".join(cycles)


def test_lazy_back_edges_are_function_level_and_needed() -> None:
    graph = import_graph()
    for (importer, imported), reason in LAZY_BACK_EDGES.items():
        assert reason
        details = graph.get_import_details(importer=importer, imported=imported)
        assert details, f"{importer} no longer imports {imported}: remove the entry"
        lazy = function_level_lines(importer)
        eager = [d["line_number"] for d in details if d["line_number"] not in lazy]
        assert eager == [], f"{importer} imports {imported} at module level (lines {eager})"
        assert graph.chain_exists(importer=imported, imported=importer), (
            f"{imported} no longer imports {importer}: the entry is not needed"
        )


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "a.one", "a.two", "a.three", "a.four"):
        graph.add_module(name)
    graph.add_import(importer="a.one", imported="a.two")
    graph.add_import(importer="a.two", imported="a.three")
    graph.add_import(importer="a.three", imported="a.one")
    graph.add_import(importer="a.three", imported="a.four")

    assert strongly_connected(graph) == [["a.one", "a.three", "a.two"]]
