"""Ion text, one value a line: Kestra's internal row format, read and written as a stream."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any


def read(stream: IO[bytes]) -> Iterator[Any]:
    """Each top-level value of an Ion stream (text or binary) as plain Python, lazily."""
    from amazon.ion import simpleion

    for value in simpleion.load(stream, single_value=False, parse_eagerly=False):
        yield plain(value)


_SCALARS = (str, int, float, bool, type(None))


def plain(value: Any) -> Any:
    """An Ion value as plain Python: dict, list, str, int, float, Decimal, bool, None, datetime, bytes."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    convert = _PLAIN.get(kind.__name__)
    if convert is None:
        return value
    return None if getattr(value, "is_null", False) else convert(value)


_PLAIN: dict[str, Any] = {
    "IonPyDict": lambda v: {str(k): plain(x) for k, x in v.items()},
    "IonPyList": lambda v: [plain(x) for x in v],
    "IonPyText": str,
    "IonPySymbol": lambda v: v.text,
    "IonPyBool": bool,
    "IonPyInt": int,
    "IonPyFloat": float,
    "IonPyDecimal": Decimal,
    "IonPyNull": lambda v: None,
    "IonPyTimestamp": lambda v: dt.datetime.fromisoformat(v.isoformat()),
    "IonPyBytes": bytes,
}


def write(rows: Iterator[Any], stream: IO[bytes]) -> int:
    """Write each row as one Ion text line; return how many."""
    from amazon.ion import simpleion

    count = 0
    for row in rows:
        stream.write(simpleion.dumps(ionable(row), binary=False, omit_version_marker=True).encode())
        stream.write(b"\n")
        count += 1
    return count


def ionable(value: Any) -> Any:
    """Values Ion has no type for, in a form it has: dates become timestamps at midnight, times strings."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, dict):
        if all(type(v) in _SCALARS for v in value.values()):
            return value
        return {str(k): ionable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [ionable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.time):
        return value.isoformat()
    return value


def jsonable(value: Any) -> Any:
    """A row as JSON values: timestamps in ISO-8601, decimals as numbers, bytes in base64."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value
