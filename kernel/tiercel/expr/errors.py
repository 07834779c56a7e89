"""ExpressionError and the messages that say what was undefined and where it was looked up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Jinja2 loads only when a template needs compiling
    from jinja2.exceptions import TemplateSyntaxError
    from jinja2.runtime import Undefined

__all__ = ["ExpressionError"]

#: Parents whose missing keys get a domain-specific explanation.
_KIND = {"outputs": "task `{}` has outputs", "inputs": "input `{}`", "vars": "variable `{}`", "labels": "label `{}`"}


class ExpressionError(Exception):
    """An expression could not be rendered: syntax, undefined value, sandbox violation or a failing filter.

    ``expression`` is the template source, ``message`` says what went wrong without it.
    """

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(message)
        self.expression = expression
        self.message = message

    def __str__(self) -> str:
        shown = self.expression if len(self.expression) <= 200 else self.expression[:197] + "..."
        return f"{self.message} (in expression {shown!r})"


def known(keys: Any, limit: int = 10) -> str:
    """A short, sorted, truncated list of names for an error message."""
    names = sorted(str(k) for k in keys)
    if not names:
        return "(none)"
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def _find_path(target: Any, variables: Mapping[str, Any], max_nodes: int = 5000) -> str | None:
    """Where *target* sits in the variables (``outputs.a``), found by identity; None if nowhere."""
    queue: list[tuple[str, Any]] = [(str(k), v) for k, v in variables.items()]
    seen = 0
    while queue and seen < max_nodes:
        path, value = queue.pop(0)
        seen += 1
        if value is target:
            return path
        if isinstance(value, Mapping):
            queue.extend((f"{path}.{k}" if isinstance(k, str) and k.isidentifier() else f"{path}[{k!r}]", v)
                         for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            queue.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
    return None


_NOT_FOUND = object()


def _lookup(variables: Mapping[str, Any], chain: tuple) -> Any:
    """Follow *chain* (names and indexes) through plain maps and lists; _NOT_FOUND if it breaks."""
    value: Any = variables
    for key in chain:
        try:
            if isinstance(value, Mapping) or (isinstance(value, (list, tuple)) and isinstance(key, int)):
                value = value[key]
            else:
                return _NOT_FOUND
        except (KeyError, IndexError, TypeError):
            return _NOT_FOUND
    return value


def _format(chain: tuple) -> str:
    path = str(chain[0])
    for key in chain[1:]:
        path = _join(path, key)
    return path


def _locate(obj: Any, name: Any, variables: Mapping[str, Any], chains: tuple) -> str | None:
    """The path of the value that lacked *name*: first from the accesses written in the expression
    (exact even for scalars), else by identity among the variables (only for containers, whose
    identity is unique)."""
    for chain in chains:
        for k in range(1, len(chain)):
            if chain[k] == name and _lookup(variables, chain[:k]) is obj:
                return _format(chain[:k])
    if isinstance(obj, (Mapping, list, tuple)):
        return _find_path(obj, variables)
    return None


def _join(path: str | None, name: Any) -> str:
    if path is None:
        return str(name)
    if isinstance(name, str) and name.isidentifier():
        return f"{path}.{name}"
    return f"{path}[{name!r}]"


def undefined_message(undefined: Undefined, variables: Mapping[str, Any], chains: tuple = ()) -> str:
    """Explain an undefined value: its full path, which key was missing and which ones exist."""
    from jinja2.exceptions import SecurityError
    from jinja2.utils import missing

    name = undefined._undefined_name
    obj = undefined._undefined_obj
    if issubclass(undefined._undefined_exception, SecurityError):
        return f"`{name}` is not allowed: {undefined._undefined_hint or 'unsafe access'} (expressions are sandboxed)"
    if obj is missing:
        if undefined._undefined_hint:
            return undefined._undefined_hint
        return f"`{name}` is undefined; known variables: {known(variables.keys())}"
    path = _locate(obj, name, variables, chains)
    full = _join(path, name)
    where = f"`{path}`" if path else "the value"
    if obj is None:
        reason = f"{where} is null"
    elif isinstance(obj, Mapping):
        kind = _KIND.get(path or "")
        if kind:
            reason = f"no {kind.format(name)}; known: {known(obj.keys())}"
        else:
            reason = f"{where} has no key `{name}`; known: {known(obj.keys())}"
    elif isinstance(obj, Sequence) and not isinstance(obj, str) and isinstance(name, int):
        reason = f"{where} has {len(obj)} item(s); index {name} is out of range"
    else:
        reason = f"{where} (a {type(obj).__name__}) has no attribute or key `{name}`"
    return f"`{full}` is undefined: {reason}"


def syntax_message(exc: TemplateSyntaxError, source: str) -> str:
    """A syntax error with its position: line, the token it failed near, and the line itself."""
    lineno = exc.lineno or 1
    lines = source.splitlines() or [""]
    line = lines[min(lineno, len(lines)) - 1].strip()
    where = f"line {lineno}"
    token = getattr(exc, "tiercel_token", None)
    if token and token.value and token.type != "eof":
        raw = source.splitlines()[min(lineno, len(lines)) - 1] if lines else ""
        column = raw.find(str(token.value)) if raw.count(str(token.value)) == 1 else -1
        where += f", column {column + 1}" if column >= 0 else ""
        where += f", near `{token.value}`"
    elif token and token.type == "eof":
        where += ", at the end of the expression"
    message = f"syntax error at {where}: {exc.message}"
    if len(lines) > 1:
        message += f" — line {lineno}: {line[:120]}"
    return message


class Missing(LookupError):
    """Raised by a function when what it looks up does not exist (a KV key, say): the call is then
    undefined, so ``kv('k') ?? 'fallback'`` and ``is defined`` work, and using it fails with this message."""
