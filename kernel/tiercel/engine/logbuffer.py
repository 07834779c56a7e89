"""Log lines of executions, buffered and written with the next step (or flushed on their own)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tiercel.backend.logs import LogStore
from tiercel.model import TaskRun

#: (execution_id, task_run_id, task_id, attempt, level, message, ts)
LogRow = tuple[str, str | None, str | None, int | None, str, str, float]


class LogBuffer:
    def __init__(self, store: LogStore, emit: Callable[[str, Any], None]) -> None:
        self.store = store
        self.emit = emit
        self.pending: list[LogRow] = []

    def add(self, execution_id: str, tr: TaskRun | None, attempt: int | None, level: str, message: str,
            ts: float) -> None:
        task_id = tr.task_id if tr is not None else None
        self.pending.append((execution_id, tr.id if tr is not None else None, task_id, attempt, level, message, ts))
        self.emit("log", (execution_id, task_id, level, message, ts, tr.id if tr is not None else None))

    def take(self) -> list[LogRow]:
        """The lines written since the last take, to save with a step."""
        rows, self.pending = self.pending, []
        return rows

    def flush(self) -> None:
        if self.pending:
            self.store.append(self.take())
