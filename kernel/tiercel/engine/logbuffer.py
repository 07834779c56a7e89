"""Log lines of executions, buffered and written with the next step (or flushed on their own)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tiercel.backend.logs import LogStore
from tiercel.model import TaskRun

#: (execution_id, task_run_id, task_id, attempt, level, message, ts)
LogRow = tuple[str, str | None, str | None, int | None, str, str, float]


class LogBuffer:
    def __init__(self, store: LogStore, emit: Callable[[str, Any], None],
                 echo: Callable[[str, TaskRun | None, int | None, str, str], None] | None = None,
                 cap: int | None = None,
                 overflow: Callable[[str, TaskRun, int | None, str, str, float], str] | None = None) -> None:
        self.store = store
        self.emit = emit
        #: Also writes each line to the process log (``--log-format json``), None otherwise.
        self.echo = echo
        #: Characters of log a task-run attempt keeps in the database; past it, lines go to ``overflow``
        #: (which appends them to a file and returns its ``tiercel://`` URI).
        self.cap, self.overflow = cap, overflow
        self.used: dict[tuple[str, int | None], int] = {}
        self.pending: list[LogRow] = []

    def add(self, execution_id: str, tr: TaskRun | None, attempt: int | None, level: str, message: str,
            ts: float) -> None:
        task_id = tr.task_id if tr is not None else None
        if tr is not None and self.cap is not None and self.overflow is not None:
            key = (tr.id, attempt)
            used = self.used.get(key, 0)
            self.used[key] = used + len(message)
            if used + len(message) > self.cap:
                uri = self.overflow(execution_id, tr, attempt, level, message, ts)
                if used <= self.cap:  # the first line past the cap: say where the rest goes
                    self.pending.append((execution_id, tr.id, task_id, attempt, "WARN",
                                         f"this task's log passed {self.cap} characters: the rest is in {uri}", ts))
                return
        self.pending.append((execution_id, tr.id if tr is not None else None, task_id, attempt, level, message, ts))
        self.emit("log", (execution_id, task_id, level, message, ts, tr.id if tr is not None else None))
        if self.echo is not None:
            self.echo(execution_id, tr, attempt, level, message)

    def finish(self, task_run_id: str, attempts: int) -> list[int | None]:
        """Forget the counts of an ended task run; return its attempts whose log overflowed."""
        spilled = []
        for attempt in (None, *range(attempts + 1)):
            used = self.used.pop((task_run_id, attempt), None)
            if used is not None and self.cap is not None and used > self.cap:
                spilled.append(attempt)
        return spilled

    def take(self) -> list[LogRow]:
        """The lines written since the last take, to save with a step."""
        rows, self.pending = self.pending, []
        return rows

    def flush(self) -> None:
        if self.pending:
            self.store.append(self.take())
