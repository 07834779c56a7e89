"""The contract between the kernel and plugins: component base classes and the run context.

A component is a pydantic model. Its fields are its YAML properties, its docstring and
field descriptions are its documentation, the class attribute ``type`` is its name and
``examples`` holds YAML flows that the registry validates and runs.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

__all__ = [
    "Component", "Example", "Retry", "Task", "FlowableTask", "FlowableRun", "ChildRun", "Status", "TaskError",
    "Trigger", "PollingTrigger", "RealtimeTrigger", "ScheduleTrigger", "ExecutionTrigger", "WebhookTrigger",
    "TriggerEvent",
    "Runner", "ScriptJob", "ScriptResult", "Storage", "StorageError", "RunContext",
    "is_expression", "contains_expression",
]


def is_expression(value: Any) -> bool:
    """True when *value* is a string holding a ``{{ … }}`` or ``{% … %}`` template."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def contains_expression(value: Any) -> bool:
    """True when *value* or anything nested in it is an expression."""
    if isinstance(value, str):
        return is_expression(value)
    if isinstance(value, dict):
        return any(contains_expression(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_expression(v) for v in value)
    return False


@dataclass(frozen=True)
class Example:
    """A documented example: a full YAML flow that the registry validates and, if ``run``, runs."""

    title: str
    flow: str
    run: bool = True


class Component(BaseModel):
    """Base of every task, trigger, runner and storage.

    Any property may hold an expression: at deploy time a ``{{ … }}`` string is accepted
    where a typed value is expected; the run-time rendering validates the result.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True, defer_build=True)

    #: The component's type name, as written in YAML (``kafka.Produce``).
    type: ClassVar[str] = ""
    #: Other names that resolve to this component (older or Kestra names).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: Example flows, validated (and run) by the registry.
    examples: ClassVar[list[Example]] = []
    #: Fields never rendered as expressions (child tasks, ids, templates kept for later).
    static_fields: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="wrap")
    @classmethod
    def _accept_expressions(cls, value: Any, handler: Callable[[Any], Any], info: ValidationInfo) -> Any:
        # Deploy-time validation lets expressions through; run-time rendering validates them.
        if info.context and info.context.get("deploy") and contains_expression(value):
            if info.field_name not in cls.static_fields:
                return value
        return handler(value)


class Retry(BaseModel):
    """How a failed task is retried: a new attempt in the same task run."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    type: Literal["constant", "exponential", "random"] = Field(
        description="Delay policy between attempts: constant, exponential or random.")
    interval: timedelta | None = Field(None, description="Delay between attempts (constant), or the first delay (exponential).")
    maxInterval: timedelta | None = Field(None, description="Upper bound of the delay (exponential, random).")
    minInterval: timedelta | None = Field(None, description="Lower bound of the delay (random).")
    delayFactor: float | None = Field(None, description="Multiplier applied to the delay after each attempt (exponential, default 2).")
    maxAttempt: int | None = Field(None, ge=1, description="Maximum number of attempts, the first one included.")
    maxDuration: timedelta | None = Field(None, description="Stop retrying once this much time has passed since the first attempt.")
    warningOnRetry: bool = Field(False, description="End the task run WARNING instead of SUCCESS when it needed retries.")
    behavior: Literal["RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION"] = Field("RETRY_FAILED_TASK", description=(
        "RETRY_FAILED_TASK: a new attempt in the same task run; CREATE_NEW_EXECUTION: the execution ends RETRIED "
        "and a new one starts from the beginning, attempts counted across them."))

    @model_validator(mode="before")
    @classmethod
    def _max_attempts(cls, data: Any) -> Any:
        """Kestra's docs write ``maxAttempts``, its older flows ``maxAttempt``: both are read."""
        if isinstance(data, dict) and "maxAttempts" in data:
            data = dict(data)
            value = data.pop("maxAttempts")
            if data.get("maxAttempt", value) != value:
                raise ValueError("set only one of maxAttempt and maxAttempts")
            data["maxAttempt"] = value
        return data


