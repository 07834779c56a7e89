"""How a Tiercel process logs: readable lines (the default) or JSON lines (``--log-format json``).

A JSON line carries ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, and the ids
the record knows, under Kestra's names: ``executionId``, ``namespace``, ``flowId``, ``taskId``,
``taskRunId``, ``attemptNumber``, ``state``, ``triggerId``. In JSON mode the log lines of tasks
(what ``tiercel executions logs`` shows) are written to stderr too, by the logger ``tiercel.task``,
so a log shipper that reads the process's output gets every line of every run with its ids.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"
#: record attribute (as passed in ``extra=``) -> JSON key
IDS = {"execution_id": "executionId", "namespace": "namespace", "flow_id": "flowId", "task_id": "taskId",
       "task_run_id": "taskRunId", "attempt": "attemptNumber", "state": "state", "trigger_id": "triggerId"}
TASK_LOGGER = "tiercel.task"
_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
           "WARNING": logging.WARNING, "ERROR": logging.ERROR}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for attr, key in IDS.items():
            value = record.__dict__.get(attr)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup(level: str = "INFO", fmt: str | None = None, stream: Any = None) -> str:
    """Configure the root logger of a process; *fmt* ``text`` or ``json`` (default ``TIERCEL_LOG_FORMAT`` or text).

    Returns the format used.
    """
    fmt = (fmt or os.environ.get("TIERCEL_LOG_FORMAT") or "text").lower()
    if fmt not in FORMATS:
        raise ValueError(f"log format `{fmt}`: expected one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    global _task_lines
    _task_lines = fmt == "json"
    return fmt


_task_lines = False


def task_lines() -> bool:
    """Whether task log lines go to the process log too (JSON mode)."""
    return _task_lines


def task_line(execution: Any, task_run: Any, attempt: int | None, level: str, message: str) -> None:
    """Write one task log line to the process log, with its ids."""
    logger = logging.getLogger(TASK_LOGGER)
    number = _LEVELS.get(level, logging.INFO)
    if not logger.isEnabledFor(number):
        return
    logger.log(number, "%s", message, extra={
        "execution_id": execution.id if execution is not None else None,
        "namespace": execution.namespace if execution is not None else None,
        "flow_id": execution.flow_id if execution is not None else None,
        "task_id": task_run.task_id if task_run is not None else None,
        "task_run_id": task_run.id if task_run is not None else None, "attempt": attempt})
