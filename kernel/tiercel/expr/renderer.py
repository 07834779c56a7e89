"""Render flow properties: strings, lists and dicts, with native types for single expressions."""

from __future__ import annotations

import functools
import marshal
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import Undefined

from .builtins import FILTERS, GLOBALS, REMOVED_FILTERS, TESTS, inspect_tree, materialize, to_text
from .environment import (
    MAX_SIZE,
    RANGE_BUDGET,
    CallError,
    LimitError,
    TiercelEnvironment,
    TiercelUndefined,
    check_size,
    range_budget,
)
from .errors import ExpressionError, Missing, syntax_message, undefined_message
from .paths import truthy

__all__ = ["JinjaRenderer", "truthy"]

#: At most this many compiled expressions are kept in the cache file (the first ones met).
CACHE_ENTRIES = 20_000


def _cache_stamp() -> str:
    """What compiled code depends on: bytecode differs across Pythons, generated code across Jinjas."""
    import jinja2

    from tiercel import __version__

    return f"{sys.version}|{jinja2.__version__}|{__version__}"

#: Expression nodes that may build a container holding an undefined value or shared items (checked after).
_BUILDERS = (nodes.List, nodes.Tuple, nodes.Dict, nodes.Filter, nodes.Call)


def _has_expression(text: str) -> bool:
    return "{{" in text or "{%" in text


