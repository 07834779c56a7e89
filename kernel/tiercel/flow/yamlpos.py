"""YAML loading that remembers where every value came from.

The document is composed into nodes (libyaml when available) and built into plain Python
data here, recording the 1-based (line, column) of each key and value by path, so that a
validation error deep in a task points at its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from tiercel.flow.errors import Path

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

MAX_NODES = 200_000
_TEXT_TAGS = frozenset({"tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp"})
_MERGE = "tag:yaml.org,2002:merge"  # bounds alias expansion ("billion laughs")


class YamlError(Exception):
    """A document that is not valid YAML (or not a flow-shaped document)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.hint = hint


@dataclass
class Positions:
    """Where each path of the document starts: ``values`` for values, ``keys`` for mapping keys."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def find(self, path: Path, key: bool = False) -> tuple[int, int] | None:
        """The position of *path*, or of its closest ancestor that has one."""
        path = tuple(path)
        if key and path in self.keys:
            return self.keys[path]
        while True:
            if path in self.values:
                return self.values[path]
            if not path:
                return None
            path = path[:-1]


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load_yaml(text: str) -> tuple[Any, Positions]:
    """Parse one YAML document; return its data and the positions of every path in it."""
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise _syntax_error(exc, text) from None
        except ValueError as exc:  # libyaml refuses some inputs (e.g. NUL characters) this way
            raise YamlError(f"invalid YAML: {exc}") from None
        except yaml.YAMLError as exc:
            raise YamlError(f"invalid YAML: {str(exc).splitlines()[0]}") from None
        positions = Positions()
        if node is None:
            return None, positions
        builder = _Builder(loader, positions)
        return builder.build(node, ()), positions
    finally:
        loader.dispose()


def _syntax_error(exc: yaml.MarkedYAMLError, text: str) -> YamlError:
    """PyYAML's parser error in words a flow author acts on: what is wrong, where, and the likely fix."""
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
    problem = exc.problem or ""
    lines = text.splitlines()
    here = lines[line - 1] if line and line <= len(lines) else ""
    indent = here[: len(here) - len(here.lstrip())]
    if "\t" in problem or ("tab" in problem and "\t" in here) or "\t" in indent:
        column = here.index("\t") + 1 if "\t" in here else column
        return YamlError("a tab character in the indentation: YAML indents with spaces only", line, column,
                         "replace the tab with spaces; most editors have 'indent using spaces'")
    if problem.startswith("mapping values are not allowed") and column and ": " in here[: column - 1]:
        return YamlError("a `: ` inside an unquoted value reads as a second key on this line", line, column,
                         "quote the whole value, e.g. `message: \"a: b\"`")
    if problem.startswith(("did not find expected '-' indicator", "did not find expected key",
                           "mapping values are not allowed here", "expected <block end>")):
        started = f", inside the block that starts at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        return YamlError(f"bad indentation: this line does not line up with the lines above it{started}", line, column,
                         "indent every key of one mapping (and every `-` of one list) by the same number of spaces")
    if problem.startswith("found unexpected end of stream") and exc.context and "quoted scalar" in exc.context:
        start = exc.context_mark.line + 1 if exc.context_mark else line
        return YamlError("a quoted string is never closed", start, (exc.context_mark.column + 1) if exc.context_mark else column,
                         "add the closing quote on the same line")
    return YamlError(_yaml_message(exc), line, column)


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    message = "invalid YAML: " + (exc.problem or exc.context or "syntax error")
    if exc.problem and exc.context:
        started = f" started at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{started})"
    return message


class _Builder:
    def __init__(self, loader: Any, positions: Positions) -> None:
        self.loader = loader
        self.positions = positions
        self.count = 0
        self.active: set[int] = set()
        self.merged: dict[int, int] = {}
        self.origin: dict[Path, int] = {}

    def _flatten(self, node: yaml.MappingNode) -> int:
        """Resolve `<<` merge keys in place; return how many leading entries came from merges."""
        if id(node) not in self.merged:
            if not any(k.tag == _MERGE for k, _ in node.value):
                self.merged[id(node)] = 0
                return 0
            own = sum(1 for k, _ in node.value if k.tag != _MERGE)
            try:
                self.loader.flatten_mapping(node)
            except yaml.MarkedYAMLError as exc:
                raise YamlError(_yaml_message(exc), *_mark(node)) from None
            self.merged[id(node)] = len(node.value) - own
        return self.merged[id(node)]

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlError(f"document too large: more than {MAX_NODES} values (each use of an alias counts "
                            f"its values again); split it into subflows", *_mark(node))
        self.positions.values[path] = _mark(node)
        if isinstance(node, yaml.ScalarNode):
            if node.tag in _TEXT_TAGS:
                return node.value  # strings as is; dates stay text, as JSON would have them
            try:
                return self.loader.construct_object(node, deep=True)
            except yaml.MarkedYAMLError as exc:
                raise YamlError(_yaml_message(exc), *_mark(node)) from None
            except Exception as exc:  # a scalar the constructor rejects (bad timestamp, …)
                raise YamlError(f"invalid value {node.value!r}: {exc}", *_mark(node)) from None
        if id(node) in self.active:
            raise YamlError("recursive YAML alias: a value cannot contain itself", *_mark(node))
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                self._check_tag(node, "tag:yaml.org,2002:seq")
                return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            self._check_tag(node, "tag:yaml.org,2002:map")
            merged = self._flatten(node)
            data: dict[str, Any] = {}
            for index, (key_node, value_node) in enumerate(node.value):
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlError("a mapping key must be a plain value, not a list or a mapping", *_mark(key_node))
                key = key_node.value  # the key as written: `1:` and `on:` stay strings
                if key in data and index >= merged and self.origin.get((*path, key), 0) >= merged:
                    first = self.positions.keys.get((*path, key))
                    where = f" (first at line {first[0]})" if first else ""
                    raise YamlError(f"duplicate key `{key}`{where}", *_mark(key_node))
                self.origin[(*path, key)] = index
                self.positions.keys[(*path, key)] = _mark(key_node)
                data[key] = self.build(value_node, (*path, key))
            return data
        finally:
            self.active.discard(id(node))

    def _check_tag(self, node: yaml.Node, expected: str) -> None:
        if node.tag != expected:
            raise YamlError(f"unsupported YAML tag {node.tag}", *_mark(node))
