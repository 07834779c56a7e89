"""Send outputs, metrics and logs from a Python script to Tiercel.

Each call prints one ``::{json}::`` line on stdout, the convention the script tasks read
(Kestra's, so scripts written for it keep working). Standard library only: ``scripts.Python``
puts this module on the script's ``PYTHONPATH``, whatever environment the script runs in.

    from tiercel_scripts.helper import outputs, counter, timer, log

    outputs(rows=42, status="ok")      # read as outputs.<task id>.vars.rows
    counter("rows", 42, table="users")
    timer("load", 1.25)
    log("half way there", level="WARN")
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["outputs", "metric", "counter", "timer", "log"]


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write("::" + json.dumps(payload, default=str, separators=(",", ":")) + "::\n")
    sys.stdout.flush()


def outputs(values: dict[str, Any] | None = None, /, **more: Any) -> None:
    """Publish output values, merged into ``outputs.<task id>.vars``."""
    _emit({"outputs": {**(values or {}), **more}})


def metric(name: str, value: float, type: str = "counter", **tags: str) -> None:
    """Record a metric of this task run: ``counter`` (a count) or ``timer`` (seconds)."""
    _emit({"metrics": [{"name": name, "type": type, "value": value, "tags": {k: str(v) for k, v in tags.items()}}]})


def counter(name: str, value: float = 1, **tags: str) -> None:
    """Record a counter metric."""
    metric(name, value, "counter", **tags)


def timer(name: str, seconds: float, **tags: str) -> None:
    """Record a duration in seconds."""
    metric(name, seconds, "timer", **tags)


def log(message: str, level: str = "INFO") -> None:
    """Write a log line at *level* (TRACE, DEBUG, INFO, WARN or ERROR) in the task's logs."""
    _emit({"logs": [{"level": level.upper(), "message": str(message)}]})
