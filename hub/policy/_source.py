"""Read YAML into plain Python data and remember where every key and value came from.

PyYAML's ``compose`` gives nodes with positions; we walk them once, building plain data
(dicts, lists, scalars) and a :class:`SourceMap` from key path to line and column. The
validators then speak in key paths (``tools[0].conditions[1].action``) and the map turns
each path into a line. Problems found here (duplicate keys, unsupported YAML features) are
collected, not raised one at a time.

Aliases (``*name``) are cheap to write and expensive to expand: nine nested lists of nine
aliases ("billion laughs") are 377 bytes that expand to 387 million values. Before anything is
built, one pass over the composed nodes (each node once, however often it is referred to)
counts what the aliases would add, and a document whose aliases add more than
:data:`MAX_ALIAS_VALUES` values, or that refers to itself, is refused with
:class:`~hub.errors.PolicyTooLargeError`.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from hub.errors import PolicyError, PolicyTooLargeError, Problem

Path = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_ALIAS_VALUES = 10_000  # values (scalars, lists, mappings) aliases may add to a document

try:  # libyaml is much faster; both produce the same nodes and marks
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


def format_path(path: Sequence[str | int]) -> str:
    """``("tools", 0, "conditions", 1, "action")`` → ``tools[0].conditions[1].action``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


class ScalarInfo:
    """Where a scalar value sits and how it was written (for CEL error positions)."""

    __slots__ = ("column", "line", "style")

    def __init__(self, line: int, column: int, style: str | None) -> None:
        self.line = line
        self.column = column
        self.style = style


