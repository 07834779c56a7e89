"""How executions look in a terminal: a live view while running, a summary at the end."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any, TextIO

_ICON = {"SUCCESS": "✔", "WARNING": "!", "FAILED": "✘", "KILLED": "✘", "SKIPPED": "-", "RUNNING": "▶",
         "PAUSED": "‖", "RETRYING": "↻", "CREATED": "·", "QUEUED": "·", "CANCELLED": "✘", "RETRIED": "↻"}
_COLOR = {"SUCCESS": "green", "WARNING": "yellow", "FAILED": "red", "KILLED": "red", "CANCELLED": "red",
          "RUNNING": "cyan", "PAUSED": "magenta", "RETRYING": "yellow", "SKIPPED": "dim", "RETRIED": "yellow"}


def _duration(start: float | None, end: float | None) -> str:
    if start is None:
        return ""
    seconds = (end or time.time()) - start
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def transition_line(task_id: str, value: Any, state: str, attempt: int, seconds: float | None, error: str | None) -> str:
    """A task run's state change as one line: ``✘ boom FAILED (attempt 2) 11 ms: it went boom``."""
    label = task_id + (f"[{value}]" if value is not None else "")
    retry = f" (attempt {attempt})" if attempt > 1 else ""
    took = f" {_duration(0, seconds)}" if seconds is not None else ""
    why = f": {error}" if error and state in ("FAILED", "RETRYING") else ""
    return f"{_ICON.get(state, '?')} {label} {state}{retry}{took}{why}"


class PlainView:
    """Line by line progress for pipes and CI logs: one line per state change, in order (a parent ends
    after its children), a failure that its task logged not repeated on its line."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._seen: set[tuple[str, str, int]] = set()
        self._children: dict[str, list[Any]] = {}
        self._indexed: set[str] = set()
        self._logged_errors: set[tuple[str, str]] = set()

    def __call__(self, kind: str, payload: Any) -> None:
        if kind == "log":
            _, task_id, level, message, ts = payload
            if level == "ERROR":
                self._logged_errors.add((task_id or "", str(message)))
            stamp = datetime.fromtimestamp(ts).strftime("%H:%M:%S")
            for line in str(message).splitlines() or [""]:
                print(f"  {stamp} {task_id or '-':<16} {level:<5} {line}", file=self.out)
        elif kind == "taskrun":
            _, tr = payload
            if tr.id not in self._indexed:
                self._indexed.add(tr.id)
                self._children.setdefault(tr.parent_id or "", []).append(tr)
            if tr.state != "CREATED":
                self._print(tr)
        self.out.flush()

    def _print(self, tr: Any) -> None:
        key = (tr.id, str(tr.state), tr.attempt)
        if key in self._seen:
            return
        if tr.ended_at is not None:  # children that ended in the same step come first
            for child in self._children.get(tr.id, ()):
                if child.ended_at is not None:
                    self._print(child)
        self._seen.add(key)
        error = None if (tr.task_id, str(tr.error)) in self._logged_errors else tr.error
        seconds = tr.ended_at - (tr.started_at or tr.created_at) if tr.ended_at else None
        print(transition_line(tr.task_id, tr.value, str(tr.state), tr.attempt, seconds, error), file=self.out)

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


def log_line(entry: dict[str, Any]) -> str:
    """One stored log entry (the API's shape) as a terminal line."""
    stamp = datetime.fromtimestamp(entry["timestamp"]).strftime("%H:%M:%S")
    return f"{stamp} {entry['taskId'] or '-':<16} {entry['level']:<5} {entry['message']}"


class SnapshotPrinter:
    """Progress of an execution seen as successive JSON snapshots (a server's stream, or the store).

    Prints each task run's state changes once, in order, with the logs that came before them:
    what ``PlainView`` prints for a run in this process, for an execution running anywhere.
    """

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self._seen: set[tuple[str, str, int]] = set()
        self._logged_errors: set[tuple[str, str]] = set()  # a failure logged is not repeated on its task's line

    def header(self, execution: dict[str, Any]) -> None:
        print(f"▶ {execution['namespace']}.{execution['flowId']}: execution {execution['id']}", file=self.out)

    def logs(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            if entry["level"] == "ERROR":
                self._logged_errors.add((entry["taskId"] or "", str(entry["message"])))
            print(f"  {log_line(entry)}", file=self.out)
        self.out.flush()

    def snapshot(self, execution: dict[str, Any]) -> None:
        for tr in execution["taskRuns"]:
            attempt = len(tr.get("attempts") or []) or 1
            key = (tr["id"], tr["state"], attempt)
            if key in self._seen or tr["state"] == "CREATED":
                continue
            self._seen.add(key)
            error = None if (tr["taskId"], str(tr.get("error"))) in self._logged_errors else tr.get("error")
            seconds = tr.get("duration") if tr["state"] not in ("RUNNING", "PAUSED") else None
            print(transition_line(tr["taskId"], tr.get("value"), tr["state"], attempt, seconds, error), file=self.out)
        if execution["state"] == "PAUSED" and ("paused", execution["id"], 0) not in self._seen:
            self._seen.add(("paused", execution["id"], 0))
            print(f"‖ execution {execution['id']} is paused: `tiercel executions resume {execution['id']}` "
                  "continues it", file=self.out)
        self.out.flush()
