"""Executions and task runs as the engine holds them, and their Kestra-shaped JSON."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


class State:
    CREATED = "CREATED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RETRYING = "RETRYING"
    RESTARTED = "RESTARTED"
    KILLING = "KILLING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"


TERMINAL = frozenset({State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED, State.SKIPPED})
FAILURES = frozenset({State.FAILED, State.KILLED, State.CANCELLED})


def new_id() -> str:
    """A short, url-safe, time-sortable-enough unique id (Kestra uses 22-char base62)."""
    return uuid.uuid4().hex[:22]


def iso_of(value: Any) -> str:
    """ISO-8601 text of a date or datetime, with Z for UTC (how expressions print them)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class Attempt:
    attempt: int
    state: str
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    worker: str | None = None
    #: What the attempt started outside its worker (RunContext.track), persisted as it changes.
    resources: dict[str, Any] | None = None
    new: bool = True


class TaskRun:
    """One run of a task (one per ForEach value, WaitFor iteration…) with its attempts.

    Setting ``dirty`` registers the task run with its execution's ``changed`` map, so a
    step saves and reports only what it touched.
    """

    __slots__ = ("id", "execution_id", "task_id", "parent_id", "value", "iteration", "state", "seq", "created_at",
                 "attempt", "outputs", "data", "error", "started_at", "ended_at", "attempts", "new", "_dirty", "_sink")

    def __init__(self, id: str, execution_id: str, task_id: str, parent_id: str | None, value: str | None,
                 iteration: int | None, state: str, seq: int, created_at: float, attempt: int = 0,
                 outputs: dict[str, Any] | None = None, data: dict[str, Any] | None = None, error: str | None = None,
                 started_at: float | None = None, ended_at: float | None = None,
                 attempts: list[Attempt] | None = None, new: bool = True, dirty: bool = True) -> None:
        self.id, self.execution_id, self.task_id, self.parent_id = id, execution_id, task_id, parent_id
        self.value, self.iteration, self.state, self.seq, self.created_at = value, iteration, state, seq, created_at
        self.attempt, self.outputs, self.data, self.error = attempt, outputs, data if data is not None else {}, error
        self.started_at, self.ended_at = started_at, ended_at
        self.attempts = attempts if attempts is not None else []
        self.new = new
        self._sink: dict[str, TaskRun] | None = None
        self._dirty = dirty

    @property
    def dirty(self) -> bool:
        return self._dirty

    @dirty.setter
    def dirty(self, value: bool) -> None:
        self._dirty = value
        if value and self._sink is not None:
            self._sink[self.id] = self

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "taskId": self.task_id, "parentTaskRunId": self.parent_id,
            "value": self.value, "iteration": self.iteration, "state": self.state,
            "attempts": [{"state": a.state, "startDate": iso(a.started_at), "endDate": iso(a.ended_at)}
                         for a in self.attempts],
            "outputs": self.outputs or {}, "error": self.error,
            "startDate": iso(self.started_at or self.created_at), "endDate": iso(self.ended_at),
            "duration": (self.ended_at - (self.started_at or self.created_at)) if self.ended_at else None,
        }


@dataclass(eq=False)
class Execution:
    id: str
    namespace: str
    flow_id: str
    flow_hash: str
    state: str
    created_at: float
    flow_revision: int | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    trigger: dict[str, Any] | None = None
    parent_id: str | None = None
    parent_task_run_id: str | None = None
    original_id: str | None = None
    dedupe_key: str | None = None
    error: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    task_runs: dict[str, TaskRun] = field(default_factory=dict)
    #: (parent task run id, task id, iteration key) -> task run: the executor's index.
    index: dict[tuple[str | None, str, Any], TaskRun] = field(default_factory=dict)
    #: Finished outputs by task id, as expressions see them (``outputs.<taskId>``).
    outputs_ctx: dict[str, Any] = field(default_factory=dict)
    #: Secret values to mask in logs and outputs.
    secrets: set[str] = field(default_factory=set)
    #: Task runs dropped by a restart, to delete from the store.
    forgotten: list[str] = field(default_factory=list)
    #: Task runs changed since the last save (filled by ``TaskRun.dirty = True``).
    changed: dict[str, TaskRun] = field(default_factory=dict)
    dirty: bool = True
    new: bool = True

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def add(self, tr: TaskRun) -> None:
        tr._sink = self.changed
        if tr.dirty:
            self.changed[tr.id] = tr
        self.task_runs[tr.id] = tr
        self.index[(tr.parent_id, tr.task_id, tr.iteration)] = tr

    def child(self, parent_id: str | None, task_id: str, key: Any = None) -> TaskRun | None:
        return self.index.get((parent_id, task_id, key))

    def record_outputs(self, tr: TaskRun) -> None:
        """Expose a finished task run's outputs to later expressions."""
        if tr.outputs is None:
            return
        path = tr.data.get("vpath")
        if not path:
            self.outputs_ctx[tr.task_id] = tr.outputs
            return
        node = self.outputs_ctx.setdefault(tr.task_id, {})
        for v in path[:-1]:
            node = node.setdefault(v, {})
        node[path[-1]] = tr.outputs

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "namespace": self.namespace, "flowId": self.flow_id,
            "flowRevision": self.flow_revision, "state": self.state,
            "inputs": self.inputs, "outputs": self.outputs, "labels": self.labels,
            "trigger": self.trigger, "parentId": self.parent_id, "originalId": self.original_id,
            "error": self.error,
            "startDate": iso(self.started_at or self.created_at), "endDate": iso(self.ended_at),
            "duration": (self.ended_at - (self.started_at or self.created_at)) if self.ended_at else None,
            "taskRuns": [tr.to_json() for tr in sorted(self.task_runs.values(), key=lambda t: t.seq)],
        }


def dumps(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
