"""What every conversion shares: the ``from`` file, the streamed copy into a working file, the
upload of the result, cancellation between rows, and Kestra's date patterns."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from tiercel import RunContext, StorageError, Task, TaskError

KESTRA = "io.kestra.plugin.serdes"


class Convert(Task):
    """Base of the conversions: read ``from``, write a new internal-storage file, output its ``uri``."""

    from_: str = Field(alias="from", description="The `tiercel://` file to convert (a task's output).")

    extension: ClassVar[str] = ".ion"

    def target_extension(self) -> str:
        return self.extension

    def convert(self, ctx: RunContext, source: Path, target: Path) -> int:
        """Convert *source* into *target*; return how many rows were written."""
        raise NotImplementedError

    def run(self, ctx: RunContext) -> dict[str, Any]:  # blocking: the worker runs it in a thread
        source = ctx.working_dir / "source"
        try:
            with ctx.open_file(self.from_) as stream, open(source, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
        except (FileNotFoundError, ValueError, StorageError) as exc:
            raise TaskError(f"`from`: cannot read {self.from_} ({exc})") from None
        target = ctx.working_dir / f"{Path(self.from_).stem or 'data'}{self.target_extension()}"
        try:
            count = self.convert(ctx, source, target)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise TaskError(f"{self.type}: cannot convert {self.from_}: {exc}") from None
        ctx.metric("records", count)
        return {"uri": ctx.put_file(target, target.name), "size": count}


def watched(ctx: RunContext, rows: Iterator[Any], every: int = 1000) -> Iterator[Any]:
    """*rows*, stopping with ``CancelledError`` once the run is killed or timed out."""
    import asyncio

    for n, row in enumerate(rows):
        if n % every == 0 and ctx.cancelled:
            raise asyncio.CancelledError
        yield row


_JAVA = [
    ("yyyy", "%Y"),
    ("yy", "%y"),
    ("MMMM", "%B"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("hh", "%I"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("SSSSSS", "%f"),
    ("SSS", "%f"),
    ("a", "%p"),
    ("XXX", "%:z"),
    ("Z", "%z"),
    ("EEEE", "%A"),
    ("EEE", "%a"),
]
_TOKEN = re.compile("|".join(re.escape(j) for j, _ in _JAVA) + r"|'[^']*'")


def strftime_pattern(java: str) -> tuple[str, bool]:
    """A Java ``DateTimeFormatter`` pattern (``yyyy-MM-dd HH:mm:ss.SSS``) as strftime, and whether it
    asks for milliseconds (``SSS``, cut from Python's microseconds)."""
    table = dict(_JAVA)

    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        return token[1:-1].replace("%", "%%") if token.startswith("'") else table[token]

    return _TOKEN.sub(sub, java), "SSS" in java and "SSSSSS" not in java


def format_date(value: Any, java: str) -> str:
    pattern, millis = strftime_pattern(java)
    text = value.strftime(pattern.replace("%f", "<<F>>"))
    fraction = f"{value.microsecond:06d}"[: 3 if millis else 6] if hasattr(value, "microsecond") else ""
    return text.replace("<<F>>", fraction)
