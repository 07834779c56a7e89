"""What can happen to an execution: the executor's input, one small frozen type per kind.

``apply()`` matches on these; a process turns what it observes (a worker's result, a fired
timer, an API command, a child execution's end) into one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiercel.model import State


@dataclass(frozen=True)
class Start:
    """Begin a CREATED (or QUEUED, or replayed) execution."""


@dataclass(frozen=True)
class Result:
    """An attempt of a runnable task ended (reported by its worker)."""

    task_run_id: str
    attempt: int
    state: State
    outputs: dict[str, Any] | None = None
    error: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    #: The process that ran the attempt (distributed mode), recorded on the attempt.
    worker: str | None = None


@dataclass(frozen=True)
class Lost:
    """An attempt's process died before reporting: it counts as an attempt, and may run again."""

    task_run_id: str
    attempt: int
    error: str = "the process running this attempt stopped"
    worker: str | None = None


@dataclass(frozen=True)
class Kill:
    """Kill the execution: running attempts are cancelled, nothing new starts."""


@dataclass(frozen=True)
class Resume:
    """Resume paused task runs (one, or all when ``task_run_id`` is None) with inputs."""

    task_run_id: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Timer:
    """A timer armed by the executor fired (a retry delay, or a flowable's ``wake_at``)."""

    task_run_id: str
    name: str


@dataclass(frozen=True)
class SubflowEnded:
    """A child execution a flowable started ended (or could not be started: ``execution_id`` None)."""

    task_run_id: str
    index: int | None
    execution_id: str | None
    state: State
    outputs: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class FilesDone:
    """File work asked by a flowable is done (``error`` set when it failed)."""

    task_run_id: str
    kind: str
    result: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Restart:
    """Run failed or killed task runs of an ended execution again, each as a new attempt."""


@dataclass(frozen=True)
class Recover:
    """A process takes over an unfinished execution: re-issue what was in flight (lost attempts, timers).

    ``in_flight`` holds the (task run, attempt) pairs still queued or running on a worker, or whose
    result waits to be applied: those are not lost (distributed mode).
    """

    in_flight: frozenset[tuple[str, int]] = frozenset()


Event = Start | Result | Lost | Kill | Resume | Timer | SubflowEnded | FilesDone | Restart | Recover


def command_event(kind: str, payload: dict[str, Any]) -> Event:
    """The event of a command sent by another process (``kill``, ``resume``, ``restart``, ``start``, ``subflow``)."""
    if kind == "kill":
        return Kill()
    if kind == "resume":
        return Resume(payload.get("taskRunId"), payload.get("inputs") or {})
    if kind == "restart":
        return Restart()
    if kind == "start":
        return Start()
    if kind == "subflow":
        return SubflowEnded(payload["taskRunId"], payload.get("index"), payload.get("executionId"),
                            State(payload["state"]), payload.get("outputs"), payload.get("error"))
    raise ValueError(f"unknown command `{kind}`")


def as_command(event: Event) -> tuple[str, dict[str, Any]]:
    """(kind, payload) of an event sent to an execution another process runs (the inverse of command_event)."""
    match event:
        case Kill():
            return "kill", {}
        case Resume():
            return "resume", {"taskRunId": event.task_run_id, "inputs": event.inputs}
        case Restart():
            return "restart", {}
        case Start():
            return "start", {}
        case SubflowEnded():
            return "subflow", {"taskRunId": event.task_run_id, "index": event.index, "executionId": event.execution_id,
                               "state": event.state, "outputs": event.outputs, "error": event.error}
    raise ValueError(f"{type(event).__name__} is not sent between processes")
