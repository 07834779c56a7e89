"""The ``::{json}::`` line protocol: outputs, metrics and logs written by a script.

A line that is exactly ``::`` + a JSON object + ``::`` is an instruction, not a log line:
``{"outputs": {...}}`` merges into the task's ``vars`` output, ``{"metrics": [...]}``
records metrics and ``{"logs": [...]}`` writes log lines at their level. Any other line is
logged as it is. A malformed instruction gets a warning and the script goes on.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from tiercel import RunContext

LINE = re.compile(r"^::(\{.*\})::$")
LEVELS = {"TRACE": 5, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
          "WARNING": logging.WARNING, "ERROR": logging.ERROR}
METRIC_TYPES = ("counter", "timer", "gauge")


class LineReader:
    """Turns a script's stdout and stderr lines into logs, outputs and metrics as they come."""

    def __init__(self, ctx: RunContext, stderr_level: int) -> None:
        self.ctx = ctx
        self.stderr_level = stderr_level
        self.vars: dict[str, Any] = {}

    def stdout(self, line: str) -> None:
        if not self._instruction(line):
            self.ctx.logger.info(line)

    def stderr(self, line: str) -> None:
        if not self._instruction(line):
            self.ctx.logger.log(self.stderr_level, line)

    def _instruction(self, line: str) -> bool:
        """Apply *line* if it is a ``::{json}::`` line; False when it is an ordinary line."""
        match = LINE.match(line.strip())
        if match is None:
            return False
        try:
            data = json.loads(match.group(1))
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            for key, value in data.items():
                apply = {"outputs": self._outputs, "metrics": self._metrics, "logs": self._logs}.get(key)
                if apply is None:
                    raise ValueError(f"unknown key `{key}` (expected outputs, metrics or logs)")
                apply(value)
        except (ValueError, TypeError, KeyError) as exc:
            excerpt = line if len(line) <= 200 else line[:200] + "…"
            self.ctx.logger.warning("ignored a malformed ::{...}:: line (%s): %s", exc, excerpt)
        return True

    def _outputs(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise ValueError("`outputs` must be an object")
        self.vars.update(value)

    def _metrics(self, value: Any) -> None:
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ValueError("each metric needs a `name`")
            kind = str(item.get("type", "counter")).lower()
            if kind not in METRIC_TYPES:
                raise ValueError(f"metric type `{kind}` (expected counter, timer or gauge)")
            amount = item.get("value", 1)
            if isinstance(amount, bool) or not isinstance(amount, (int, float)):
                raise ValueError(f"metric `{item['name']}` needs a numeric `value`")
            tags = item.get("tags") or {}
            if not isinstance(tags, dict):
                raise ValueError("metric `tags` must be an object")
            self.ctx.metric(item["name"], amount, kind, **{str(k): str(v) for k, v in tags.items()})

    def _logs(self, value: Any) -> None:
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, dict) or "message" not in item:
                raise ValueError("each log needs a `message`")
            level = LEVELS.get(str(item.get("level", "INFO")).upper())
            if level is None:
                raise ValueError(f"log level `{item.get('level')}` (expected TRACE, DEBUG, INFO, WARN or ERROR)")
            self.ctx.logger.log(level, str(item["message"]))
