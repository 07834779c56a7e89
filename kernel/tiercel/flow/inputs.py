"""Turn raw input values (``-i key=value`` strings, or JSON from the API) into typed inputs.

Values stay JSON-friendly: dates, times and durations are normalised ISO-8601 strings,
files are ``tiercel://`` URIs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tiercel.api import is_expression
from tiercel.flow.errors import did_you_mean

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InputError(ValueError):
    """Input values that do not fit the flow; the message names each bad input and why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ExecutionBlocked(InputError):
    """A flow's ``checks`` refused to create the execution (behavior BLOCK_EXECUTION)."""


class _Bad(Exception):
    pass


def _got(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(kind: str, value: Any) -> _Bad:
    return _Bad(f"expected {kind}, got {_got(value)}")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise _bad("INT", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _bad("INT", value)


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise _bad("FLOAT", value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _bad("FLOAT", value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _bad("BOOLEAN (true or false)", value)


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _bad("a string", value)


def _datetime(value: Any) -> str:
    try:
        parsed = datetime.fromisoformat(_string(value).strip())
    except ValueError:
        raise _bad("DATETIME (ISO-8601, e.g. 2024-01-31T10:00:00Z)", value) from None
    return parsed.isoformat()


def _date(value: Any) -> str:
    try:
        return date.fromisoformat(_string(value).strip()).isoformat()
    except ValueError:
        raise _bad("DATE (ISO-8601, e.g. 2024-01-31)", value) from None


def _time(value: Any) -> str:
    try:
        return time.fromisoformat(_string(value).strip()).isoformat()
    except ValueError:
        raise _bad("TIME (ISO-8601, e.g. 10:30:00)", value) from None


def parse_duration(value: Any):  # -> timedelta
    """An ISO-8601 duration (``PT30S``) as a timedelta."""
    from datetime import timedelta

    from pydantic import TypeAdapter, ValidationError

    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str) or not value.strip().upper().startswith(("P", "-P")):
        raise _bad("DURATION (ISO-8601, e.g. PT30S)", value)
    try:
        return TypeAdapter(timedelta).validate_python(value.strip())
    except ValidationError:
        raise _bad("DURATION (ISO-8601, e.g. PT30S)", value) from None


def _duration(value: Any) -> str:
    parse_duration(value)
    return value.strip()


def _uri(value: Any) -> str:
    text = _string(value)
    parsed = urlparse(text)
    if not parsed.scheme or not (parsed.netloc or parsed.path):
        raise _bad("URI (e.g. https://example.com/x)", value)
    return text


def _email(value: Any) -> str:
    text = _string(value)
    if not EMAIL.match(text):
        raise _bad("EMAIL", value)
    return text


#: A JSON or YAML input holds at most this many values once YAML aliases are expanded, nested at most
#: MAX_DEPTH deep: a 300-byte "billion laughs" document must not become a 500 MB execution row.
MAX_NODES = 100_000
MAX_DEPTH = 64
#: Seconds an input's ``validator`` regex may run on one value (``regex``'s timeout: no catastrophic backtracking).
VALIDATOR_TIMEOUT = 0.25


def _bounded(kind: str, value: Any) -> Any:
    """*value* if it is small enough once expanded, else ``_Bad`` (stops counting at the limit)."""
    count, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise _Bad(f"the {kind} value is too large: more than {MAX_NODES} values (aliases expanded)")
        if depth > MAX_DEPTH:
            raise _Bad(f"the {kind} value is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            count += len(item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise _Bad(f"invalid JSON: {exc}") from None
        except RecursionError:
            raise _Bad(f"the JSON value is nested deeper than {MAX_DEPTH} levels") from None
    return _bounded("JSON", value)


def _yaml(value: Any) -> Any:
    if isinstance(value, str):
        import yaml

        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise _Bad(f"invalid YAML: {str(exc).splitlines()[0]}") from None
        except RecursionError:
            raise _Bad(f"the YAML value is nested deeper than {MAX_DEPTH} levels") from None
    return _bounded("YAML", value)


SCALARS: dict[str, Callable[[Any], Any]] = {
    "STRING": _string, "SECRET": _string, "INT": _int, "FLOAT": _float, "BOOLEAN": _bool,
    "DATETIME": _datetime, "DATE": _date, "TIME": _time, "DURATION": _duration, "URI": _uri,
    "EMAIL": _email, "JSON": _json, "YAML": _yaml,
}


def _list(value: Any) -> list[Any]:
    """A list from a list, a JSON array string, or a comma-separated string."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError as exc:
                raise _Bad(f"invalid JSON array: {exc}") from None
            except RecursionError:
                raise _Bad(f"the JSON array is nested deeper than {MAX_DEPTH} levels") from None
            if isinstance(parsed, list):
                return _bounded("JSON", parsed)
        return [part.strip() for part in text.split(",")] if text else []
    raise _bad("a list", value)


def _choices(spec: Any) -> list[str] | None:
    values = spec.values if spec.values is not None else getattr(spec, "options", None)
    if values is None or isinstance(values, str):  # an expression: checked when rendered
        return None
    return list(values)


def coerce(spec: Any, value: Any, upload: Callable[[str], str] | None = None) -> Any:
    """The typed value of input *spec* for *value*; raise ``_Bad`` with the reason."""
    kind = spec.type
    if kind in ("SELECT", "ENUM"):
        text = _string(value)
        choices = _choices(spec)
        if choices is not None and not spec.allowCustomValue and text not in choices:
            raise _Bad(f"{_got(text)} is not one of {', '.join(choices)}")
        return text
    if kind == "MULTISELECT":
        items = [SCALARS[spec.itemType](v) for v in _list(value)]
        choices = _choices(spec)
        if choices is not None and not spec.allowCustomValue:
            wrong = [v for v in items if str(v) not in choices]
            if wrong:
                raise _Bad(f"{_got(wrong[0])} is not one of {', '.join(choices)}")
        return items
    if kind == "ARRAY":
        out = []
        for i, item in enumerate(_list(value)):
            try:
                out.append(SCALARS[spec.itemType](item))
            except _Bad as exc:
                raise _Bad(f"item {i}: {exc}") from None
        return out
    if kind == "FILE":
        return _file(spec, value, upload)
    result = SCALARS[kind](value)
    _check_bounds(spec, result)
    return result


def _check_bounds(spec: Any, value: Any) -> None:
    kind = spec.type
    if kind in ("STRING", "SECRET") and spec.validator:
        import regex

        shown = "the value" if kind == "SECRET" else _got(value)
        try:
            matched = regex.fullmatch(spec.validator, value, timeout=VALIDATOR_TIMEOUT)
        except TimeoutError:
            raise _Bad(f"the validator {spec.validator} took over {VALIDATOR_TIMEOUT} s on {shown}: simplify it "
                       f"(nested alternatives such as (a|aa)+ backtrack)") from None
        if not matched:
            raise _Bad(f"{shown} does not match the validator {spec.validator}")
    if kind in ("INT", "FLOAT", "DURATION"):
        compared = parse_duration(value) if kind == "DURATION" else value
        if spec.min is not None and compared < spec.min:
            raise _Bad(f"{_got(value)} is below the minimum {_bound(spec.min)}")
        if spec.max is not None and compared > spec.max:
            raise _Bad(f"{_got(value)} is above the maximum {_bound(spec.max)}")
    if kind in ("DATETIME", "DATE", "TIME"):
        parse = {"DATETIME": datetime.fromisoformat, "DATE": date.fromisoformat, "TIME": time.fromisoformat}[kind]
        current = parse(value)
        for limit, name in ((spec.after, "after"), (spec.before, "before")):
            if limit is None or is_expression(limit):
                continue
            try:
                bound = parse(limit)
                later = current > bound if name == "after" else current < bound
            except (ValueError, TypeError):
                continue
            if not later:
                raise _Bad(f"{_got(value)} must be {name} {limit}")


def _bound(value: Any) -> str:
    from datetime import timedelta

    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    return str(value)


def _file(spec: Any, value: Any, upload: Callable[[str], str] | None) -> str:
    """A ``tiercel://`` URI; a local path only where the caller uploads it (``tiercel run``), never from a
    trigger, an API call or a subflow: nobody may make the server read its own files, or learn which exist."""
    text = _string(value)
    if text.startswith("tiercel://"):
        return text
    if upload is None:
        raise _Bad("a FILE input here must be a tiercel:// URI (upload the file; local paths are taken only by "
                   "`tiercel run`)")
    path = Path(text.removeprefix("file://")).expanduser()
    if spec.extension and not path.name.endswith(spec.extension):
        raise _Bad(f"file {_got(text)} must end with {spec.extension}")
    if not path.is_file():
        raise _Bad(f"no such file: {text}")
    try:
        return upload(str(path))
    except Exception as exc:  # storage refused it: report it with the input's name
        raise _Bad(f"cannot upload {text}: {exc}") from None


def check_default(spec: Any) -> str | None:
    """Why the declared default of *spec* is invalid, or None (expressions are not checked)."""
    if spec.type == "FILE" or (isinstance(spec.defaults, str) and is_expression(spec.defaults)):
        return None
    try:
        coerce(spec, spec.defaults)
    except _Bad as exc:
        return str(exc)
    except Exception as exc:  # a value the coercions did not foresee
        return f"{type(exc).__name__}: {exc}"
    return None


def resolve_inputs(flow: Any, raw: dict[str, Any] | None, upload: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Typed inputs of an execution of *flow* from *raw* values; raise :class:`InputError`.

    Missing values take the input's ``defaults``; an optional input with neither is None.
    A FILE value that is a local path is uploaded with ``upload(path) -> uri``.
    """
    raw = dict(raw or {})
    problems: list[str] = []
    result: dict[str, Any] = {}
    known = [spec.id for spec in flow.inputs]
    for name in raw:
        if name not in known:
            hint = did_you_mean(name, known)
            problems.append(f"unknown input `{name}`" + (f" ({hint})" if hint else "")
                            + (f"; the flow takes {', '.join(known)}" if known else "; the flow takes no inputs"))
    for spec in flow.inputs:
        if spec.id in raw and raw[spec.id] is not None:
            value = raw[spec.id]
        elif spec.defaults is not None:
            value = spec.defaults
        elif spec.required:
            problems.append(f"missing required input `{spec.id}` ({spec.type})")
            continue
        else:
            result[spec.id] = None
            continue
        if isinstance(value, str) and is_expression(value) and spec.id not in raw:
            result[spec.id] = value  # an expression default, rendered by the engine
            continue
        try:
            result[spec.id] = coerce(spec, value, upload)
        except _Bad as exc:
            problems.append(f"input `{spec.id}`: {exc}")
    if problems:
        raise InputError(problems)
    return result
