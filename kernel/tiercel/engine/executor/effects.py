"""What one transition asks the caller to do, once its changes are persisted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiercel.api import SubflowRequest, Task
from tiercel.model import TaskRun


@dataclass
class Job:
    """A runnable task attempt for a worker: the task, the run and the variables to render it with."""

    execution_id: str
    task_run: TaskRun
    task: Task
    attempt: int
    variables: dict[str, Any]
    workdir: str | None = None


@dataclass(frozen=True)
class ArmTimer:
    execution_id: str
    task_run_id: str
    when: float
    name: str


@dataclass(frozen=True)
class StartSubflow:
    """Create a child execution for a flowable; its end comes back as a ``SubflowEnded`` event."""

    parent_id: str
    task_run: TaskRun
    task_type: str
    index: int | None
    request: SubflowRequest
    #: The child's id, chosen by the executor (so a kill can reach it before it is created).
    execution_id: str


@dataclass(frozen=True)
class FileWork:
    """File work for a flowable (split, write, collect); answered by a ``FilesDone`` event."""

    execution_id: str
    task_run: TaskRun
    kind: str
    params: dict[str, Any]


@dataclass
class Effects:
    """Everything a transition asks for, in the order the caller should carry it out."""

    jobs: list[Job] = field(default_factory=list)
    timers: list[ArmTimer] = field(default_factory=list)
    subflows: list[StartSubflow] = field(default_factory=list)
    files: list[FileWork] = field(default_factory=list)
    #: Task runs whose running attempt must be cancelled (the worker then reports KILLED).
    cancel: list[str] = field(default_factory=list)
    #: Child executions to kill.
    kill_children: list[str] = field(default_factory=list)
    #: Executions to resume: (execution id, inputs).
    resume: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Log lines of the engine itself: (task run or None, level, message).
    logs: list[tuple[TaskRun | None, str, str]] = field(default_factory=list)
    #: The execution reached a terminal state in this transition.
    ended: bool = False
    #: Seconds after which a new execution replaces this RETRIED one (retry CREATE_NEW_EXECUTION).
    retry_execution: float | None = None
