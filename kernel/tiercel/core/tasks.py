"""Core runnable tasks (Log, Return, OutputValues, Sleep, Fail) and the execution-updating
tasks the executor applies itself (Labels, Resume).

By the time ``run()`` is called the engine has rendered and validated every property, so
these bodies only do the work.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, field_validator

from tiercel.api import Example, FlowableRun, FlowableTask, LogLevel, RunContext, Status, Task, TaskError
from tiercel.core._common import AnyText, LabelsValue, Text, check_user_labels, json_text, rendered_labels

#: Kestra's level names onto Python logging levels (TRACE sits below DEBUG).
LEVELS = {"TRACE": 5, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR}


class Log(Task):
    """Write a message (or several) to the execution's logs.

    A list of messages logs one line each. Kestra's deprecated ``Echo`` task maps here: its
    ``format`` property is read as ``message``.
    """

    type: ClassVar[str] = "core.Log"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.log.Log", "io.kestra.core.tasks.log.Log",
        "io.kestra.plugin.core.debug.Echo", "io.kestra.core.tasks.debugs.Echo",
    )
    examples: ClassVar[list[Example]] = [
        Example("Log a greeting, then several lines at DEBUG level", """\
id: log_example
namespace: company.team
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: hello
    type: core.Log
    message: "Hello, {{ inputs.name }}!"
  - id: details
    type: core.Log
    level: DEBUG
    message:
      - "flow {{ flow.id }}"
      - "execution {{ execution.id }}"
"""),
    ]

    # rendered in run(): an expression giving a map or a list logs it as (compact) JSON, as Kestra
    static_fields: ClassVar[frozenset[str]] = Task.static_fields | {"message"}

    message: Text | list[Text] = Field(
        validation_alias=AliasChoices("message", "format"),
        description="The message to log; a list logs one line per item. Expressions are rendered; "
                    "one giving a map or a list is logged as JSON.")
    level: LogLevel = Field("INFO", description="Log level: TRACE, DEBUG, INFO, WARN or ERROR.")

    async def run(self, ctx: RunContext) -> None:
        lines = self.message if isinstance(self.message, list) else [self.message]
        for line in lines:
            try:
                text = json_text(ctx.render(line))
            except Exception as exc:  # an ExpressionError: say where, as the engine does for rendered properties
                raise TaskError(f"task `{self.id}`: property `message`: {exc}") from None
            ctx.logger.log(LEVELS[self.level], text)
        return None


class Return(Task):
    """Render a value and expose it as the output ``value`` (debugging, or to name a result)."""

    type: ClassVar[str] = "core.Return"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.debug.Return", "io.kestra.core.tasks.debugs.Return")
    examples: ClassVar[list[Example]] = [
        Example("Compute a value and read it from the next task", """\
id: return_example
namespace: company.team
tasks:
  - id: answer
    type: core.Return
    format: "{{ 6 * 7 }}"
  - id: show
    type: core.Log
    message: "The answer is {{ outputs.answer.value }}"
"""),
    ]

    format: AnyText | None = Field(None, description="The value to return, usually an expression; read as `outputs.<id>.value`.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        return {"value": self.format}


class OutputValues(Task):
    """Expose a map of values as outputs, read as ``outputs.<id>.values.<key>``."""

    type: ClassVar[str] = "core.OutputValues"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.output.OutputValues", "io.kestra.core.tasks.outputs.OutputValues")
    examples: ClassVar[list[Example]] = [
        Example("Publish several values at once", """\
id: output_values_example
namespace: company.team
tasks:
  - id: compute
    type: core.OutputValues
    values:
      customer: ACME
      total: "{{ 40 + 2 }}"
  - id: show
    type: core.Log
    message: "{{ outputs.compute.values.customer }} owes {{ outputs.compute.values.total }}"
"""),
    ]

    values: dict[str, Any] = Field(default_factory=dict, description="Values to output; each may be an expression and keeps its rendered type.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        return {"values": self.values}


class Sleep(Task):
    """Wait for a duration without doing anything (the attempt can be killed or timed out meanwhile)."""

    type: ClassVar[str] = "core.Sleep"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.Sleep",)
    examples: ClassVar[list[Example]] = [
        Example("Pause the flow for one second", """\
