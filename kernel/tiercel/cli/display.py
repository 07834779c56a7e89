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
            _, task_id, level, message, ts = payload[:5]
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
        begun = tr.started_at or tr.created_at
        seconds = tr.ended_at - begun if tr.ended_at and begun and tr.state != "SKIPPED" else None
        print(transition_line(tr.task_id, tr.value, str(tr.state), tr.attempt, seconds, error), file=self.out)

    def close(self) -> None:
        pass


_ENDED = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED"})
_OK = frozenset({"SUCCESS", "WARNING", "SKIPPED"})
_BAD = frozenset({"FAILED", "KILLED", "CANCELLED"})
#: A parent with more children than this shows only those running or failed, the rest as its progress.
_MAX_CHILDREN = 6


class _Row:
    """What the live view shows of one task run (from a TaskRun here, or a task run's JSON from a server)."""

    __slots__ = ("id", "task_id", "parent_id", "value", "state", "attempt", "started", "ended", "error", "total",
                 "per_group", "by_task")

    def __init__(self, id: str, task_id: str, parent_id: str | None, value: Any, state: str, attempt: int,
                 started: float | None, ended: float | None, error: str | None) -> None:
        self.id, self.task_id, self.parent_id, self.value, self.state = id, task_id, parent_id, value, state
        self.attempt, self.started, self.ended, self.error = attempt, started, ended, error
        #: How many iterations (loops) or branches (Parallel) the run has, when known.
        self.total: int | None = None
        #: Tasks per iteration of a loop: an iteration is done when that many of its children ended well.
        self.per_group = 1
        #: Whether children group by task id (Parallel branches) rather than by value (loop iterations).
        self.by_task = False


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _ticking(start: float | None, end: float | None) -> str:
    if start is None:
        return ""
    seconds = max(0.0, (end or time.time()) - start)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