def _guard(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter or function: size-check its result, name it when it fails."""
    kind = "filter" if name.startswith("|") else "function"
    label = f"{kind} `{name.lstrip('|')}`"

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return check_size(func(*args, **kwargs), label)
        except Missing as exc:  # undefined: `??` takes its right side, any other use fails with the message
            return TiercelUndefined(hint=str(exc))
        except (TemplateError, CallError, ExpressionError):
            raise
        except Exception as exc:
            raise CallError(label, exc) from exc

    return guarded


def _lazy(info: Any) -> Callable[..., Any]:
    """A plugin's function or filter, its module imported on the first call."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return info.obj(*args, **kwargs)

    call.__name__ = info.name
    return call


#: Nodes that may make a render slow (loops, calls of functions such as range): without them an
#: expression renders in microseconds, so it may run on an event loop.
_UNBOUNDED = (nodes.For, nodes.Call, nodes.Macro, nodes.CallBlock, nodes.FilterBlock)


class _Compiled:
    """A cached template: either one expression (native result) or a text template.

    ``chains`` are the variable paths written in it (``inputs.a.b``), for error messages; ``bounded``
    says it has no loop and calls no function (see ``_UNBOUNDED``).
    """

    __slots__ = ("native", "template", "check", "chains", "bounded")

    def __init__(self, native: bool, template: Any, check: bool, chains: tuple, bounded: bool) -> None:
        self.native = native
        self.template = template
        self.check = check
        self.chains = chains
        self.bounded = bounded

    @classmethod
    def of(cls, native: bool, template: Any, check: bool, tree: nodes.Node) -> _Compiled:
        accesses = [tree, *tree.find_all((nodes.Getattr, nodes.Getitem))]
        bounded = not isinstance(tree, _UNBOUNDED) and next(tree.find_all(_UNBOUNDED), None) is None
        return cls(native, template, check, tuple(filter(None, map(_chain, accesses))), bounded)


def _chain(node: nodes.Node) -> tuple | None:
    """``inputs.a['b'][0]`` as ('inputs', 'a', 'b', 0); None if not a plain path from a name."""
    keys: list[Any] = []
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            keys.append(node.attr)
        elif isinstance(node.arg, nodes.Const):
            keys.append(node.arg.value)
        else:
            return None
        node = node.node
    if not isinstance(node, nodes.Name):
        return None
    keys.append(node.name)
    return tuple(reversed(keys))


class JinjaRenderer:
    """Renders ``{{ … }}`` and ``{% … %}`` in property values against run variables.

    Thread-safe; compiled templates are cached by source (LRU), so rendering the same
    property again costs microseconds.
    """

    def __init__(self, cache_size: int = 2048, functions: Mapping[str, Any] | None = None,
                 filters: Mapping[str, Any] | None = None) -> None:
        """*functions* and *filters*: plugins' contributions (``ExtensionInfo`` by name, imported on first call)."""
        env = TiercelEnvironment(to_text)
        for name in REMOVED_FILTERS:
            env.filters.pop(name, None)
        env.filters.update(FILTERS)
        for name, info in (filters or {}).items():
            env.filters.setdefault(name, _lazy(info))  # a built-in name stays the built-in
        env.filters = {name: _guard("|" + name, f) for name, f in env.filters.items()}
        env.tests.update(TESTS)
        env.globals.update({name: _guard(name, f) if callable(f) else f for name, f in GLOBALS.items()})
        for name, info in (functions or {}).items():
            if name not in env.globals:
                env.globals[name] = _guard(name, _lazy(info))
        self._env = env
        self._globals = dict(env.globals)
        self._compile = functools.lru_cache(maxsize=cache_size)(self._compile_cached)
        #: Compiled code by (source, bare), shared by runs through a file (see ``load_cache``).
        self._stored: dict[tuple[str, bool], tuple[bool, bool, tuple, bool, Any]] = {}
        self._persist = False  # only a renderer with a cache file keeps code for it
        self._new = 0

    # -- public API -------------------------------------------------------------------
    def render(self, source: str, variables: Mapping[str, Any]) -> Any:
        """Render one template; a lone ``{{ expr }}`` keeps its native type (containers: see facade.Renderer)."""
        return self._run(source, variables, bare=False, native=True)

    def render_string(self, source: str, variables: Mapping[str, Any]) -> str:
        """Render one template to a string (lists and maps print as JSON, null as '')."""
        return self._run(source, variables, bare=False, native=False)

    def evaluate(self, expression: str, variables: Mapping[str, Any]) -> Any:
        """Evaluate a condition or value: ``inputs.n > 3`` or ``{{ inputs.n > 3 }}``; returns the native value."""
        if not isinstance(expression, str):
            return expression
        if _has_expression(expression):
            return self.render(expression, variables)
        if not expression.strip():
            raise ExpressionError(expression, "empty expression")
        return self._run(expression, variables, bare=True, native=True)

    def is_bounded(self, source: str) -> bool:
        """Whether rendering *source* takes microseconds (no loop, no function call); compiles it once."""
        if len(source) > 4096:
            return False  # compiling it may itself take a while
        try:
            return self._compile(source, False).bounded
        except Exception:
            return True  # a syntax error fails at once

    # -- the compiled-code cache shared by runs -------------------------------------------
    def load_cache(self, path: Path) -> None:
        """Take compiled expressions from *path* (written by ``save_cache``); a cache made by another
        Python, Jinja or Tiercel is ignored. Warm runs then skip parsing and code generation."""
        self._persist = True
        try:
            with open(path, "rb") as fh:
                stamp, entries = marshal.load(fh)
        except (OSError, EOFError, ValueError, TypeError):
            return
        if stamp == _cache_stamp() and isinstance(entries, dict):
            self._stored.update(entries)

    def save_cache(self, path: Path) -> None:
        """Write the compiled expressions to *path* when this process compiled new ones (atomically)."""
        if not self._new:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            marshal.dump((_cache_stamp(), self._stored), fh)
        os.replace(tmp, path)
        self._new = 0

    # -- internals ----------------------------------------------------------------------
    def _compile_cached(self, source: str, bare: bool) -> _Compiled:
        env = self._env
        stored = self._stored.get((source, bare))
        if stored is not None:
            native, check, chains, bounded, code = stored
            template = env.template_class.from_code(env, code, env.make_globals(None), None)
            return _Compiled(native, template, check, chains, bounded)
        compiled, code = self._compile_uncached(source, bare)
        if self._persist and len(self._stored) < CACHE_ENTRIES:
            self._stored[(source, bare)] = (compiled.native, compiled.check, compiled.chains, compiled.bounded, code)
            self._new += 1
        return compiled

    def _compile_uncached(self, source: str, bare: bool) -> tuple[_Compiled, Any]:
        env = self._env
        if bare:
            expr = env.parse_bare(source)
        else:
            tree = env.parse(source)
            expr = self._single_expression(tree)
            if expr is None:
                code = env.compile(tree)
                template = env.template_class.from_code(env, code, env.make_globals(None), None)
                return _Compiled.of(False, template, False, tree), code
        check = isinstance(expr, _BUILDERS) or next(expr.find_all(_BUILDERS), None) is not None
        body = nodes.Template([nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)], lineno=1)
        body.set_environment(env)
        code = env.compile(body)
        template = env.template_class.from_code(env, code, env.make_globals(None), None)
        return _Compiled.of(True, template, check, expr), code

    @staticmethod
    def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
        """The expression of a template that is exactly one ``{{ … }}`` (whitespace around allowed)."""
        if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
            return None
        parts = [n for n in tree.body[0].nodes if not (isinstance(n, nodes.TemplateData) and not n.data.strip())]
        if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
            return parts[0]
        return None

    def _run(self, source: str, variables: Mapping[str, Any], bare: bool, native: bool) -> Any:
        token = range_budget.set([RANGE_BUDGET])
        compiled = None
        try:
            compiled = self._compile(source, bare)
            template = compiled.template
            # Built directly: Template.new_context copies a ChainMap of globals, ~7 µs per render.
            context = self._env.context_class(self._env, {**self._globals, **variables}, None, template.blocks)
            if compiled.native:
                for _ in template.root_render_func(context):
                    pass
                result = materialize(context.vars["result"])
                if isinstance(result, Undefined):
                    result._fail_with_undefined_error()
                if compiled.check:
                    inspect_tree(result)
                return result if native else to_text(result)
            parts = []
            size = 0
            for chunk in template.root_render_func(context):
                size += len(chunk)
                if size > MAX_SIZE:
                    raise LimitError(f"the rendered text is longer than {MAX_SIZE:,} characters")
                parts.append(chunk)
            return "".join(parts)
        except ExpressionError:
            raise
        except Exception as exc:  # every failure leaves as an ExpressionError, with the cause kept
            chains = compiled.chains if compiled is not None else ()
            raise ExpressionError(source, _explain(exc, source, variables, chains)) from exc
        finally:
            range_budget.reset(token)


def _explain(exc: Exception, source: str, variables: Mapping[str, Any], chains: tuple) -> str:
    """The message of an ExpressionError for *exc*."""
    if isinstance(exc, TemplateSyntaxError):
        return syntax_message(exc, source)
    undefined = getattr(exc, "tiercel_undefined", None)
    if undefined is not None:
        return undefined_message(undefined, variables, chains)
    if isinstance(exc, LimitError):
        return f"not allowed: {exc} (expressions are sandboxed and bounded)"
    if isinstance(exc, SecurityError):
        return f"not allowed: {exc} (expressions are sandboxed)"
    if isinstance(exc, UndefinedError):
        return str(exc)
    if isinstance(exc, CallError):
        cause = exc.__cause__
        if isinstance(cause, ExpressionError):
            return f"{exc.what} failed: {cause.message}"
        return str(exc)
    if isinstance(exc, RecursionError):
        return "the expression is nested too deeply"
    if isinstance(exc, MemoryError):
        return "the expression needs too much memory"
    return f"{type(exc).__name__}: {exc}"