id: sleep_example
namespace: company.team
tasks:
  - id: nap
    type: core.Sleep
    duration: PT1S
  - id: awake
    type: core.Log
    message: Rested.
"""),
    ]

    duration: timedelta = Field(description="How long to sleep, as an ISO-8601 duration (`PT5S`).")

    @field_validator("duration")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if isinstance(value, timedelta) and value < timedelta(0):
            raise ValueError("duration must not be negative")
        return value

    async def run(self, ctx: RunContext) -> None:
        import asyncio

        await asyncio.sleep(self.duration.total_seconds())
        return None


class Fail(Task):
    """Fail the execution on purpose, always or when ``condition`` is true.

    The condition follows Kestra's truthiness: ``false``, ``0``, ``-0`` and the empty
    string are false, anything else is true.
    """

    type: ClassVar[str] = "core.Fail"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.Fail", "io.kestra.core.tasks.executions.Fail")
    examples: ClassVar[list[Example]] = [
        Example("Stop when an input is invalid", """\
id: fail_example
namespace: company.team
inputs:
  - id: amount
    type: INT
    defaults: 10
tasks:
  - id: check
    type: core.Fail
    condition: "{{ inputs.amount < 0 }}"
    errorMessage: "amount must be positive, got {{ inputs.amount }}"
  - id: go_on
    type: core.Log
    message: "Processing {{ inputs.amount }}"
"""),
    ]

    condition: Text | None = Field(None, description="Fail only when this renders truthy; without it the task always fails.")
    errorMessage: AnyText = Field("Task failure", description="The failure message shown in the execution and its logs.")

    async def run(self, ctx: RunContext) -> None:
        from tiercel.expr import truthy  # the one truthiness rule, shared with runIf and core.If

        if self.condition is None or truthy(self.condition):
            raise TaskError(self.errorMessage)
        return None


class Labels(FlowableTask):
    """Add or overwrite labels of the current execution while it runs.

    The executor applies it (it never holds a worker). Values are rendered, so a label can
    carry data found earlier in the flow.
    """

    type: ClassVar[str] = "core.Labels"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.Labels", "io.kestra.core.tasks.executions.Labels")
    examples: ClassVar[list[Example]] = [
        Example("Label the execution with a computed value", """\
id: labels_example
namespace: company.team
tasks:
  - id: pick
    type: core.Return
    format: gold
  - id: tag
    type: core.Labels
    labels:
      tier: "{{ outputs.pick.value }}"
      team: data
"""),
        Example("Kestra's list form", """\
id: labels_list_example
namespace: company.team
tasks:
  - id: tag
    type: core.Labels
    labels:
      - key: env
        value: dev
"""),
    ]

    labels: LabelsValue = Field(description="Labels to set, as a map or a list of `{key, value}`; the `system.` prefix is reserved.")

    @field_validator("labels")
    @classmethod
    def _no_system_prefix(cls, value: LabelsValue) -> LabelsValue:
        if isinstance(value, str):  # an expression at deploy time: checked once rendered
            return value
        return check_user_labels(value)

    def resolve(self, run: FlowableRun) -> Status:
        labels = rendered_labels(run.render, self.labels)
        run.set_labels(labels)
        run.outputs = {"labels": labels}
        return "SUCCESS"


class Resume(FlowableTask):
    """Resume a PAUSED execution (by default the current one), optionally with ``onResume`` inputs.

    The executor applies it; resuming an execution that is not paused fails the task.
    """

    type: ClassVar[str] = "core.Resume"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.Resume",)
    examples: ClassVar[list[Example]] = [
        Example("Resume the execution that a Flow trigger reports", """\
id: resume_example
namespace: company.team
tasks:
  - id: resume
    type: core.Resume
    executionId: "{{ trigger.executionId }}"
    inputs:
      approved: true
triggers:
  - id: on_paused
    type: core.Flow
    states: [PAUSED]
    preconditions:
      id: approval_flow
      flows:
        - namespace: company.team
          flowId: approval