LogLevel = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]


class TaskCache(BaseModel):
    """Kestra's ``taskCache``: reuse the state and outputs of an earlier successful run of the same task
    (as written, with the same loop value and execution inputs) for ``ttl``, without running it again."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    enabled: bool = Field(False, description="Cache this task's state and outputs.")
    ttl: timedelta | None = Field(None, description="How long a cached result is reused (ISO-8601, e.g. PT1H); forever when omitted.")


class WorkerGroup(BaseModel):
    """Kestra's ``workerGroup``: which workers run the task (in Tiercel, the queue its jobs go to)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    key: str = Field(description="The queue (worker group) whose workers run the task: `tiercel worker --queue KEY`.")
    fallback: Literal["WAIT", "FAIL", "CANCEL"] | None = Field(
        None, description="Accepted for Kestra flows; a job always waits for a worker of its queue.")


class Task(Component):
    """A step of a flow. Runnable tasks implement :meth:`run`; it runs on a worker."""

    id: str = Field(description="Identifier of the task, unique in the flow.")
    description: str | None = Field(None, description="What the task does, in Markdown.")
    retry: Retry | None = Field(None, description="Retry policy when the task fails.")
    timeout: timedelta | None = Field(None, description="Maximum duration (ISO-8601, e.g. PT30S); the task is cancelled and FAILED past it.")
    disabled: bool = Field(False, description="Skip this task entirely.")
    allowFailure: bool = Field(False, description="A failure ends the task run WARNING and the flow goes on.")
    allowWarning: bool = Field(False, description="A WARNING counts as SUCCESS.")
    runIf: str | bool | None = Field(None, description="Condition rendered at run time; a falsy result (false, 0, empty) skips the task.")
    logLevel: LogLevel | None = Field(None, description="Minimum level of the logs kept for this task.")
    taskCache: TaskCache | None = Field(None, description="`{enabled, ttl}`: reuse the outputs of an earlier successful run of this task with the same execution inputs.")
    workerGroup: WorkerGroup | None = Field(
        None, description="Kestra's worker group: its `key` names the queue whose workers run the task (distributed mode).")
    queue: str | None = Field(
        None, description="The worker queue that runs the task (`tiercel worker --queue NAME`); `default` when unset.")

    static_fields: ClassVar[frozenset[str]] = frozenset({"id", "runIf"})

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        """Do the work; return the task's outputs (read as ``outputs.<id>.<name>``).

        May be a coroutine or a plain function (run in a thread). Raise :class:`TaskError`
        (or any exception) to fail the attempt. Cancellation (timeout, kill) arrives as
        ``asyncio.CancelledError`` in coroutines; plain functions should poll
        ``ctx.cancelled``.
        """
        raise NotImplementedError(f"{self.type} does not run on a worker")


#: What :meth:`FlowableTask.resolve` returns: ``"RUNNING"`` while unfinished, else the terminal
#: state the flowable ends in (``"SUCCESS"``, ``"WARNING"``, ``"FAILED"``, ``"KILLED"``…); a
#: ``tiercel.model.State`` is one of these strings.
Status = str


@dataclass(frozen=True)
class ChildRun:
    """A child task run as a flowable sees it: which task, which loop key, its state and outputs."""

    task_id: str
    key: Any
    state: str
    outputs: dict[str, Any] | None


@dataclass(frozen=True)
class SubflowRequest:
    """A child execution a flowable asks for (see :meth:`FlowableRun.start_subflow`)."""

    namespace: str
    flow_id: str
    revision: int | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    wait: bool = True
    #: Values rendered in the child execution's context when it ends, added to its outputs as the
    #: parent sees them (Kestra's deprecated Subflow ``outputs`` map).
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SubflowResult:
    """How a child execution ended (or failed to start: ``execution_id`` None and ``error`` set)."""

    execution_id: str | None
    state: str
    outputs: dict[str, Any]
    error: str | None


