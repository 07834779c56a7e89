"""Dates for expressions: parse what flows carry (datetimes, ISO strings, epoch seconds), format like Kestra."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["to_datetime", "format_date", "date_add", "iso", "zone"]

UTC = UTC


def zone(name: str | None) -> Any:
    """A tzinfo for a zone id (``Europe/Paris``, ``UTC``, ``+02:00``); None for None."""
    if name is None:
        return None
    if name in ("UTC", "Z", "GMT"):
        return UTC
    offset = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3))))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA id such as Europe/Paris, or UTC)") from None


def iso(value: datetime | date) -> str:
    """ISO-8601 with ``Z`` for UTC: 2024-01-31T10:00:00Z."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def to_datetime(value: Any, time_zone: str | None = None, existing_format: str | None = None) -> datetime:
    """A timezone-aware datetime from a datetime, date, ISO string or epoch seconds (naive means UTC)."""
    if isinstance(value, datetime):
        result = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        result = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        text = value.strip()
        if existing_format:
            result = datetime.strptime(text, _to_strptime(existing_format))
        else:
            text = re.sub(r"\[[^\]]*\]$", "", text)  # Java's ZonedDateTime suffix: 2024-01-01T00:00Z[UTC]
            try:
                result = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO-8601 date; pass existingFormat to parse it") from None
        if result.tzinfo is None:
            result = result.replace(tzinfo=UTC)
    else:
        raise ValueError(f"cannot read a date from a {type(value).__name__} ({value!r})")
    if time_zone is not None:
        result = result.astimezone(zone(time_zone))
    return result


# -- formatting ---------------------------------------------------------------------------------

_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = [""] + [calendar.month_name[i] for i in range(1, 13)]


def _offset(dt: datetime, colon: bool, z: bool) -> str:
    delta = dt.utcoffset() or timedelta(0)
    if z and not delta:
        return "Z"
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{mins:02d}"


def _field(letter: str, count: int, dt: datetime) -> str:
    if letter in "yu":
        return f"{dt.year % 100:02d}" if count == 2 else f"{dt.year:0{count}d}"
    if letter in "ML":
        if count >= 4:
            return _MONTHS[dt.month]
        if count == 3:
            return _MONTHS[dt.month][:3]
        return f"{dt.month:0{count}d}"
    if letter == "d":
        return f"{dt.day:0{count}d}"
    if letter == "D":
        return f"{dt.timetuple().tm_yday:0{count}d}"
    if letter == "H":
        return f"{dt.hour:0{count}d}"
    if letter == "h":
        return f"{(dt.hour % 12) or 12:0{count}d}"
    if letter == "k":
        return f"{dt.hour or 24:0{count}d}"
    if letter == "K":
        return f"{dt.hour % 12:0{count}d}"
    if letter == "m":
        return f"{dt.minute:0{count}d}"
    if letter == "s":
        return f"{dt.second:0{count}d}"
    if letter == "S":
        return f"{dt.microsecond:06d}000"[:count]
    if letter == "a":
        return "AM" if dt.hour < 12 else "PM"
    if letter == "E":
        name = _DAYS[dt.weekday()]
        return name if count >= 4 else name[:3]
    if letter == "X":
        return _offset(dt, colon=count >= 3, z=True)
    if letter == "x":
        return _offset(dt, colon=count >= 3, z=False)
    if letter == "Z":
        return _offset(dt, colon=count == 5, z=count == 5)
    if letter == "z":
        return dt.tzname() or ""
    if letter == "V":
        return getattr(dt.tzinfo, "key", None) or dt.tzname() or ""
    raise ValueError(f"unsupported date pattern letter {letter!r}")


_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.S)


def _java_format(dt: datetime, pattern: str) -> str:
    out = []
    for match in _TOKEN.finditer(pattern):
        token = match.group(0)
        if token.startswith("'"):
            out.append(token[1:-1].replace("''", "'") if len(token) > 2 else "'")
        elif token[0].isalpha():
            out.append(_field(token[0], len(token), dt))
        else:
            out.append(token)
    return "".join(out)


_STRPTIME = {"yyyy": "%Y", "uuuu": "%Y", "yy": "%y", "MMMM": "%B", "MMM": "%b", "MM": "%m", "M": "%m", "dd": "%d",
             "d": "%d", "HH": "%H", "H": "%H", "hh": "%I", "h": "%I", "mm": "%M", "ss": "%S", "a": "%p",
             "EEEE": "%A", "EEE": "%a", "XXX": "%z", "XX": "%z", "X": "%z", "Z": "%z", "xxx": "%z", "z": "%Z"}