class LiveView:
    """The rich live view of one execution, redrawn in place 8 times a second.

    First the flow, execution id and start time; then one line per task run nested under its parent,
    durations ticking, attempt numbers, a loop's or a Parallel's progress (``37/100 ✔ 2 ✘``) and the
    last log lines of running tasks. Log lines and failures (each once) print above it and stay in the
    scrollback; a paused execution prints its id and the exact command that resumes it.
    Fed either by the runtime of this process (``view(kind, payload)``) or by JSON snapshots of an
    execution running elsewhere (``header``/``logs``/``snapshot``, as :class:`SnapshotPrinter`).
    """

    def __init__(self, flow: Any = None, console: Any = None) -> None:
        import threading

        from rich.console import Console
        from rich.live import Live

        self.console = console or Console()
        self.flow = flow
        self.rows: dict[str, _Row] = {}
        self.tails: dict[str, list[str]] = {}  # task run id (or task id) -> its last log lines
        self.execution: dict[str, Any] = {}
        self.notice: str | None = None  # a line shown under the tree (the Ctrl-C question)
        self._printed: set[tuple[str, str, int]] = set()
        self._logged_errors: set[tuple[str, str]] = set()
        self._lock = threading.RLock()
        self._closed = False
        self.live = Live(console=self.console, refresh_per_second=8, transient=True, get_renderable=self._render,
                         redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    # --- the runtime of this process --------------------------------------------------------
    def __call__(self, kind: str, payload: Any) -> None:
        with self._lock:
            if kind == "execution":
                self._execution(payload.id, payload.namespace, payload.flow_id, str(payload.state),
                                payload.started_at or payload.created_at, payload.ended_at)
            elif kind == "taskrun":
                _, tr = payload
                row = self._row(tr.id, tr.task_id, tr.parent_id, tr.value, str(tr.state), max(tr.attempt, 1),
                                tr.started_at or (tr.created_at if tr.state != "CREATED" else None), tr.ended_at, tr.error)
                progress = tr.progress or {}
                items = progress.get("values") if progress.get("values") is not None else progress.get("items")
                if items is not None:
                    row.total = len(items)
                self._shape(row)
                self._changed(row)
            elif kind == "log":
                task_id, level, message, ts = payload[1], payload[2], payload[3], payload[4]
                self._log(payload[5] if len(payload) > 5 else None, task_id, level, str(message), ts)

    # --- JSON snapshots of an execution running elsewhere -----------------------------------
    def header(self, execution: dict[str, Any]) -> None:
        self.snapshot(execution)

    def logs(self, entries: list[dict[str, Any]]) -> None:
        with self._lock:
            for entry in entries:
                self._log(entry.get("taskRunId"), entry.get("taskId"), entry["level"], str(entry["message"]),
                          entry["timestamp"])

    def snapshot(self, execution: dict[str, Any]) -> None:
        with self._lock:
            for tr in execution.get("taskRuns") or []:
                row = self._row(tr["id"], tr["taskId"], tr.get("parentTaskRunId"), tr.get("value"), str(tr["state"]),
                                len(tr.get("attempts") or []) or 1,
                                _epoch(tr.get("startDate")) if tr["state"] != "CREATED" else None,
                                _epoch(tr.get("endDate")), tr.get("error"))
                self._shape(row)
                self._changed(row)
            self._execution(execution["id"], execution["namespace"], execution["flowId"], str(execution["state"]),
                            _epoch(execution.get("startDate")), _epoch(execution.get("endDate")))

    # --- state ------------------------------------------------------------------------------
    def _execution(self, execution_id: str, namespace: str, flow_id: str, state: str, started: float | None,
                   ended: float | None) -> None:
        first = not self.execution
        self.execution = {"id": execution_id, "flow": f"{namespace}.{flow_id}", "state": state, "started": started,
                          "ended": ended}
        if first:
            when = datetime.fromtimestamp(started or time.time()).strftime("%Y-%m-%d %H:%M:%S")
            self._print(f"[bold]▶ {namespace}.{flow_id}[/]  execution [bold]{execution_id}[/]  started {when}")
        if state == "PAUSED" and ("paused", execution_id, 0) not in self._printed:
            self._printed.add(("paused", execution_id, 0))
            gates = [r.task_id for r in self.rows.values() if r.state == "PAUSED"]
            at = f" at `{gates[0]}`" if gates else ""
            self._print(f"[magenta]‖ execution {execution_id} is paused{at}[/]: resume it with "
                        f"[bold]tiercel executions resume {execution_id}[/] (add -i KEY=VALUE for its onResume inputs)")

    def _row(self, id: str, task_id: str, parent_id: str | None, value: Any, state: str, attempt: int,
             started: float | None, ended: float | None, error: str | None) -> _Row:
        row = self.rows.get(id)
        if row is None:
            row = self.rows[id] = _Row(id, task_id, parent_id, value, state, attempt, started, ended, error)
        else:
            row.state, row.attempt, row.started, row.ended, row.error = state, attempt, started, ended, error
        return row

    def _shape(self, row: _Row) -> None:
        """Totals from the flow: tasks per loop iteration, branches of a Parallel."""
        if self.flow is None:
            return
        try:
            task = self.flow.task(row.task_id)
        except Exception:
            return
        tasks = getattr(task, "tasks", None)
        if not isinstance(tasks, list):
            return
        if "Parallel" in type(task).__name__:
            row.total, row.by_task = len(tasks), True
        elif row.total is not None:
            row.per_group = max(1, len(tasks))

    def _changed(self, row: _Row) -> None:
        if (row.state in _BAD or row.state == "RETRYING") and (row.error or row.id not in self._parents()):
            key = (row.id, row.state, row.attempt)
            if key not in self._printed:
                self._printed.add(key)
                logged = (row.task_id, str(row.error)) in self._logged_errors
                why = f": {row.error}" if row.error and not logged else ""
                retry = f" (attempt {row.attempt})" if row.attempt > 1 else ""
                self._print(f"[red]{_ICON.get(row.state, '?')} {self._label(row)} {row.state}{retry}[/]{_esc(why)}")

    def _parents(self) -> set[str | None]:
        return {r.parent_id for r in list(self.rows.values())}

    def _log(self, task_run_id: str | None, task_id: str | None, level: str, message: str, ts: float) -> None:
        if level == "ERROR":
            self._logged_errors.add((task_id or "", message))
        stamp = datetime.fromtimestamp(ts).strftime("%H:%M:%S")
        color = {"ERROR": "red", "WARN": "yellow", "DEBUG": "dim", "TRACE": "dim"}.get(level, "white")
        self._print(f"[dim]{stamp}[/] [bold]{_esc(task_id or '-')}[/] [{color}]{level}[/] {_esc(message)}")
        tail = self.tails.setdefault(task_run_id or task_id or "", [])
        tail.extend(message.splitlines()[-2:] or [""])
        del tail[:-2]

    def _print(self, markup: str) -> None:
        self.live.console.print(markup, highlight=False, soft_wrap=True)

    def _label(self, row: _Row) -> str:
        return row.task_id + (f"[{row.value}]" if row.value is not None else "")

    # --- drawing ----------------------------------------------------------------------------
    def _render(self) -> Any:
        from rich.text import Text

        # no lock here: rich calls this holding its own lock, which a print above the view takes too
        lines: list[Any] = []
        if self._closed:
            return Text("")
        if True:
            ex = self.execution
            if ex:
                color = _COLOR.get(ex["state"], "white")
                lines.append(Text.from_markup(
                    f"[bold]{_esc(ex['flow'])}[/] [dim]{ex['id']}[/] [{color}]{ex['state']}[/] "
                    f"{_ticking(ex['started'], ex['ended'])}"))
            children: dict[str | None, list[_Row]] = {}
            for row in list(self.rows.values()):
                if row.state != "CREATED" or row.parent_id is None:
                    children.setdefault(row.parent_id if row.parent_id in self.rows else None, []).append(row)
            budget = max(4, self.console.size.height - 3 - (1 if self.notice else 0))
            self._tree(children, None, 0, lines, budget)
            if self.notice:
                lines.append(Text.from_markup(self.notice))
            return Text("\n").join(lines)

    def _tree(self, children: dict[str | None, list[_Row]], parent: str | None, depth: int, lines: list[Any],
              budget: int) -> None:
        from rich.text import Text

        kids = children.get(parent, [])
        shown = kids
        if parent is not None and kids and self.rows[parent].state in _OK:
            return  # a parent that ended well: its progress says it all
        if len(kids) > _MAX_CHILDREN:
            shown = [r for r in kids if r.state not in _OK][:_MAX_CHILDREN]
        width = self.console.size.width
        for row in shown:
            if len(lines) >= budget:
                lines.append(Text("  " * depth + "…", style="dim"))
                return
            color = _COLOR.get(row.state, "white")
            attempt = f" attempt {row.attempt}" if row.attempt > 1 else ""
            progress = self._progress(row, children.get(row.id, []))
            text = Text("  " * (depth + 1))
            text.append(f"{_ICON.get(row.state, '?')} ", style=color)
            text.append(self._label(row), style="bold" if row.state == "RUNNING" else "")
            text.append(f" {row.state}", style=color)
            text.append(f"{attempt} {_ticking(row.started, row.ended)}", style="dim")
            if progress:
                text.append(f"  {progress}")
            lines.append(text)
            if row.state in ("RUNNING", "RETRYING") and not children.get(row.id):
                for message in list(self.tails.get(row.id) or self.tails.get(row.task_id) or []):
                    lines.append(Text("  " * (depth + 2) + "│ " + message[: max(10, width - 2 * depth - 8)], style="dim"))
            self._tree(children, row.id, depth + 1, lines, budget)
        hidden = len(kids) - len(shown)
        if hidden:
            lines.append(Text("  " * (depth + 1) + f"… {hidden} more ended well", style="dim"))

    def _progress(self, row: _Row, kids: list[_Row]) -> str:
        if not kids:
            return ""
        if row.total is None and not any(k.value is not None for k in kids):
            return ""
        groups: dict[Any, list[_Row]] = {}
        for kid in kids:
            groups.setdefault(kid.task_id if row.by_task else kid.value, []).append(kid)
        ok = sum(1 for g in groups.values() if sum(1 for k in g if k.state in _OK) >= row.per_group
                 and not any(k.state in _BAD for k in g))
        bad = sum(1 for g in groups.values() if any(k.state in _BAD for k in g))
        total = f"/{row.total}" if row.total is not None else ""
        return f"{ok}{total} ✔" + (f" {bad} ✘" if bad else "")

    def close(self) -> None:
        self._closed = True
        self.live.refresh()  # an empty last frame: nothing of the tree stays above the summary
        self.live.stop()


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


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
    metrics = [(tr["taskId"], m) for tr in execution["taskRuns"] for m in tr.get("metrics") or []]
    if metrics:
        print("\n  metrics:", file=out)
        for task_id, m in metrics:
            tags = " ".join(f"{k}={v}" for k, v in sorted((m.get("tags") or {}).items()))
            print(f"    {task_id:<20} {m['name']:<24} {m['type']:<8} {m['value']:g}{'  ' + tags if tags else ''}", file=out)
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

    def close(self) -> None:
        pass

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


def watcher(as_json: bool = False, out: TextIO = sys.stdout) -> Any:
    """What shows an execution running elsewhere: the live view on a terminal, else ordered lines."""
    return LiveView() if out.isatty() and not as_json else SnapshotPrinter(out)
