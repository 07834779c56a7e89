"""Executions, task runs and attempts, their states, and their Kestra-shaped JSON.

The one vocabulary of states, shared by the backend (which stores these), the engine (which
changes them), the server and the CLI (which show them). It imports nothing of Tiercel.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class State(StrEnum):
    """States of executions, task runs and attempts (a ``str``: ``State.SUCCESS == "SUCCESS"``)."""

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
    #: An execution that failed and was followed by a new one (retry ``behavior: CREATE_NEW_EXECUTION``).
    RETRIED = "RETRIED"
    #: An attempt outcome only: the process running it died. Its task run runs a new attempt.
    LOST = "LOST"


#: States nothing leaves (a restart makes a new attempt, it does not reopen the old one).
TERMINAL = frozenset({State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED, State.SKIPPED,
                      State.RETRIED})
#: Terminal states that count as a failure of the block holding them.
FAILURES = frozenset({State.FAILED, State.KILLED, State.CANCELLED, State.RETRIED})
#: Terminal states whose outputs later tasks may read.
SUCCEEDED = frozenset({State.SUCCESS, State.WARNING})
#: Every state an execution is in before it ends.
ACTIVE = frozenset({State.CREATED, State.QUEUED, State.RUNNING, State.PAUSED, State.RETRYING, State.RESTARTED,
                    State.KILLING})

_SEVERITY = {State.SUCCESS: 0, State.SKIPPED: 0, State.WARNING: 1, State.CANCELLED: 2, State.KILLED: 3,
             State.FAILED: 4, State.RETRIED: 4}


def worst(a: State, b: State) -> State:
    """The more severe of two terminal states (FAILED > KILLED > CANCELLED > WARNING > SUCCESS)."""
    return a if _SEVERITY.get(a, 0) >= _SEVERITY.get(b, 0) else b


def new_id() -> str:
    """A short, url-safe unique id (Kestra uses 22-char base62)."""
    return uuid.uuid4().hex[:22]


def iso_of(value: Any) -> str:
    """ISO-8601 text of a date or datetime, with Z for UTC (how expressions print them)."""
    text: str = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class Attempt:
    attempt: int
    state: State
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    worker: str | None = None
    #: What the attempt started outside its worker (RunContext.track), persisted as it changes.
    resources: dict[str, Any] | None = None
    new: bool = True


@dataclass(slots=True)
class FanOut:
    """Counters of a fan-out (Parallel, ForEach): branches started, running, done, and the worst end."""

    next: int = 0
    running: int = 0
    done: int = 0
    worst: State = State.SUCCESS


@dataclass(slots=True)
class ChildExecution:
    """A subflow execution a flowable started, and how it ended (``state`` None while it runs)."""

    execution_id: str | None
    state: State | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None


@dataclass(slots=True)
class RunMeta:
    """The engine's own bookkeeping of a task run, persisted with it.

    A flowable's own progress (which branch, which values) is separate: its ``Progress`` model
    as JSON, kept in ``TaskRun.progress``.
    """

    #: Loop values from the outermost loop to this run, for ``outputs.<id>[value]…``.
    vpath: list[str] | None = None
    #: Working directory shared by the tasks of a WorkingDirectory-like flowable.
    workdir: str | None = None
    #: Outcome of the main block, before ``errors``/``finally`` ran.
    main: State | None = None
    #: The armed timer: (when, name).
    timer: tuple[float, str] | None = None
    #: The timer that fired and woke this run up, until it is resolved again.
    woken: str | None = None
    fan: FanOut | None = None
    #: Subflow executions started, by index (``None`` for a single subflow).
    children: dict[str, ChildExecution] = field(default_factory=dict)
    #: File work asked of the runtime, by kind: None while pending, then its result.
    files: dict[str, Any] = field(default_factory=dict)
    #: Inputs a resume brought (set once resumed).
    resumed: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.vpath:
            out["vpath"] = self.vpath
        if self.workdir:
            out["workdir"] = self.workdir
        if self.main is not None:
            out["main"] = self.main
        if self.timer is not None:
            out["timer"] = list(self.timer)
        if self.woken is not None:
            out["woken"] = self.woken
        if self.fan is not None:
            out["fan"] = [self.fan.next, self.fan.running, self.fan.done, self.fan.worst]
        if self.children:
            out["children"] = {k: [c.execution_id, c.state, c.outputs, c.error] for k, c in self.children.items()}
        if self.files:
            out["files"] = self.files
        if self.resumed is not None:
            out["resumed"] = self.resumed
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunMeta:
        timer = data.get("timer")
        fan = data.get("fan")
        return cls(vpath=data.get("vpath"), workdir=data.get("workdir"),
                   main=State(data["main"]) if data.get("main") else None,
                   timer=(float(timer[0]), str(timer[1])) if timer else None, woken=data.get("woken"),
                   fan=FanOut(fan[0], fan[1], fan[2], State(fan[3])) if fan else None,
                   children={k: ChildExecution(v[0], State(v[1]) if v[1] else None, v[2], v[3])
                             for k, v in (data.get("children") or {}).items()},
                   files=data.get("files") or {}, resumed=data.get("resumed"))


class TaskRun:
    """One run of a task (one per ForEach value, WaitFor iteration…) with its attempts.

    Setting ``dirty`` registers the task run with its execution's ``changed`` map, so a
    step saves and reports only what it touched.
    """

    __slots__ = ("id", "execution_id", "task_id", "parent_id", "value", "iteration", "state", "seq", "created_at",
                 "attempt", "outputs", "meta", "progress", "error", "started_at", "ended_at", "attempts", "new",
                 "_dirty", "_sink")

    def __init__(self, id: str, execution_id: str, task_id: str, parent_id: str | None, value: str | None,
                 iteration: int | None, state: State, seq: int, created_at: float, attempt: int = 0,
                 outputs: dict[str, Any] | None = None, meta: RunMeta | None = None,
                 progress: dict[str, Any] | None = None, error: str | None = None,
                 started_at: float | None = None, ended_at: float | None = None,
                 attempts: list[Attempt] | None = None, new: bool = True, dirty: bool = True) -> None:
        self.id, self.execution_id, self.task_id, self.parent_id = id, execution_id, task_id, parent_id
        self.value, self.iteration, self.state, self.seq, self.created_at = value, iteration, state, seq, created_at
        self.attempt, self.outputs, self.error = attempt, outputs, error
        self.meta = meta if meta is not None else RunMeta()
        #: The flowable's own progress (its ``Progress`` model, as JSON), None for runnable tasks.
        self.progress = progress
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

    def data_json(self) -> dict[str, Any] | None:
        """What is stored in the ``data`` column: the engine's meta and the flowable's progress."""
        meta = self.meta.to_json()
        if not meta and self.progress is None:
            return None
        out: dict[str, Any] = {"m": meta}
        if self.progress is not None:
            out["p"] = self.progress
        return out

    @staticmethod
    def split_data(data: dict[str, Any] | None) -> tuple[RunMeta, dict[str, Any] | None]:
        """The engine's meta and the flowable's progress from the ``data`` column."""
        if not data:
            return RunMeta(), None
        if "m" not in data:  # written by Tiercel 0.1: keep what still means the same
            timer = data.get("timer")
            return RunMeta(vpath=data.get("vpath"), workdir=data.get("workdir"),
                           timer=(float(timer[0]), str(timer[1])) if timer else None), None
        return RunMeta.from_json(data["m"]), data.get("p")

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
    state: State
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
    #: Ids of the SECRET-typed inputs: stored sealed, shown as ``******``.
    secret_inputs: set[str] = field(default_factory=set)
    #: Task runs dropped by a restart, to delete from the store.
    forgotten: list[str] = field(default_factory=list)
    #: Task runs changed since the last save (filled by ``TaskRun.dirty = True``).
    changed: dict[str, TaskRun] = field(default_factory=dict)
    #: Sequence number of the next task run created (creation order).
    next_seq: int = 0
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
        self.next_seq = max(self.next_seq, tr.seq + 1)

    def child(self, parent_id: str | None, task_id: str, key: Any = None) -> TaskRun | None:
        return self.index.get((parent_id, task_id, key))

    def record_outputs(self, tr: TaskRun) -> None:
        """Expose a finished task run's outputs to later expressions."""
        if tr.outputs is None:
            return
        path = tr.meta.vpath
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
            "inputs": {k: "******" if k in self.secret_inputs else v for k, v in self.inputs.items()},
            "outputs": self.outputs, "labels": self.labels,
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
