"""``from kestra import Kestra`` for scripts written for Kestra (its PyPI ``kestra`` library's API).

``scripts.Python`` puts this file on the script's PYTHONPATH as the module ``kestra``; each call
prints the ``::{json}::`` line the script tasks read. Standard library only.

    from kestra import Kestra

    Kestra.outputs({"rows": 42})             # outputs.<task id>.vars.rows
    Kestra.counter("rows", 42, {"table": "users"})
    Kestra.timer("load", 1.25)               # seconds, or a callable that is timed
    Kestra.logger().info("half way there")
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Kestra"]

_LEVELS = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN", logging.ERROR: "ERROR",
           logging.CRITICAL: "ERROR"}


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        level = _LEVELS.get(record.levelno, "TRACE" if record.levelno < logging.DEBUG else "INFO")
        Kestra._send({"logs": [{"level": level, "message": self.format(record)}]})


class Kestra:
    """Outputs, metrics and logs of a script, as Kestra's ``Kestra`` class sends them."""

    _logger: logging.Logger | None = None

    @staticmethod
    def _send(payload: dict[str, Any]) -> None:
        sys.stdout.write("::" + json.dumps(payload, default=str, separators=(",", ":")) + "::\n")
        sys.stdout.flush()

    @staticmethod
    def _metrics(name: str, type_: str, value: float, tags: dict[str, Any] | None = None) -> None:
        Kestra._send({"metrics": [{"name": name, "type": type_, "value": value,
                                   "tags": {k: str(v) for k, v in (tags or {}).items()}}]})

    @staticmethod
    def outputs(map_: dict[str, Any]) -> None:
        """Publish output values, read as ``outputs.<task id>.vars.<name>``."""
        Kestra._send({"outputs": map_})

    @staticmethod
    def counter(name: str, value: float, tags: dict[str, Any] | None = None) -> None:
        """Record a counter metric."""
        Kestra._metrics(name, "counter", value, tags)

    @staticmethod
    def timer(name: str, duration: float | Callable[[], Any], tags: dict[str, Any] | None = None) -> None:
        """Record a duration in seconds; given a callable, call it and record how long it took."""
        if callable(duration):
            start = time.perf_counter()
            duration()
            duration = time.perf_counter() - start
        Kestra._metrics(name, "timer", duration, tags)

    @staticmethod
    def logger() -> logging.Logger:
        """A logger whose records become the task's log lines, at their level."""
        if Kestra._logger is None:
            logger = logging.getLogger("kestra.script")
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            logger.addHandler(_Handler())
            Kestra._logger = logger
        return Kestra._logger
