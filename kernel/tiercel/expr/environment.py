"""The sandboxed Jinja2 environment: strict-but-chainable undefined, ``??``, resource limits.

Jinja2's ImmutableSandboxedEnvironment already refuses ``_``-prefixed attributes, Python
internals and mutating methods of lists, dicts and sets. On top of it this module adds
Kestra's semantics (map keys before attributes, ``??``/``???``, null-aware ``default``)
and bounds on what one expression may allocate, because flows are user input.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import threading
import types
from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError
from jinja2.parser import Parser
from jinja2.runtime import ChainableUndefined, StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import ExpressionError, Missing

__all__ = ["CallError", "LimitError", "TiercelEnvironment", "MAX_RANGE", "MAX_SIZE", "MAX_ITEMS", "MAX_NODES", "RANGE_BUDGET", "MAX_POW_BITS"]

MAX_RANGE = 100_000  # items in one range()
RANGE_BUDGET = 1_000_000  # range() items per render, so nested loops stay bounded
MAX_SIZE = 10_000_000  # characters in any string one operation builds, and in the rendered text
MAX_ITEMS = 1_000_000  # items in any list one operation builds
MAX_NODES = 2_000_000  # nested items in a value printed as JSON or built by an expression
MAX_POW_BITS = 100_000  # bits of an integer power or product

#: Remaining range() items of the render running in this thread or task.
range_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("tiercel_range_budget")


class LimitError(SecurityError):
    """An expression tried to build something too large."""


class CallError(Exception):
    """A function or filter failed; says which one, keeps the original as ``__cause__``."""

    def __init__(self, what: str, error: BaseException) -> None:
        # str(KeyError('x')) is "'x'": show the message itself
        detail = error.args[0] if isinstance(error, KeyError) and len(error.args) == 1 else error
        super().__init__(f"{what} failed: {detail}")
        self.what = what


def check_size(value: Any, what: str = "value") -> Any:
    """Return *value*, or raise if it is a string beyond MAX_SIZE or a list beyond MAX_ITEMS."""
    if isinstance(value, (str, bytes)):
        _limit(len(value), what)
    elif isinstance(value, (list, tuple)):
        _limit(len(value), what, MAX_ITEMS)
    return value


def _limit(size: int, what: str, limit: int = MAX_SIZE) -> None:
    if size > limit:
        raise LimitError(f"{what} would be {size:,} long; the limit is {limit:,}")


def bounded_range(*args: int) -> range:
    """Jinja's range, bounded per call (MAX_RANGE) and per render (RANGE_BUDGET)."""
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise LimitError(f"range() of {len(rng):,} items; the limit is {MAX_RANGE:,}")
    budget = range_budget.get(None)
    if budget is not None:
        budget[0] -= len(rng)
        if budget[0] < 0:
            raise LimitError(f"range() produced more than {RANGE_BUDGET:,} items in one expression")
    return rng


_WIDTH = re.compile(r"\d{7,}")  # a width or precision of a million or more


def _check_format_spec(fmt: str) -> None:
    if _WIDTH.search(fmt):
        raise LimitError("format width or precision too large")


def _pre_check_str_method(obj: Any, args: tuple, kwargs: dict) -> tuple:
    """Bound the str methods whose output grows with their arguments; returns the arguments to use."""
    name = getattr(obj, "__name__", "")
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str):
        return args
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        _limit(args[0], f"str.{name}()")
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else kwargs.get("tabsize", 8)
        _limit(len(owner) + owner.count("\t") * int(size), "str.expandtabs()")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        old, new = args[0], args[1]
        count = (len(owner) + 1) if old == "" else owner.count(old)
        _limit(len(owner) + count * max(len(new) - len(old), 0), "str.replace()")
    elif name == "join" and args:
        items = args[0] if isinstance(args[0], (list, tuple)) else list(args[0])  # an iterator is read once
        _limit(sum(len(i) for i in items if isinstance(i, str)) + len(owner) * len(items), "str.join()")
        return (items, *args[1:])
    return args


class TiercelUndefined(ChainableUndefined, StrictUndefined):
    """Strict on use, chainable on lookup.

    ``outputs.missing.value`` stays undefined (so ``is defined``, ``default`` and ``??``
    work on a whole path, as in Kestra), and printing, iterating, comparing or calling it
    raises, naming the first missing key. ``repr`` raises too, so an undefined value cannot
    slip into a rendered list or dict.
    """

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        exc = self._undefined_exception(self._undefined_message)
        exc.tiercel_undefined = self  # type: ignore[attr-defined]
        raise exc

    __repr__ = _fail_with_undefined_error


