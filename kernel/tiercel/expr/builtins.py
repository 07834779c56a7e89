"""The functions, filters and tests expressions get besides Jinja's own (Kestra's names and meanings)."""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import json
import random
import re
import unicodedata
import uuid as _uuid
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_plus

import yaml as _yaml
from jinja2 import filters as jinja_filters
from jinja2 import pass_context
from jinja2.runtime import Undefined

from . import dates
from .environment import MAX_ITEMS, MAX_NODES, MAX_SIZE, LimitError, check_size

__all__ = ["GLOBALS", "FILTERS", "TESTS", "inspect_tree", "materialize", "to_text", "to_json"]


# -- value conversions ---------------------------------------------------------------------------

_LAZY = (Iterator, range, set, frozenset, KeysView, ValuesView, ItemsView)
_PLAIN = frozenset([str, int, float, bool, type(None), dict, list, tuple])


def materialize(value: Any) -> Any:
    """Lists for what only Python knows: generators (``| map``), ``range``, sets, dict views."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, _LAZY) and not isinstance(value, (str, bytes)):
        return check_size(list(itertools.islice(value, MAX_ITEMS + 1)), "a list")
    return value


def inspect_tree(value: Any) -> None:
    """Raise for an undefined value inside *value*, or for a tree of more than MAX_NODES nodes.

    Lists can share their items (``yaml()`` anchors, ``{% set l = [l, l] %}``): expanded they
    may be exponentially larger than in memory, so printing or returning one must be bounded.
    """
    budget = MAX_NODES
    stack = [value]
    while stack:
        item = stack.pop()
        budget -= 1
        if budget < 0:
            raise LimitError(f"the value has more than {MAX_NODES:,} nested items")
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, Undefined):
            item._fail_with_undefined_error()


def _json_default(value: Any) -> Any:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, (datetime, date)):
        return dates.iso(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (tuple, *_LAZY)):
        return materialize(list(value) if isinstance(value, tuple) else value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"a {type(value).__name__} cannot be written as JSON")


def to_json(value: Any) -> str:
    """Compact JSON of any value; datetimes as ISO-8601 (Kestra's ``toJson``)."""
    if isinstance(value, (list, tuple, dict)):
        inspect_tree(value)
    return check_size(json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":")), "JSON")


def to_text(value: Any) -> str:
    """How a value prints inside a string: true/false, '' for null, JSON for lists and maps, ISO dates."""
    if isinstance(value, str):
        return value
    if type(value) in (int, float):
        return str(value)
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (datetime, date)):
        return dates.iso(value)
    if isinstance(value, (dict, list, tuple, *_LAZY)):
        return to_json(value)
    return str(value)


# -- functions -----------------------------------------------------------------------------------

def now(timeZone: str | None = None) -> datetime:  # noqa: N803
    """The current time, timezone-aware (UTC unless a zone is given)."""
    return datetime.now(dates.zone(timeZone) or UTC)


def from_json(value: Any) -> Any:
    """Parse a JSON string; a value that is already parsed is returned as is."""
    if isinstance(value, (bytes, str)):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    return value


def from_yaml(value: Any) -> Any:
    """Parse a YAML string (safe loader only)."""
    return _yaml.safe_load(value) if isinstance(value, (bytes, str)) else value


def random_int(lower: int, upper: int) -> int:
    """A random integer in [lower, upper) as Kestra's ``randomInt``."""
    return random.randrange(int(lower), int(upper))


@pass_context
def print_context(context: Any) -> str:
    """Kestra's ``printContext()``: every variable an expression sees here, as JSON (to debug)."""
    return to_json({k: v for k, v in context.get_all().items()
                    if not callable(v) and not isinstance(v, Undefined) and v is not None})


@pass_context
def current_each_output(context: Any, outputs: Any) -> Any:
    """Kestra's ``currentEachOutput(outputs.t)``: the outputs of ``t`` for the loop iteration(s) being run."""
    taskrun = context.get("taskrun") or {}
    path = [p["taskrun"]["value"] for p in reversed(context.get("parents") or [])] + [taskrun.get("value")]
    node = outputs
    for value in path:
        if isinstance(node, Mapping) and value is not None and value in node:
            node = node[value]
    return node


GLOBALS: dict[str, Any] = {
    "printContext": print_context,
    "currentEachOutput": current_each_output,
    "now": now,
    "uuid": lambda: str(_uuid.uuid4()),
    "fromJson": from_json,
    "json": from_json,
    "yaml": from_yaml,
    "randomInt": random_int,
    "null": None,  # Kestra writes null; a global, so `x == null` and `x ?? null` work
}


# -- filters -------------------------------------------------------------------------------------

def to_yaml(value: Any) -> str:
    text = _yaml.safe_dump(json.loads(to_json(value)), default_flow_style=False, sort_keys=False, allow_unicode=True)
    return text[:-4] if text.endswith("\n...\n") else text