""", run=False),
    ]

    executionId: str | None = Field(None, description="Id of the execution to resume; the current execution when omitted.")
    namespace: str | None = Field(None, description="Namespace of the flow of that execution (a check against resuming the wrong one).")
    flowId: str | None = Field(None, description="Id of the flow of that execution (a check against resuming the wrong one).")
    inputs: dict[str, Any] | None = Field(None, description="Values for the `onResume` inputs declared by the paused task.")

    def resolve(self, run: FlowableRun) -> Status:
        done = run.resume_execution(run.render(self.executionId) or None, run.render(self.inputs or {}))
        return "RUNNING" if done is None else "SUCCESS"


class Assert(Task):
    """Fail when any of ``conditions`` is falsy (Kestra truthiness), naming each one that failed."""

    type: ClassVar[str] = "core.Assert"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.Assert",)
    static_fields: ClassVar[frozenset[str]] = Task.static_fields | {"conditions"}
    examples: ClassVar[list[Example]] = [
        Example("Check inputs before going on", """\
id: assert_example
namespace: company.team
inputs:
  - id: amount
    type: INT
    defaults: 10
tasks:
  - id: check
    type: core.Assert
    conditions:
      - "{{ inputs.amount > 0 }}"
      - "{{ inputs.amount < 1000 }}"
    errorMessage: "amount out of range: {{ inputs.amount }}"