class FlowableRun(abc.ABC):
    """What a flowable task sees while the executor resolves it: its run, its children, its requests.

    Every method is pure bookkeeping on the execution (no I/O): starting children, timers,
    subflows and file work are carried out by the engine after the step is persisted, and their
    results arrive by calling :meth:`FlowableTask.resolve` again.
    """

    #: What the flowable decided so far: an instance of its ``Progress`` model, changed in place, persisted.
    progress: Any
    #: This run's loop value (``taskrun.value``), None outside loops.
    value: str | None
    #: Outputs of this task run (read as ``outputs.<id>.…``); set them as the flowable decides.
    outputs: dict[str, Any] | None
    #: Why the run failed, shown to the user; set it before returning ``FAILED``.
    error: str | None
    #: The engine's clock for this step (epoch seconds).
    now: float

    @abc.abstractmethod
    def render(self, value: Any, /, **extra: Any) -> Any:
        """Render expressions in *value* with this run's variables (``taskrun.value``, ``outputs``…);
        *extra* variables are merged one level deep (``taskrun={"items": uri}`` adds to ``taskrun``)."""

    @abc.abstractmethod
    def truthy(self, value: Any) -> bool:
        """Kestra's truthiness: false, 0, -0 and the empty string are false (after rendering)."""

    @abc.abstractmethod
    def sequence(self, tasks: list[Task], key: Any = None, value: str | None = None) -> Status:
        """Run *tasks* one after the other as children (a loop passes a *key* and a *value* per
        iteration); RUNNING while unfinished, else their combined state (the first failure stops)."""

    @abc.abstractmethod
    def fan_out(self, count: int, branch: Callable[[int], Status], *, limit: int = 0,
                index_of: Callable[[ChildRun], int | None] | None = None, stop_on_failure: bool = True) -> Status:
        """Run *count* branches, at most *limit* at once (0: all), each ``branch(i)`` a status.

        *index_of* tells which branch a finished child belongs to, so each change costs O(1).
        RUNNING while branches remain; else the worst branch state.
        """

    @abc.abstractmethod
    def child(self, task_id: str, key: Any = None) -> ChildRun | None:
        """The child run of *task_id* (with loop *key*), None when not started."""

    @abc.abstractmethod
    def start(self, task: Task, key: Any = None, value: str | None = None) -> ChildRun:
        """Start one child task run now (Dag-like flowables choose which)."""

    @property
    @abc.abstractmethod
    def changed(self) -> ChildRun | None:
        """The child whose end made the engine resolve this flowable again (None otherwise)."""

    @abc.abstractmethod
    def wake_at(self, when: float, name: str) -> None:
        """Resolve this flowable again at *when* (epoch seconds); :attr:`woken` then says *name*."""

    @property
    @abc.abstractmethod
    def woken(self) -> str | None:
        """The name of the timer that fired, when a timer is why the flowable is resolved now."""

    @abc.abstractmethod
    def pause(self) -> None:
        """Hold this run PAUSED until it is resumed (or a timer set with :meth:`wake_at` fires)."""

    @property
    @abc.abstractmethod
    def resumed(self) -> dict[str, Any] | None:
        """The inputs a resume brought (see :meth:`FlowableTask.on_resume`), None until resumed."""

    @abc.abstractmethod
    def start_subflow(self, request: SubflowRequest, index: int | None = None) -> None:
        """Start a child execution; its end is in :attr:`subflows` by *index* when resolved again."""

    @property
    @abc.abstractmethod
    def subflows(self) -> dict[int | None, SubflowResult | None]:
        """Child executions asked for, by index: their result once ended, None while they run."""

    @abc.abstractmethod
    def files(self, kind: str, **params: Any) -> Any:
        """File work done by the engine off the executor, asked once: ``split`` (a tiercel:// file
        into batch files), ``write`` (input files into the shared working directory), ``collect``
        (output files out of it) or ``namespace`` (the namespace files selected by ``include`` and
        ``exclude`` globs into it). None while pending, then its result; a failure fails the run."""

    @abc.abstractmethod
    def share_working_directory(self) -> None:
        """Give this run and every task under it one working directory (removed when the execution ends)."""

    @abc.abstractmethod
    def set_labels(self, labels: dict[str, str]) -> None:
        """Add or replace labels of the execution."""

    def set_variables(self, values: dict[str, Any], unset: list[str]) -> None:
        """Set (or *unset*) execution variables, read as ``vars.<name>`` by every later render (Kestra's
        SetVariables). The ``Progress`` must declare ``setVariables`` and ``unsetVariables``, where they are kept."""
        raise NotImplementedError

    def exit_execution(self, state: str) -> None:
        """End the execution in *state* once what runs now has ended: no further task starts (Kestra's
        Exit). The flowable's ``Progress`` must declare ``exit: str | None = None``, where it is kept."""
        raise NotImplementedError

    @abc.abstractmethod
    def resume_execution(self, execution_id: str | None, inputs: dict[str, Any]) -> bool | None:
        """Resume a paused execution (this one when *execution_id* is None) with *inputs*.

        For another execution: None while the engine checks it exists and is paused, then True
        (resumed); a missing or unpaused execution fails this task run."""