def _timestamp(scale: int) -> Callable[..., int]:
    """Epoch seconds (scale 1), milli- (1000), micro- or nanoseconds of a date."""
    def timestamp(value: Any, timeZone: str | None = None, existingFormat: str | None = None) -> int:  # noqa: N803
        dt = dates.to_datetime(value, timeZone, existingFormat)
        delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86400 + delta.seconds) * scale + delta.microseconds * scale // 1_000_000

    return timestamp


def keys(value: Any) -> list[Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"keys needs a map, got a {type(value).__name__}")
    return list(value.keys())


def values(value: Any) -> list[Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"values needs a map, got a {type(value).__name__}")
    return list(value.values())


def flatten(value: Iterable[Any]) -> list[Any]:
    """One level: [[1, 2], [3], 4] → [1, 2, 3, 4]."""
    out: list[Any] = []
    for item in value:
        if isinstance(item, (list, tuple)):
            out.extend(item)
        else:
            out.append(item)
    return out


def chunk(value: Iterable[Any], size: int) -> list[list[Any]]:
    size = int(size)
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    items = list(value)
    return [items[i:i + size] for i in range(0, len(items), size)]


def slugify(value: Any) -> str:
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


_NUMBER_TYPES = {"INT": int, "INTEGER": int, "LONG": int, "BIGINTEGER": int, "FLOAT": float, "DOUBLE": float,
                 "BIGDECIMAL": Decimal}


def number(value: Any, type: str | None = None) -> Any:  # noqa: A002
    """Parse a number: an int when it looks like one, else a float (or the named type)."""
    if type is not None:
        cast = _NUMBER_TYPES.get(str(type).upper())
        if cast is None:
            raise ValueError(f"unknown number type {type!r}; use one of {', '.join(_NUMBER_TYPES)}")
        return cast(str(value).strip()) if cast is not int or not isinstance(value, float) else int(value)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None


def substring_before(value: str, sep: str) -> str:
    index = value.find(sep)
    return value if index < 0 else value[:index]


def substring_after(value: str, sep: str) -> str:
    index = value.find(sep)
    return "" if index < 0 else value[index + len(sep):]


def substring_before_last(value: str, sep: str) -> str:
    index = value.rfind(sep)
    return value if index < 0 else value[:index]


def substring_after_last(value: str, sep: str) -> str:
    index = value.rfind(sep)
    return "" if index < 0 else value[index + len(sep):]


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else to_text(value).encode("utf-8")


def _hasher(name: str) -> Callable[[Any], str]:
    def digest(value: Any) -> str:
        return hashlib.new(name, _bytes(value)).hexdigest()

    digest.__name__ = name
    return digest


def base64decode(value: Any) -> str:
    try:
        return base64.b64decode(_bytes(value), validate=True).decode("utf-8")
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise ValueError(f"invalid base64 (or not UTF-8 text): {exc}") from None


def default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's default, and also for null (a Kestra optional input without value is null)."""
    if isinstance(value, Undefined) or value is None or (boolean and not value):
        return default_value
    return value


def split(value: str, delimiter: str = " ", limit: int | None = None) -> list[str]:
    """Pebble's split: ``'a,b' | split(',')``; *limit* caps the number of parts."""
    return value.split(delimiter, -1 if limit is None else max(int(limit) - 1, 0))


def replace(value: Any, old: Any, new: Any = None, count: int | None = None) -> str:
    """Jinja's replace, or Pebble's with a map of replacements: ``replace({'a': 'b'})``."""
    text = to_text(value)
    pairs = old.items() if isinstance(old, Mapping) else [(old, new)]
    for a, b in pairs:
        a, b = to_text(a), to_text(b)
        hits = (len(text) + 1) if a == "" else text.count(a)
        if len(text) + hits * max(len(b) - len(a), 0) > MAX_SIZE:
            raise LimitError("replace() would build a string too large")
        text = text.replace(a, b, -1 if count is None else int(count))
    return text


def slice_(value: Any, start: int, end: int | None = None) -> Any:
    """Pebble's slice: ``'hello' | slice(1, 3)`` → 'el' (Jinja's column slicing is not available)."""
    return value[int(start):None if end is None else int(end)]