"""),
    ]

    conditions: list[str] = Field(min_length=1, description="Expressions that must all render truthy.")
    errorMessage: str | None = Field(None, description="Message of the failure (rendered); each failed condition is logged.")

    async def run(self, ctx: RunContext) -> None:
        from tiercel.expr import truthy

        failed = [c for c in self.conditions if not truthy(ctx.render(c))]
        for condition in failed:
            ctx.logger.error("assertion failed: %s", condition)
        if failed:
            message = ctx.render(self.errorMessage) if self.errorMessage else f"{len(failed)} assertion(s) failed"
            raise TaskError(str(json_text(message)))
        return None


class TemplatedTask(Task):
    """Run a task whose whole definition is one rendered YAML ``spec`` (Kestra's TemplatedTask).

    Only runnable tasks (those that run on a worker) can be templated; the spec's `id` is this task's.
    """

    type: ClassVar[str] = "core.templating.TemplatedTask"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.templating.TemplatedTask",)
    examples: ClassVar[list[Example]] = [
        Example("Choose the log level at run time", """\
id: templated_example
namespace: company.team
inputs:
  - id: level
    type: STRING
    defaults: WARN
tasks:
  - id: templated
    type: core.templating.TemplatedTask
    spec: |
      type: core.Log
      level: {{ inputs.level }}
      message: rendered at run time
"""),
    ]

    spec: str = Field(description="The YAML of the task (`type` and its properties), rendered before it is read.")

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        import yaml

        from tiercel.api import FlowableTask
        from tiercel.plugins import get_registry

        data = yaml.safe_load(self.spec)
        if not isinstance(data, dict) or "type" not in data:
            raise TaskError("`spec` must render to a YAML map with a `type`")
        data.setdefault("id", self.id)
        info = get_registry().get("task", str(data["type"]))
        if info is None:
            raise TaskError(f"`spec`: unknown task type `{data['type']}`")
        cls = info.cls
        if issubclass(cls, (FlowableTask, TemplatedTask)):
            raise TaskError(f"`spec`: {data['type']} cannot be templated (only runnable tasks can)")
        try:
            task = cls.model_validate({k: v for k, v in data.items() if k != "type"})
        except ValueError as exc:
            raise TaskError(f"`spec`: invalid {data['type']}: {exc}") from None
        import inspect

        result = task.run(ctx)
        return await result if inspect.isawaitable(result) else result


class Toggle(FlowableTask):
    """Enable or disable a trigger of a deployed flow (this flow by default), as Kestra's trigger.Toggle."""

    type: ClassVar[str] = "core.trigger.Toggle"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.trigger.Toggle",)
    examples: ClassVar[list[Example]] = [
        Example("Pause the nightly schedule from a maintenance flow", """\
id: toggle_example
namespace: company.team
tasks:
  - id: stop_schedule
    type: core.trigger.Toggle
    trigger: nightly
    enabled: false
  - id: work
    type: core.Log
    message: the nightly schedule is off
triggers:
  - id: nightly
    type: core.Schedule
    cron: "0 2 * * *"
""", run=False),
    ]

    namespace: str | None = Field(None, description="Namespace of the flow; this flow's when omitted.")
    flowId: str | None = Field(None, description="Id of the flow; this flow when omitted.")
    trigger: str = Field(description="Id of the trigger.")
    enabled: bool = Field(False, description="Enable (true) or disable (false, the default) the trigger.")

    def resolve(self, run: FlowableRun) -> Status:
        flow = run.render("{{ flow }}")
        done = run.files("toggle", namespace=run.render(self.namespace) or flow["namespace"],
                         flow_id=run.render(self.flowId) or flow["id"], trigger=run.render(self.trigger),
                         enabled=run.truthy(run.render(self.enabled)))
        return "RUNNING" if done is None else "SUCCESS"


class Exit(FlowableTask):
    """End the execution now in ``state``: no further task starts, `errors` and `finally` blocks included
    (tasks already running, in a parallel branch say, finish first). Kestra's Exit."""

    type: ClassVar[str] = "core.Exit"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.Exit",)
    examples: ClassVar[list[Example]] = [
        Example("Stop early when there is nothing to do", """\
id: exit_example
namespace: company.team
inputs:
  - id: rows
    type: INT
    defaults: 0
tasks:
  - id: nothing_to_do
    type: core.If
    condition: "{{ inputs.rows == 0 }}"
    then:
      - id: stop
        type: core.Exit
        state: SUCCESS
  - id: process
    type: core.Log
    message: "processing {{ inputs.rows }} rows"
"""),
    ]

    state: Literal["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"] = Field(
        "WARNING", description="The state the execution ends in: SUCCESS, WARNING (default), FAILED, KILLED or CANCELLED.")

    class Progress(FlowableTask.Progress):
        exit: str | None = None

    def resolve(self, run: FlowableRun) -> Status:
        state = str(run.render(self.state)).upper()
        run.exit_execution(state)
        return "SUCCESS" if state in ("SUCCESS", "WARNING") else "FAILED" if state == "FAILED" else "KILLED"


class SetVariables(FlowableTask):
    """Set execution variables, read as ``vars.<name>`` by the tasks that follow (Kestra's SetVariables)."""

    type: ClassVar[str] = "core.SetVariables"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.SetVariables",)
    examples: ClassVar[list[Example]] = [
        Example("Compute a variable once, use it later", """\
id: set_variables_example
namespace: company.team
variables:
  env: dev
tasks:
  - id: set
    type: core.SetVariables
    variables:
      env: prod
      started: "{{ execution.startDate }}"
  - id: show
    type: core.Log
    message: "{{ vars.env }} since {{ vars.started }}"
"""),
    ]

    variables: dict[str, Any] = Field(description="Variables to set; values are rendered.")
    overwrite: bool = Field(True, description="Replace a variable that exists already; false fails instead.")

    class Progress(FlowableTask.Progress):
        setVariables: dict[str, Any] | None = None
        unsetVariables: list[str] | None = None

    def resolve(self, run: FlowableRun) -> Status:
        values = run.render(self.variables)
        if not run.truthy(run.render(self.overwrite)):
            existing = run.render("{{ vars }}") or {}
            clash = sorted(set(values) & set(existing))
            if clash:
                run.error = f"variable(s) {', '.join(clash)} already set and `overwrite` is false"
                return "FAILED"
        run.set_variables(values, [])
        return "SUCCESS"


class UnsetVariables(FlowableTask):
    """Remove execution variables (set by the flow or by SetVariables), as Kestra's UnsetVariables."""

    type: ClassVar[str] = "core.UnsetVariables"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.UnsetVariables",)
    examples: ClassVar[list[Example]] = [
        Example("Drop a variable", """\
id: unset_variables_example
namespace: company.team
variables:
  token: temporary
tasks:
  - id: unset
    type: core.UnsetVariables
    variables: [token]
  - id: show
    type: core.Log
    message: "{{ vars.token ?? 'gone' }}"
"""),
    ]

    variables: list[str] = Field(description="Names of the variables to remove.")
    ignoreMissing: bool = Field(False, description="Accept names that are not set; false fails instead.")

    class Progress(FlowableTask.Progress):
        setVariables: dict[str, Any] | None = None
        unsetVariables: list[str] | None = None

    def resolve(self, run: FlowableRun) -> Status:
        names = [str(n) for n in run.render(self.variables)]
        if not run.truthy(run.render(self.ignoreMissing)):
            existing = run.render("{{ vars }}") or {}
            missing = [n for n in names if n not in existing]
            if missing:
                run.error = f"no variable {', '.join(missing)} to unset (set `ignoreMissing: true` to accept it)"
                return "FAILED"
        run.set_variables({}, names)
        return "SUCCESS"


class FetchLogs(FlowableTask):
    """Write an execution's log lines (this one by default) to a JSON-lines file, ``outputs.<id>.uri``.

    Kestra's log.Fetch: filter by task ids and minimum level; ``size`` is the number of lines.
    """

    type: ClassVar[str] = "core.log.Fetch"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.log.Fetch", "io.kestra.core.tasks.log.Fetch")
    examples: ClassVar[list[Example]] = [
        Example("Keep this execution's warnings in a file", """\
id: fetch_logs_example
namespace: company.team
tasks:
  - id: careful
    type: core.Log
    level: WARN
    message: disk almost full
  - id: fetch
    type: core.log.Fetch
    level: WARN
  - id: show
    type: core.Log
    message: "{{ read(outputs.fetch.uri) }}"
"""),
    ]

    executionId: str | None = Field(None, description="Execution whose logs to fetch (of this namespace); this one by default.")
    tasksId: list[str] | None = Field(None, description="Only the lines of these task ids.")
    level: LogLevel = Field("INFO", description="Minimum level: TRACE, DEBUG, INFO, WARN or ERROR.")

    def resolve(self, run: FlowableRun) -> Status:
        done = run.files("logs", execution_id=run.render(self.executionId), task_ids=run.render(self.tasksId),
                         level=run.render(self.level))
        if done is None:
            return "RUNNING"
        run.outputs = done
        return "SUCCESS"


class PurgeLogs(FlowableTask):
    """Delete log lines written before ``endDate`` (after ``startDate``), of a namespace, a flow, an
    execution or some levels; ``outputs.<id>.count`` says how many (Kestra's log.PurgeLogs)."""

    type: ClassVar[str] = "core.log.PurgeLogs"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.log.PurgeLogs",)
    examples: ClassVar[list[Example]] = [
        Example("Keep a month of DEBUG and TRACE lines", """\
id: purge_logs_example
namespace: company.team
tasks:
  - id: purge
    type: core.log.PurgeLogs
    endDate: "{{ now() | dateAdd(-30, 'DAYS') }}"
    logLevels: [TRACE, DEBUG]
"""),
    ]

    endDate: datetime = Field(description="Delete lines written up to this date (ISO-8601, usually an expression).")
    startDate: datetime | None = Field(None, description="And from this date only.")
    namespace: str | None = Field(None, description="Only executions of this namespace (and its children).")
    flowId: str | None = Field(None, description="Only executions of this flow.")
    executionId: str | None = Field(None, description="Only this execution.")
    logLevels: list[LogLevel] | None = Field(None, description="Only these levels.")

    def resolve(self, run: FlowableRun) -> Status:
        end, start = _rendered_date(run, self.endDate), _rendered_date(run, self.startDate)
        done = run.files("purge_logs", end=end, start=start, namespace=run.render(self.namespace),
                         flow_id=run.render(self.flowId), execution_id=run.render(self.executionId),
                         levels=run.render(self.logLevels))
        if done is None:
            return "RUNNING"
        run.outputs = done
        return "SUCCESS"


def _rendered_date(run: FlowableRun, value: Any) -> float | None:
    """A date property (a datetime, or an expression giving one or its ISO text) as epoch seconds."""
    from pydantic import TypeAdapter

    value = run.render(value)
    if value is None:
        return None
    moment = TypeAdapter(datetime).validate_python(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