# Jinja binds its operators (__add__, __str__, __eq__…) to the base method itself; point them at ours.
for _base in (Undefined, StrictUndefined):
    for _name, _value in vars(_base).items():
        if _value is Undefined._fail_with_undefined_error and _name not in ("__getitem__", "__getattr__"):
            setattr(TiercelUndefined, _name, TiercelUndefined._fail_with_undefined_error)


_held = threading.local()


def hold_if_present(value: Any, undefined_only: bool) -> bool:
    """Test of ``??``: whether the left side wins (defined and not null; for ``???`` defined).

    When it wins it is held for ``held()``, which the same conditional calls next, so the
    left side is evaluated once and the right side only when needed.
    """
    if isinstance(value, Undefined) or (value is None and not undefined_only):
        return False
    _held.value = value
    return True


def held() -> Any:
    """The value ``hold_if_present`` just held (nothing runs in between)."""
    value, _held.value = _held.value, None
    return value


def coalesce(left: nodes.Expr, right: nodes.Expr, undefined_only: bool, lineno: int) -> nodes.Expr:
    """``left ?? right`` as standard nodes (Jinja has no custom node types)."""
    test = nodes.Call(nodes.EnvironmentAttribute("tiercel_hold_if_present"),
                      [left, nodes.Const(undefined_only)], [], None, None, lineno=lineno)
    take = nodes.Call(nodes.EnvironmentAttribute("tiercel_held"), [], [], None, None, lineno=lineno)
    return nodes.CondExpr(test, take, right, lineno=lineno)


class _Parser(Parser):
    """Jinja's parser plus Pebble's operators: ``??``/``???`` (the pre-pass turned them into ``;``
    tokens), the ternary ``test ? a : b`` (its ``?`` turned into ``=``, which never follows an
    expression in Jinja), ``a equals b`` and ``container contains item``.

    ``??`` binds tighter than arithmetic and comparisons (``a ?? 0 + 1`` is ``(a ?? 0) + 1``,
    as in Kestra), looser than ``**`` and filters; the ternary binds loosest.
    """

    def parse_condexpr(self) -> nodes.Expr:
        lineno = self.stream.current.lineno
        expr = super().parse_condexpr()
        if self.stream.current.type == "assign":
            next(self.stream)
            then = self.parse_condexpr()
            self.stream.expect("colon")
            expr = nodes.CondExpr(expr, then, self.parse_condexpr(), lineno=lineno)
        return expr

    def parse_compare(self) -> nodes.Expr:
        lineno = self.stream.current.lineno
        expr = super().parse_compare()
        while self.stream.current.test_any("name:equals", "name:contains"):
            word = next(self.stream).value
            right = super().parse_compare()
            if word == "equals":
                expr = nodes.Compare(expr, [nodes.Operand("eq", right)], lineno=lineno)
            else:  # `a contains b` is `b in a`: a key of a map, an item of a list, a substring
                expr = nodes.Compare(right, [nodes.Operand("in", expr)], lineno=lineno)
        return expr

    def parse_pow(self) -> nodes.Expr:
        left = super().parse_pow()
        while self.stream.current.type == "semicolon":
            lineno = next(self.stream).lineno
            undefined_only = self.stream.skip_if("semicolon")
            right = super().parse_pow()
            left = coalesce(left, right, undefined_only, lineno)
        return left


@contextlib.contextmanager
def _locate(parser: Parser) -> Iterator[None]:
    """Attach the token a syntax error happened at (TokenStream.expect raises without it)."""
    try:
        yield
    except TemplateSyntaxError as error:
        if not hasattr(error, "tiercel_token"):
            error.tiercel_token = parser.stream.current  # type: ignore[attr-defined]
        raise


class _CodeGenerator(CodeGenerator):
    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        # Jinja folds constant `~` with str() (True, None); ours prints like `{{ }}` does.
        if isinstance(node, nodes.Concat) or next(node.find_all(nodes.Concat), None) is not None:
            raise nodes.Impossible()
        return super()._output_child_to_const(node, frame, finalize)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # `~` renders values like `{{ }}` does (true, JSON, ISO dates) and is size-checked.
        self.write("environment.tiercel_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


_RAW = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}(.*?)\{%[-+]?\s*endraw\s*[-+]?%\}", re.S)