class SourceMap:
    """Key path → (line, column), both 1-based, plus scalar details."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self._marks: dict[Path, tuple[int, int]] = {}
        self._scalars: dict[Path, ScalarInfo] = {}

    def record(self, path: Path, line: int, column: int) -> None:
        self._marks[path] = (line, column)

    def record_scalar(self, path: Path, info: ScalarInfo) -> None:
        self._scalars[path] = info

    def scalar(self, path: Path) -> ScalarInfo | None:
        return self._scalars.get(path)

    def locate(self, path: Path) -> tuple[int | None, int | None]:
        """The position of ``path``, or of its nearest recorded ancestor."""
        for end in range(len(path), -1, -1):
            mark = self._marks.get(path[:end])
            if mark is not None:
                return mark
        return None, None

    def problem(self, path: Path, message: str, *, line: int | None = None) -> Problem:
        found_line, column = self.locate(path)
        return Problem(
            message=message,
            file=self.filename,
            line=line if line is not None else found_line,
            column=None if line is not None else column,
            key=format_path(path) or None,
        )


def parse_yaml(
    text: str, filename: str, *, what: str = "policy"
) -> tuple[dict[str, Any], SourceMap]:
    """Parse ``text`` into a top-level mapping and its source map.

    Raises :class:`PolicyError` for syntax errors, an empty document, a top level that is not
    a mapping, and every duplicate key or unsupported YAML feature found.
    """
    with _gc_paused():
        return _parse(text, filename, what)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Building many small objects triggers the cyclic GC over and over (it made parsing a
    large policy three times slower); nothing built here is cyclic, so pause it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse(text: str, filename: str, what: str) -> tuple[dict[str, Any], SourceMap]:
    source = SourceMap(filename)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise PolicyError([_syntax_problem(exc, filename)]) from exc
    except yaml.YAMLError as exc:
        raise PolicyError([Problem(message=f"YAML error: {exc}", file=filename)]) from exc
    except RecursionError as exc:
        raise PolicyError([Problem(message="YAML nested too deeply", file=filename)]) from exc

    if root is None:
        raise PolicyError([Problem(message=f"the {what} file is empty", file=filename, line=1)])
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise PolicyError(
            [
                Problem(
                    message=f"the {what} must be a YAML mapping (key: value) at the top level, "
                    f"got {kind}",
                    file=filename,
                    line=root.start_mark.line + 1,
                    column=root.start_mark.column + 1,
                )
            ]
        )
    _check_aliases(root, filename)
    walker = _Walker(source)
    data = walker.value(root, ())
    if walker.problems:
        raise PolicyError(walker.problems)
    assert isinstance(data, dict)  # root is a MappingNode
    return data, source


def _check_aliases(root: yaml.Node, filename: str) -> None:
    """Refuse a document whose aliases would add more than :data:`MAX_ALIAS_VALUES` values,
    or that contains itself. Visits each distinct node once (iteratively: no recursion
    limit), so its cost is that of the text, not of the expansion."""
    sizes: dict[int, int] = {}  # expanded size of each finished node, by id
    added = 0
    stack: list[tuple[yaml.Node, list[yaml.Node] | None]] = [(root, None)]
    open_nodes: set[int] = set()
    while stack:
        node, children = stack.pop()
        if children is None:  # first time on the stack
            if id(node) in open_nodes:
                raise PolicyTooLargeError([_alias_problem(node, filename, recursive=True)])
            if id(node) in sizes:  # a node met again: an alias of it
                added += sizes[id(node)]
                if added > MAX_ALIAS_VALUES:
                    raise PolicyTooLargeError([_alias_problem(node, filename)])
                continue
            children = _children(node)
            open_nodes.add(id(node))
            stack.append((node, children))
            stack.extend((child, None) for child in reversed(children))
            continue
        open_nodes.discard(id(node))
        sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _alias_problem(node: yaml.Node, filename: str, *, recursive: bool = False) -> Problem:
    if recursive:
        message = "a YAML alias refers to a value that contains it (a recursive alias)"
    else:
        message = (
            f"YAML aliases would add more than {MAX_ALIAS_VALUES:,} values to the document "
            "(an alias bomb?); the last one expanded refers to the value anchored here: write "
            "repeated parts out or use fewer aliases"
        )
    return Problem(
        message=message,
        file=filename,
        line=node.start_mark.line + 1,
        column=node.start_mark.column + 1,
    )


def _syntax_problem(exc: yaml.MarkedYAMLError, filename: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    parts = [p for p in (exc.context, exc.problem) if p]
    message = "YAML syntax error: " + ("; ".join(parts) if parts else "invalid YAML")
    return Problem(
        message=message,
        file=filename,
        line=mark.line + 1 if mark is not None else None,
        column=mark.column + 1 if mark is not None else None,
    )


class _Walker:
    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()

    def _fail(self, node: yaml.Node, message: str, path: Path) -> None:
        self.problems.append(
            Problem(
                message=message,
                file=self.source.filename,
                line=node.start_mark.line + 1,
                column=node.start_mark.column + 1,
                key=format_path(path) or None,
            )
        )

    def value(self, node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items: list[Any] = []
            for index, item in enumerate(node.value):
                item_path = (*path, index)
                self.source.record(item_path, item.start_mark.line + 1, item.start_mark.column + 1)
                items.append(self.value(item, item_path))
            return items
        assert isinstance(node, yaml.ScalarNode)
        self.source.record_scalar(
            path, ScalarInfo(node.start_mark.line + 1, node.start_mark.column + 1, node.style)
        )
        return self._scalar(node, path)

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            self._fail(node, f"unsupported YAML value: {exc.problem}", path)
            return None

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._fail(
                    key_node,
                    "YAML merge keys (<<) are not supported in policies; write the keys out",
                    path,
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._fail(
                    key_node, "mapping keys must be plain values, not lists or mappings", path
                )
                continue
            key = self._scalar(key_node, path)
            try:
                hash(key)
            except TypeError:  # pragma: no cover - scalars are hashable
                key = str(key)
            key_path = (*path, key if isinstance(key, str) else str(key))
            if key in seen:
                self._fail(
                    key_node,
                    f"duplicate key '{key}' (first defined on line {seen[key]})",
                    key_path,
                )
                continue
            seen[key] = key_node.start_mark.line + 1
            self.source.record(
                key_path, key_node.start_mark.line + 1, key_node.start_mark.column + 1
            )
            out[key] = self.value(value_node, key_path)
        return out
