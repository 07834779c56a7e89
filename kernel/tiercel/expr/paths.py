"""What rendering needs without Jinja2: plain variable paths, and Kestra's truthiness.

Most flow properties are text and variable paths (``{{ outputs.t.value }}``,
``v={{ taskrun.value }}``). Looking those up directly skips importing Jinja2 and compiling a
template (~0.5 ms each); anything else goes to the sandboxed Jinja renderer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from numbers import Number
from typing import Any

#: ``{{ a.b['c'][0] }}``: an expression that is only a variable path.
_PATH = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*|\['[^'\\\[\]{}]*'\]|\[\"[^\"\\\[\]{}]*\"\]|\[\d+\])*)\s*\}\}")
_KEY = re.compile(r"\.([A-Za-z][A-Za-z0-9_]*)|\['([^']*)'\]|\[\"([^\"]*)\"\]|\[(\d+)\]")
_HEAD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_FALSY_STRINGS = frozenset(["", "false", "0", "-0"])

#: Returned when the fast path cannot answer: the caller asks Jinja (which also explains errors).
MISS = object()


def truthy(value: Any) -> bool:
    """Kestra truthiness: "false", "0", "-0", "" (stripped, any case), false, 0, null and empty containers are false."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in _FALSY_STRINGS
    if isinstance(value, Number):
        return value != 0
    if hasattr(value, "__len__"):
        return len(value) > 0
    return True


@functools.lru_cache(maxsize=4096)
def simple_template(source: str) -> tuple | None:
    """*source* as parts (text, or a tuple of keys for a path) when it is only text and paths; else None."""
    if "{%" in source or "{#" in source:
        return None
    parts: list[Any] = []
    pos = 0
    for match in _PATH.finditer(source):
        if match.start() > pos:
            parts.append(source[pos:match.start()])
        path = match.group(1)
        head = _HEAD.match(path)
        keys: list[Any] = [head.group(0)]
        for key in _KEY.finditer(path, head.end()):
            attr, single, double, index = key.groups()
            keys.append(int(index) if index is not None else attr if attr is not None else
                        single if single is not None else double)
        parts.append(tuple(keys))
        pos = match.end()
    if pos < len(source):
        parts.append(source[pos:])
    if any(isinstance(p, str) and ("{{" in p or "}}" in p) for p in parts):
        return None  # an expression that is more than a path
    return tuple(parts)


def lookup(variables: Mapping[str, Any], keys: tuple) -> Any:
    """Follow a path through mappings and lists only; MISS when anything else is in the way."""
    value: Any = variables.get(keys[0], MISS)
    for key in keys[1:]:
        if value is MISS:
            return MISS
        if isinstance(value, Mapping):
            value = value.get(key, MISS) if not isinstance(key, int) else value.get(key, value.get(str(key), MISS))
        elif isinstance(value, (list, tuple)) and isinstance(key, int):
            value = value[key] if key < len(value) else MISS
        else:
            return MISS
    return value


def _text(value: Any) -> Any:
    """How a scalar prints inside a string (as Jinja's renderer prints it); MISS for anything else."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) in (int, float):
        return str(value)
    return MISS


def render_simple(parts: tuple, variables: Mapping[str, Any], native: bool) -> Any:
    """Render a simple template; MISS when Jinja must decide (undefined values, lists in text…)."""
    if len(parts) == 1 and isinstance(parts[0], tuple):
        value = lookup(variables, parts[0])
        return value if value is MISS or native else _text(value)
    paths = sum(isinstance(p, tuple) for p in parts)
    if native and paths == 1 and all(isinstance(p, tuple) or not p.strip() for p in parts):
        return MISS  # whitespace around one expression: Jinja decides the native type
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        text = _text(lookup(variables, part))
        if text is MISS:
            return MISS
        out.append(text)
    return "".join(out)
