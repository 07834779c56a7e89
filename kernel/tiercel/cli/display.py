"""How executions look in a terminal: a live view while running, a summary at the end."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any, TextIO

_ICON = {"SUCCESS": "✔", "WARNING": "!", "FAILED": "✘", "KILLED": "✘", "SKIPPED": "-", "RUNNING": "▶",
         "PAUSED": "‖", "RETRYING": "↻", "CREATED": "·", "QUEUED": "·", "CANCELLED": "✘"}
_COLOR = {"SUCCESS": "green", "WARNING": "yellow", "FAILED": "red", "KILLED": "red", "CANCELLED": "red",
          "RUNNING": "cyan", "PAUSED": "magenta", "RETRYING": "yellow", "SKIPPED": "dim"}


def _duration(start: float | None, end: float | None) -> str:
    if start is None:
        return ""
    seconds = (end or time.time()) - start
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


class PlainView:
    """Line by line progress for pipes and CI logs."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._seen: dict[str, str] = {}

    def __call__(self, kind: str, payload: Any) -> None:
        if kind == "log":
            _, task_id, level, message, ts = payload
            stamp = datetime.fromtimestamp(ts).strftime("%H:%M:%S")
            for line in str(message).splitlines() or [""]:
                print(f"  {stamp} {task_id or '-':<16} {level:<5} {line}", file=self.out)
        elif kind == "taskrun":
            ex, tr = payload
            key = f"{tr.id}:{tr.state}:{tr.attempt}"
            if key in self._seen or tr.state == "CREATED":
                return
            self._seen[key] = tr.state
            label = tr.task_id + (f"[{tr.value}]" if tr.value is not None else "")
            attempt = f" (attempt {tr.attempt})" if tr.attempt > 1 else ""
            took = f" {_duration(tr.started_at or tr.created_at, tr.ended_at)}" if tr.ended_at else ""
            error = f": {tr.error}" if tr.error and tr.state in ("FAILED", "RETRYING") else ""
            print(f"{_ICON.get(tr.state, '?')} {label} {tr.state}{attempt}{took}{error}", file=self.out)
        self.out.flush()

    def close(self) -> None:
        pass


class LiveView:
    """A rich table of task runs refreshed in place, with logs printed above it."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=False)
        self.rows: dict[str, Any] = {}
        self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=True)
        self.live.start()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("task")
        table.add_column("state")
        table.add_column("attempt", justify="right")
        table.add_column("duration", justify="right")
        for tr in list(self.rows.values())[-30:]:
            color = _COLOR.get(tr.state, "white")
            label = tr.task_id + (f"[{tr.value}]" if tr.value is not None else "")
            table.add_row(label, f"[{color}]{_ICON.get(tr.state, '?')} {tr.state}[/]", str(max(tr.attempt, 1)),
                          _duration(tr.started_at or tr.created_at, tr.ended_at))
        return table

    def __call__(self, kind: str, payload: Any) -> None:
        if kind == "log":
            from rich.markup import escape

            _, task_id, level, message, ts = payload
            stamp = datetime.fromtimestamp(ts).strftime("%H:%M:%S")
            color = {"ERROR": "red", "WARN": "yellow", "DEBUG": "dim", "TRACE": "dim"}.get(level, "white")
            self.live.console.print(f"[dim]{stamp}[/] [bold]{escape(task_id or '-')}[/] [{color}]{level}[/] "
                                    f"{escape(str(message))}", highlight=False)
        elif kind == "taskrun":
            _, tr = payload
            self.rows[tr.id] = tr
            self.live.update(self._table())

    def close(self) -> None:
        self.live.stop()


def summary(execution: dict[str, Any], out: TextIO = sys.stdout) -> None:
    """The end-of-run table: every task run, then the execution's state, duration and outputs."""
    import json

    state = execution["state"]
    print("", file=out)
    for tr in execution["taskRuns"]:
        label = tr["taskId"] + (f"[{tr['value']}]" if tr.get("value") is not None else "")
        dur = f"{tr['duration'] * 1000:.0f} ms" if tr.get("duration") is not None and tr["duration"] < 1 else (
            f"{tr['duration']:.2f} s" if tr.get("duration") is not None else "")
        attempts = len(tr["attempts"])
        extra = f"  attempts={attempts}" if attempts > 1 else ""
        print(f"  {_ICON.get(tr['state'], '?')} {label:<30} {tr['state']:<9} {dur:>9}{extra}", file=out)
    took = execution.get("duration")
    took_s = f" in {took:.2f} s" if took is not None else ""
    print(f"\n{_ICON.get(state, '?')} execution {execution['id']} {state}{took_s}", file=out)
    if execution.get("error"):
        print(f"  error: {execution['error']}", file=out)
    if execution.get("outputs"):
        print(f"  outputs: {json.dumps(execution['outputs'], default=str)}", file=out)