class FlowableTask(Task):
    """A task resolved by the executor: it holds other tasks (or only changes the execution) and
    never holds a worker.

    Implement :meth:`resolve`; keep what you need between two resolutions in ``run.progress``,
    an instance of the nested ``Progress`` model (persisted with the task run, so a restarted
    engine resumes where it was). ``errors`` and ``finally`` blocks, when the model declares them, are
    run by the engine after the status :meth:`resolve` returns.
    """

    static_fields: ClassVar[frozenset[str]] = Task.static_fields | {"tasks", "errors", "finally_", "then", "else_", "cases", "defaults"}

    class Progress(BaseModel):
        """What a flowable decided so far (which branch, which values); subclasses declare fields.

        Assign its fields (``run.progress.values = [...]``) rather than changing a list or a dict
        in place: an assignment is what marks it to be saved.
        """

        model_config = ConfigDict(extra="ignore")
        _assigned: bool = PrivateAttr(False)

        def __setattr__(self, name: str, value: Any) -> None:
            super().__setattr__(name, value)
            if not name.startswith("_"):
                self._assigned = True

    def resolve(self, run: FlowableRun) -> Status:
        """Decide what runs next and whether this task ended: called when the task run starts, each
        time a child ends, a timer fires, a subflow ends or file work is done.

        Return ``"RUNNING"`` while unfinished, else the terminal state. Never blocks, never does I/O.
        """
        raise NotImplementedError(f"{self.type} is a FlowableTask but does not implement resolve(run)")

    def child_variables(self, progress: dict[str, Any], key: Any) -> dict[str, Any] | None:
        """Variables this flowable gives its descendants (Loop's ``item``): *progress* is its saved
        Progress (as JSON), *key* the key of the child branch they run under. None: nothing."""
        return None

    def on_resume(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Check the inputs of a resume of this paused run; raise ValueError to refuse it (it stays paused)."""
        return inputs


class TaskError(Exception):
    """A task failure with a message meant for the user (no traceback shown)."""


@dataclass
class TriggerEvent:
    """What a trigger emits: one execution's worth of data.

    ``variables`` become ``trigger.*`` in expressions. ``key`` deduplicates: the same key
    delivered twice for one trigger creates one execution. ``ack`` is awaited after the
    execution is durably created (commit the source position there); ``nack`` when it
    could not be created.
    """

    variables: dict[str, Any]
    key: str | None = None
    ack: Callable[[], Awaitable[None] | None] | None = None
    nack: Callable[[], Awaitable[None] | None] | None = None
    inputs: dict[str, Any] | None = None
    labels: dict[str, str] | None = None


class Trigger(Component):
    """Starts executions of the flow that declares it."""

    id: str = Field(description="Identifier of the trigger, unique in the flow.")
    description: str | None = Field(None, description="What the trigger does, in Markdown.")
    disabled: bool = Field(False, description="Do not start executions from this trigger.")
    conditions: list[dict[str, Any]] = Field(default_factory=list, description="Conditions that must all hold for an execution to start.")
    inputs: dict[str, Any] | None = Field(None, description="Inputs passed to the executions this trigger starts.")
    stopAfter: list[str] | None = Field(None, description="Disable the trigger once one of its executions ends in one of these states.")
    logLevel: LogLevel | None = Field(None, description="Minimum level of the logs kept for this trigger.")

    static_fields: ClassVar[frozenset[str]] = frozenset({"id", "conditions", "inputs"})


class PollingTrigger(Trigger):
    """A trigger evaluated every ``interval``; each poll starts zero or one execution."""

    interval: timedelta = Field(timedelta(seconds=60), description="How often the source is polled (ISO-8601 duration).")

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        """Look at the source once; return an event (a batch) or None. Commit in ``event.ack``."""
        raise NotImplementedError


class RealtimeTrigger(Trigger):
    """A long-lived listener; each event starts one execution."""

    def listen(self, ctx: RunContext) -> AsyncIterator[TriggerEvent]:
        """Yield events as they arrive, until cancelled. Commit each one in ``event.ack``."""
        raise NotImplementedError


class ScheduleTrigger(Trigger):
    """A trigger the clock fires: the scheduler asks it for its dates and starts one execution per
    date, exactly once (a tick claimed in the same transaction as its execution), with backfills and
    missed dates handled the same way for every kind. ``trigger.date``, ``trigger.next`` and
    ``trigger.previous`` are the dates around an execution."""

    lateMaximumDelay: timedelta | None = Field(None, description="Skip an execution that would start later than this after its scheduled date.")
    recoverMissedSchedules: Literal["ALL", "LAST", "NONE"] = Field(
        "ALL", description="After downtime: start every missed execution (ALL), only the latest (LAST), or none (NONE).")

    def next_fire(self, after: float) -> float:
        """The first scheduled instant (epoch seconds) strictly after *after*."""
        raise NotImplementedError

    def previous_fire(self, before: float) -> float:
        """The last scheduled instant strictly before *before*."""
        raise NotImplementedError

    def zone(self) -> Any:
        """The time zone dates are shown in (a ``tzinfo``)."""
        from datetime import datetime

        return datetime.now().astimezone().tzinfo

    def signature(self) -> str:
        """What defines the dates; when it changes (a new cron, say) the schedule restarts from now."""
        return type(self).type


class ExecutionTrigger(Trigger):
    """A trigger fired when executions of other flows end (or reach given states), evaluated by the
    process where they end. ``trigger.executionId``, ``trigger.namespace``, ``trigger.flowId``,
    ``trigger.state``, ``trigger.outputs`` and ``trigger.labels`` describe the upstream execution."""

    states: list[str] | None = Field(None, description="Upstream states that start this flow; every end state by default.")
    preconditions: Any = Field(None, description="Upstream flows and filters that must all be met (within a time window).")


class WebhookTrigger(Trigger):
    """A trigger fired by an HTTP call to ``/api/v1/executions/webhook/<namespace>/<flowId>/<key>``:
    the server matches the key (in constant time) and starts the execution. ``trigger.body``,
    ``trigger.headers`` and ``trigger.parameters`` describe the call."""

    key: str = Field(min_length=1, max_length=256, description="Secret part of the webhook URL; long and random (at least 8 characters recommended).")
    wait: bool = Field(False, description="Answer the HTTP call only when the execution ends, with its outputs.")


@dataclass
class ScriptJob:
    """Commands for a runner: what to run, with which files and environment."""

    commands: list[list[str]]
    env: dict[str, str] = field(default_factory=dict)
    input_files: dict[str, bytes | Path] = field(default_factory=dict)
    output_files: list[str] = field(default_factory=list)
    timeout: float | None = None
    on_stdout: Callable[[str], None] | None = None
    on_stderr: Callable[[str], None] | None = None
    fail_fast: bool = True


@dataclass
class ScriptResult:
    """What a runner reports: the exit code, the output files fetched back, a tail of stderr."""

    exit_code: int
    output_files: dict[str, Path] = field(default_factory=dict)
    stderr_tail: str = ""


#: The runner of a task that sets no ``taskRunner``: the core plugin's local process runner.
DEFAULT_RUNNER = "core.Process"


class Runner(Component):
    """Runs commands somewhere (a local process, a container, a remote host).

    The runner owns how files travel: input files go to the working directory before the
    commands run, output files matching the globs come back. A timeout or a cancellation
    kills everything the commands started.
    """

    #: Whether the commands run on the worker's own host, where its interpreters and files are
    #: reachable (the process runner); a container or a remote host sets False, and tasks then
    #: name programs by their name in the image or on the host (``python3``, not ``sys.executable``).
    on_worker_host: ClassVar[bool] = False

    async def run(self, ctx: RunContext, job: ScriptJob) -> ScriptResult:
        raise NotImplementedError


class StorageError(Exception):
    """A storage operation failed, or a path was refused."""


class Storage(Component):
    """Internal storage for files and large outputs, addressed by relative POSIX paths.

    The kernel maps ``tiercel://`` URIs onto these paths and checks namespace scoping; a
    storage must still refuse any path that is absolute or climbs out with ``..``.
    """

    def put(self, path: str, data: BinaryIO) -> int:
        """Store the stream at *path* (overwriting), reading it in chunks; return its size."""
        raise NotImplementedError

    def open(self, path: str) -> BinaryIO:
        """A readable binary stream of the file; raise FileNotFoundError when absent."""
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def size(self, path: str) -> int:
        raise NotImplementedError

    def list(self, prefix: str) -> list[str]:
        """Paths of all files under *prefix* (recursive), sorted."""
        raise NotImplementedError

    def delete(self, path: str) -> bool:
        """Delete the file; return whether it existed."""
        raise NotImplementedError


class SecretProvider(Component):
    """A place ``secret('NAME')`` looks values up: environment, files, a vault, the backend.

    The kernel asks the configured providers in order (``TIERCEL_SECRET_PROVIDERS``) and takes
    the first value found. Properties configure where to look; keep credentials out of them
    where the client library reads them from the environment (``VAULT_TOKEN``).
    """

    def get(self, name: str, namespace: str) -> str | None:
        """The value of secret *name* as seen from *namespace*, or None when this provider has none.

        A provider that scopes secrets by namespace looks in *namespace* first, then in each
        parent (``company.team``, then ``company``): see :meth:`lineage`. Raise ``TaskError``
        only for a real failure (unreachable, refused); a missing secret is None.
        """
        raise NotImplementedError

    def open(self, home: Path) -> None:
        """Called once per process before the first lookup, with its home directory (where its
        database and files live). Connect lazily here or in :meth:`get`; the default does nothing."""

    def where(self, name: str) -> str:
        """Where this provider looked for *name*, for the error when no provider has it."""
        return self.type

    @staticmethod
    def lineage(namespace: str) -> list[str]:
        """*namespace* and its parents, nearest first: ``a.b.c`` -> ``[a.b.c, a.b, a]``."""
        parts = namespace.split(".") if namespace else []
        return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


class RunContext(abc.ABC):
    """What a running task or trigger may use. Built by the kernel; plugins only consume it."""

    #: Identity of the run: flow namespace and id, execution, task run and attempt ids.
    namespace: str
    flow_id: str
    execution_id: str | None
    task_run_id: str | None
    attempt: int
    #: Logger whose records are stored with the execution; secrets are masked.
    logger: logging.Logger
    #: The W3C trace context of this attempt (``00-<trace>-<span>-01``) when tracing is on, else None:
    #: scripts get it as ``TRACEPARENT``, HTTP requests as a ``traceparent`` header.
    traceparent: str | None = None
    #: A fresh directory for this attempt, removed afterwards.
    working_dir: Path

    @abc.abstractmethod
    def render(self, value: Any, /, **extra: Any) -> Any:
        """Render expressions in *value* (str, list or dict) against the run's variables."""

    @abc.abstractmethod
    def secret(self, name: str) -> str:
        """The secret *name*; its value is masked in logs and outputs from now on."""

    @abc.abstractmethod
    def put_file(self, source: Path | BinaryIO | bytes, name: str) -> str:
        """Upload a file into internal storage under this run; return its ``tiercel://`` URI."""

    @abc.abstractmethod
    def open_file(self, uri: str) -> BinaryIO:
        """Open a ``tiercel://`` URI for reading (streamed)."""

    def delete_file(self, uri: str) -> bool:
        """Delete a ``tiercel://`` file of this namespace; whether it existed."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete files")

    @abc.abstractmethod
    def metric(self, name: str, value: float, type: str = "counter", **tags: str) -> None:
        """Record a metric of this run."""

    @abc.abstractmethod
    def list_files(self, prefix_uri: str) -> list[str]:
        """``tiercel://`` URIs of the files under *prefix_uri* (the run's namespace only)."""

    @abc.abstractmethod
    def warning(self, message: str) -> None:
        """End this attempt WARNING instead of SUCCESS when run() returns; *message* is logged at WARN."""

    @property
    def kv(self) -> Any:
        """The key/value store, by namespace: ``get(namespace, key)``, ``entry(namespace, key)``,
        ``set(namespace, key, value, ttl=None, type="JSON", overwrite=True) -> bool``,
        ``entries(namespace, prefix="")``, ``delete(namespace, key) -> bool``. Each call is atomic."""
        raise NotImplementedError

    @property
    def namespace_files(self) -> Any:
        """Namespace files (code and data kept beside the flows), by namespace and relative path:
        ``list(namespace, include=None, exclude=None) -> [path]`` (fnmatch globs), ``open(namespace, path)``,
        ``put(namespace, path, bytes | Path | stream)``, ``delete(namespace, path) -> bool``, ``uri(namespace, path)``,
        ``normalise(path)``.
        A path with ``..``, absolute, or with a NUL byte raises ValueError."""
        raise NotImplementedError

    @property
    @abc.abstractmethod
    def cache_dir(self) -> Path:
        """A directory kept across runs on this worker, for caches (virtual environments, downloads)."""

    @abc.abstractmethod
    def runner(self, spec: dict[str, Any] | None = None) -> Runner:
        """The runner a ``taskRunner`` property asks for (the process runner by default)."""

    @abc.abstractmethod
    def track(self, key: str, value: Any) -> None:
        """Record something this attempt started outside the worker: a pid or process group, a
        container id, a pod name, a remote process group. It is persisted at once, so if the
        worker dies the next attempt finds it in :attr:`leftovers`. ``value=None`` forgets *key*
        (call it once the thing is cleaned up)."""

    @property
    @abc.abstractmethod
    def leftovers(self) -> list[dict[str, Any]]:
        """What earlier attempts of this task run tracked and never forgot, oldest first: usually
        things left running by a worker that died. A runner kills or re-attaches to them before
        starting anew, so a task never runs twice side by side."""

    @property
    @abc.abstractmethod
    def cancelled(self) -> bool:
        """True once the run was killed or timed out (for blocking code to poll)."""

    @property
    @abc.abstractmethod
    def state(self) -> dict[str, Any]:
        """A small JSON dict kept across polls of one trigger (last seen id, hash…)."""