def _to_strptime(pattern: str) -> str:
    """A Java pattern (or a strptime one) as a strptime format, for ``existingFormat``."""
    if "%" in pattern:
        return pattern
    out = []
    for match in _TOKEN.finditer(pattern):
        token = match.group(0)
        if token.startswith("'"):
            out.append((token[1:-1].replace("''", "'") if len(token) > 2 else "'").replace("%", "%%"))
        elif token[0] == "S":
            out.append("%f")
        elif token[0].isalpha():
            if token not in _STRPTIME:
                raise ValueError(f"unsupported pattern {token!r} in existingFormat")
            out.append(_STRPTIME[token])
        else:
            out.append(token.replace("%", "%%"))
    return "".join(out)


def _frac(dt: datetime) -> str:
    return f".{dt.microsecond:06d}" if dt.microsecond else ""


_NAMED = {
    "iso": lambda d: _java_format(d, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"),
    "iso_sec": lambda d: _java_format(d, "yyyy-MM-dd'T'HH:mm:ssXXX"),
    "sql": lambda d: _java_format(d, "yyyy-MM-dd HH:mm:ss.SSSSSS"),
    "sql_seq": lambda d: _java_format(d, "yyyy-MM-dd HH:mm:ss"),
    "iso_date_time": iso,
    "iso_zoned_date_time": iso,
    "iso_offset_date_time": iso,
    "iso_local_date_time": lambda d: d.replace(tzinfo=None).isoformat(),
    "iso_instant": lambda d: iso(d.astimezone(UTC)),
    "iso_date": lambda d: d.date().isoformat() + _offset(d, colon=True, z=True),
    "iso_local_date": lambda d: d.date().isoformat(),
    "iso_time": lambda d: d.strftime("%H:%M:%S") + _frac(d) + _offset(d, colon=True, z=True),
    "iso_offset_time": lambda d: d.strftime("%H:%M:%S") + _frac(d) + _offset(d, colon=True, z=True),
    "iso_local_time": lambda d: d.strftime("%H:%M:%S") + _frac(d),
    "iso_ordinal_date": lambda d: f"{d.year:04d}-{d.timetuple().tm_yday:03d}" + _offset(d, colon=True, z=True),
    "iso_week_date": lambda d: "{:04d}-W{:02d}-{}".format(*d.isocalendar()) + _offset(d, colon=True, z=True),
    "rfc_1123_date_time": lambda d: (f"{_DAYS[d.weekday()][:3]}, {d.day} {_MONTHS[d.month][:3]} {d.year} "
                                     f"{d:%H:%M:%S} " + ("GMT" if not d.utcoffset() else _offset(d, False, False))),
}
NAMED_FORMATS = tuple(_NAMED)


def format_date(value: Any, format: str = "iso", timeZone: str | None = None,  # noqa: A002, N803
                existingFormat: str | None = None) -> str:  # noqa: N803
    """Kestra's ``date`` filter: a named format, a Java pattern (yyyy-MM-dd) or a strftime one (%Y-%m-%d)."""
    dt = to_datetime(value, timeZone, existingFormat)
    named = _NAMED.get(format)
    if named:
        return named(dt)
    if "%" in format:
        return dt.strftime(format)
    return _java_format(dt, format)


_UNITS = {"NANOS": 1e-9, "MICROS": 1e-6, "MILLIS": 1e-3, "SECONDS": 1, "MINUTES": 60, "HOURS": 3600,
          "HALF_DAYS": 43200, "DAYS": 86400, "WEEKS": 604800}


def date_add(value: Any, amount: int, unit: str, format: str | None = None,  # noqa: A002
             timeZone: str | None = None, existingFormat: str | None = None) -> Any:  # noqa: N803
    """Kestra's ``dateAdd``: add *amount* of a ChronoUnit; days keep the wall-clock time across DST."""
    dt = to_datetime(value, timeZone, existingFormat)
    name = str(unit).upper()
    if name in ("MONTHS", "YEARS", "DECADES", "CENTURIES"):
        months = int(amount) * {"MONTHS": 1, "YEARS": 12, "DECADES": 120, "CENTURIES": 1200}[name]
        year, month = divmod(dt.month - 1 + months, 12)
        year += dt.year
        day = min(dt.day, calendar.monthrange(year, month + 1)[1])
        result = dt.replace(year=year, month=month + 1, day=day)
    elif name in ("DAYS", "WEEKS"):
        result = dt + timedelta(days=int(amount) * (7 if name == "WEEKS" else 1))
    elif name in _UNITS:
        result = (dt.astimezone(UTC) + timedelta(seconds=amount * _UNITS[name])).astimezone(dt.tzinfo)
    else:
        raise ValueError(f"unknown unit {unit!r}; use one of {', '.join([*_UNITS, 'MONTHS', 'YEARS'])}")
    return format_date(result, format) if format else result