def merge(value: Any, other: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(other, Mapping):
        return {**value, **other}
    return [*value, *other]


def abbreviate(value: Any, length: int) -> str:
    text, length = to_text(value), int(length)
    if len(text) <= length:
        return text
    return text[:max(length - 3, 0)] + "..." if length > 3 else text[:length]


def nindent(value: Any, width: int = 4) -> str:
    return "\n" + _indent(value, width, first=True)


def _indent(value: Any, width: Any = 4, first: bool = False, blank: bool = False) -> str:
    text = to_text(value)
    size = len(width) if isinstance(width, str) else int(width)
    if size * (text.count("\n") + 1) + len(text) > MAX_SIZE:
        raise LimitError("indent() would build a string too large")
    return jinja_filters.do_indent(text, width if isinstance(width, str) else " " * size, first=first, blank=blank)


def _center(value: Any, width: int = 80) -> str:
    if int(width) > MAX_SIZE:
        raise LimitError("center() width too large")
    return to_text(value).center(int(width))


#: Characters wordwrap() takes: textwrap costs seconds per megabyte at small widths.
WORDWRAP_MAX = 100_000


def _wordwrap(value: Any, width: int = 79, break_long_words: bool = True, wrapstring: str | None = None,
              break_on_hyphens: bool = True) -> str:
    text = to_text(value)
    if len(text) > WORDWRAP_MAX:
        raise LimitError(f"wordwrap() takes at most {WORDWRAP_MAX:,} characters, got {len(text):,}")
    if int(width) < 1:
        raise LimitError("wordwrap() width must be at least 1")
    return jinja_filters.do_wordwrap(_NEWLINE_ONLY, text, int(width), break_long_words,  # type: ignore[arg-type]
                                     wrapstring, break_on_hyphens)


class _NewlineOnly:
    """What do_wordwrap reads of the Jinja environment: its newline sequence."""

    newline_sequence = "\n"


_NEWLINE_ONLY = _NewlineOnly()


def _join(value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = list(value)
    if attribute is not None:
        items = [item[attribute] if isinstance(item, Mapping) else getattr(item, str(attribute), None)
                 for item in items]
    texts, separator = [to_text(i) for i in items], to_text(d)
    if sum(map(len, texts)) + len(separator) * len(texts) > MAX_SIZE:
        raise LimitError("join() would build a string too large")
    return separator.join(texts)


def _batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
    if fill_with is not None and int(linecount) > 100_000:
        raise LimitError("batch() with fill_with is limited to 100,000 items per batch")
    return jinja_filters.do_batch(value, int(linecount), fill_with)


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    if re.search(r"\d{7,}", value):
        raise LimitError("format width or precision too large")
    return check_size(jinja_filters.do_format(value, *args, **kwargs), "format()")


@functools.lru_cache(maxsize=512)
def _jq_program(program: str) -> Any:
    import jq as _jq  # the real jq (C library bindings), imported on first use

    try:
        return _jq.compile(program)
    except ValueError as exc:
        raise ValueError(str(exc).replace("jq: error: ", "", 1).strip()) from None


def jq(value: Any, program: str) -> list[Any]:
    """Run a jq program; like Kestra's, returns the list of results (``| first`` for one)."""
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    compiled = _jq_program(str(program))
    try:
        results = itertools.islice(iter(compiled.input_text(to_json(value))), MAX_ITEMS + 1)
        return check_size(list(results), "jq results")  # a generator like `repeat(1)` stops here
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("jq: error")) from None


def _str_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    """Filters on text accept any value, printed as in a string."""
    @functools.wraps(func)
    def wrapper(value: Any, *args: Any) -> Any:
        return func(to_text(value), *(to_text(a) for a in args))
    return wrapper


FILTERS: dict[str, Callable[..., Any]] = {
    "json": to_json,
    "toJson": to_json,
    "tojson": to_json,
    "string": to_text,
    "fromJson": from_json,
    "yaml": to_yaml,
    "date": dates.format_date,
    "dateAdd": dates.date_add,
    "timestamp": _timestamp(1),
    "timestampMilli": _timestamp(1_000),
    "timestampMicro": _timestamp(1_000_000),
    "timestampNano": _timestamp(1_000_000_000),
    "keys": keys,
    "values": values,
    "flatten": flatten,
    "chunk": chunk,
    "slugify": slugify,
    "number": number,
    "startsWith": _str_filter(str.startswith),
    "endsWith": _str_filter(str.endswith),
    "substringBefore": _str_filter(substring_before),
    "substringAfter": _str_filter(substring_after),
    "substringBeforeLast": _str_filter(substring_before_last),
    "substringAfterLast": _str_filter(substring_after_last),
    "base64encode": lambda v: base64.b64encode(_bytes(v)).decode("ascii"),
    "base64decode": base64decode,
    "md5": _hasher("md5"),
    "sha1": _hasher("sha1"),
    "sha256": _hasher("sha256"),
    "sha512": _hasher("sha512"),
    "urldecode": lambda v: unquote_plus(to_text(v)),
    "jq": jq,
    "default": default,
    "d": default,
    "split": split,
    "replace": replace,
    "slice": slice_,
    "merge": merge,
    "abbreviate": abbreviate,
    "indent": _indent,
    "nindent": nindent,
    "center": _center,
    "wordwrap": _wordwrap,
    "join": _join,
    "format": _format,
    "batch": _batch,
    "rsort": lambda v: sorted(v, reverse=True),
}

#: Jinja filters dropped: repr-based or HTML-only, useless in flows and a needless surface.
REMOVED_FILTERS = ("pprint", "urlize", "xmlattr", "safe", "forceescape")


def _is_json(value: Any) -> bool:
    if not isinstance(value, (str, bytes)):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


TESTS: dict[str, Callable[..., bool]] = {
    "json": _is_json,
    "null": lambda v: v is None,
    "empty": lambda v: v is None or (hasattr(v, "__len__") and len(v) == 0),
    "map": lambda v: isinstance(v, Mapping),
}