def rewrite_coalesce(source: str) -> str:
    """Turn ``??``/``???`` inside ``{{ }}``/``{% %}`` into ``;`` tokens, keeping every column.

    Strings, ``{# #}`` comments and ``{% raw %}`` blocks are left alone; a literal ``;``
    in code (never valid Jinja) is refused here so that only ours reach the parser.
    """
    out = list(source)
    i, n = 0, len(source)
    while i < n:
        start = source.find("{", i)
        if start < 0 or start + 1 >= n:
            break
        opener = source[start + 1]
        if opener == "#":
            end = source.find("#}", start + 2)
            i = n if end < 0 else end + 2
            continue
        if opener == "%":
            raw = _RAW.match(source, start)
            if raw:
                i = raw.end()
                continue
        if opener not in "{%":
            i = start + 1
            continue
        closer = "}}" if opener == "{" else "%}"
        i = start + 2
        depth = 0
        while i < n:
            c = source[i]
            if c in "'\"":
                j = i + 1
                while j < n and source[j] != c:
                    j += 2 if source[j] == "\\" else 1
                i = j + 1
                continue
            if depth == 0 and source.startswith(closer, i):
                i += 2
                break
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth = max(depth - 1, 0)
            elif c == ";":
                lineno = source.count("\n", 0, i) + 1
                raise TemplateSyntaxError("unexpected ';'", lineno)
            elif source.startswith("???", i):
                out[i:i + 3] = " ;;"
                i += 3
                continue
            elif source.startswith("??", i):
                out[i:i + 2] = " ;"
                i += 2
                continue
            elif c == "?":  # Pebble's ternary `test ? a : b`
                out[i] = "="
            i += 1
    return "".join(out)


class TiercelEnvironment(ImmutableSandboxedEnvironment):
    """The one environment every Renderer uses (filters and functions are added by the Renderer)."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, to_text: Any) -> None:
        super().__init__(undefined=TiercelUndefined, autoescape=False, keep_trailing_newline=True,
                         finalize=to_text, cache_size=0, auto_reload=False)
        self.to_text = to_text
        self.globals["range"] = bounded_range
        for unsafe in ("lipsum", "cycler", "joiner"):
            self.globals.pop(unsafe, None)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        parser = _Parser(self, self.preprocess_coalesce(source), name, filename)
        with _locate(parser):
            return parser.parse()

    @staticmethod
    def preprocess_coalesce(source: str) -> str:
        return rewrite_coalesce(source) if ("?" in source or ";" in source) else source

    def parse_bare(self, source: str) -> nodes.Expr:
        """Parse a bare expression (no braces), e.g. a ``runIf`` condition."""
        parser = _Parser(self, self.preprocess_coalesce("{{" + source + "}}")[2:-2], state="variable")
        with _locate(parser):
            expr = parser.parse_expression()
            if not parser.stream.eos:
                parser.fail(f"unexpected {parser.stream.current.value!r} after the expression")
        return expr

    # -- Kestra semantics -------------------------------------------------------------
    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Undefined):  # report the first missing name, not what was asked of it
            return obj
        # Map keys win over methods: `outputs.items.value` is the task `items`, as in Kestra.
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return obj if isinstance(obj, Undefined) else super().getitem(obj, argument)

    tiercel_hold_if_present = staticmethod(hold_if_present)
    tiercel_held = staticmethod(held)

    def tiercel_concat(self, values: tuple) -> str:
        to_text = self.to_text
        result = "".join([v if isinstance(v, str) else to_text(v) for v in values])
        return check_size(result, "a concatenated string")

    # -- limits -----------------------------------------------------------------------
    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_POW_BITS:
                    raise LimitError("the product of these integers is too large")
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str) and isinstance(times, int):
                    _limit(len(seq) * times, "a repeated string")
                elif isinstance(seq, (list, tuple)) and isinstance(times, int):
                    _limit(len(seq) * times, "a repeated list", MAX_ITEMS)
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and left.bit_length() * right > MAX_POW_BITS:
                raise LimitError(f"{left} ** {right} is too large")
        elif operator == "%" and isinstance(left, str):
            _check_format_spec(left)
        elif operator == "+" and isinstance(left, str) and isinstance(right, str):
            _limit(len(left) + len(right), "a concatenation")
        elif operator == "+" and isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
            _limit(len(left) + len(right), "a concatenation", MAX_ITEMS)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_format_spec(template)
            return check_size(wrapped(*args, **kwargs), "a formatted string")

        return checked

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if isinstance(__obj, (types.BuiltinMethodType, types.MethodType)):
            args = _pre_check_str_method(__obj, args, kwargs)
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        except Missing as exc:  # undefined: `??` takes its right side, any other use fails with the message
            return TiercelUndefined(hint=str(exc))
        except (TemplateError, CallError, ExpressionError):  # a nested render() explained its own
            raise
        except Exception as exc:
            raise CallError(f"{getattr(__obj, '__name__', 'call')}()", exc) from exc
        return check_size(result, "a result")
