"""Core flowable tasks: each resolves itself through the public :class:`tiercel.FlowableRun`.

The executor calls ``resolve(run)`` when the task run starts and each time something it waits
for happens (a child ends, a timer fires, a subflow ends, file work is done); what a flowable
decided so far lives in its ``Progress`` model. None of them holds a worker, and the engine
knows none of them by name: a plugin's flowable works the same way. Child task fields are typed
``list[Task]`` (Dag: ``list[DagTask]``) so flow validation and the JSON Schema find them
generically; Python keywords get a trailing underscore and a YAML alias (``finally_`` /
``finally``, ``else_`` / ``else``).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from tiercel.api import Example, FlowableRun, FlowableTask, Status, SubflowRequest, Task
from tiercel.core._common import AnyText, LabelsValue, Tasks, Text, check_user_labels, rendered_labels, to_text
from tiercel.model import FAILURES, TERMINAL, State, worst

RUNNING = State.RUNNING


def _errors() -> Any:
    return Field(None, description="Tasks run when a task of this block fails; the block then ends with their outcome.")


def _finally() -> Any:
    return Field(None, alias="finally", description="Tasks run at the end of this block, whatever its outcome.")


class Sequential(FlowableTask):
    """Run child tasks one after the other; the first failure stops the block (then ``errors`` run)."""

    type: ClassVar[str] = "core.Sequential"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.Sequential", "io.kestra.core.tasks.flows.Sequential")
    examples: ClassVar[list[Example]] = [
        Example("Group steps, with a block-level error handler", """\
id: sequential_example
namespace: company.team
tasks:
  - id: steps
    type: core.Sequential
    tasks:
      - id: first
        type: core.Log
        message: first
      - id: second
        type: core.Log
        message: second
    errors:
      - id: alert
        type: core.Log
        level: ERROR
        message: "a step failed"
    finally:
      - id: done
        type: core.Log
        message: block finished
"""),
    ]

    tasks: Tasks = Field(min_length=1, description="Tasks to run in order.")
    errors: Tasks | None = _errors()
    finally_: Tasks | None = _finally()

    def resolve(self, run: FlowableRun) -> Status:
        return run.sequence(self.tasks)


class Parallel(FlowableTask):
    """Run child tasks at the same time, at most ``concurrent`` at once (0: no limit)."""

    type: ClassVar[str] = "core.Parallel"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.Parallel", "io.kestra.core.tasks.flows.Parallel")
    examples: ClassVar[list[Example]] = [
        Example("Two sleeps that overlap", """\
id: parallel_example
namespace: company.team
tasks:
  - id: both
    type: core.Parallel
    tasks:
      - id: left
        type: core.Sleep
        duration: PT1S
      - id: right
        type: core.Sleep
        duration: PT1S
  - id: after
    type: core.Log
    message: both done
"""),
    ]

    tasks: Tasks = Field(min_length=1, description="Tasks to run concurrently.")
    concurrent: int = Field(0, ge=0, description="Maximum number of child tasks running at once; 0 means no limit.")
    errors: Tasks | None = _errors()
    finally_: Tasks | None = _finally()

    def resolve(self, run: FlowableRun) -> Status:
        tasks = [t for t in self.tasks if not t.disabled]
        positions = {t.id: i for i, t in enumerate(tasks)}
        return run.fan_out(len(tasks), lambda i: run.sequence([tasks[i]]), limit=_int(run.render(self.concurrent)),
                           index_of=lambda child: positions.get(child.task_id), stop_on_failure=False)


class If(FlowableTask):
    """Run ``then`` when ``condition`` is truthy, ``else`` otherwise.

    Kestra truthiness: ``false``, ``0``, ``-0`` and the empty string are false; anything
    else is true.
    """

    type: ClassVar[str] = "core.If"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.If", "io.kestra.core.tasks.flows.If")
    examples: ClassVar[list[Example]] = [
        Example("Branch on an input", """\
id: if_example
namespace: company.team
inputs:
  - id: shout
    type: BOOLEAN
    defaults: false
tasks:
  - id: branch
    type: core.If
    condition: "{{ inputs.shout }}"
    then:
      - id: loud
        type: core.Log
        message: HELLO
    else:
      - id: quiet
        type: core.Log
        message: hello
"""),
    ]

    condition: Text | bool = Field(description="Rendered at run time; truthy runs `then`, falsy runs `else`.")
    then: Tasks = Field(min_length=1, description="Tasks run when the condition is true.")
    else_: Tasks | None = Field(None, alias="else", description="Tasks run when the condition is false.")
    errors: Tasks | None = _errors()
    finally_: Tasks | None = _finally()

    class Progress(FlowableTask.Progress):
        branch: str | None = None  # "then" or "else", decided once

    def resolve(self, run: FlowableRun) -> Status:
        if run.progress.branch is None:
            run.progress.branch = "then" if run.truthy(run.render(self.condition)) else "else"
            run.outputs = {"condition": run.progress.branch == "then"}
        return run.sequence((self.then if run.progress.branch == "then" else self.else_) or [])


class Switch(FlowableTask):
    """Run the branch whose key equals the rendered ``value``, or ``defaults`` when none does."""

    type: ClassVar[str] = "core.Switch"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.Switch", "io.kestra.core.tasks.flows.Switch")
    examples: ClassVar[list[Example]] = [
        Example("Pick a branch per environment", """\
id: switch_example
namespace: company.team
inputs:
  - id: env
    type: SELECT
    values: [dev, prod]
    defaults: dev
tasks:
  - id: route
    type: core.Switch
    value: "{{ inputs.env }}"
    cases:
      dev:
        - id: on_dev
          type: core.Log
          message: deploying to dev
      prod:
        - id: on_prod
          type: core.Log
          message: deploying to prod
    defaults:
      - id: unknown
        type: core.Fail
        errorMessage: "unknown environment {{ inputs.env }}"
"""),
    ]

    value: AnyText = Field(description="Rendered at run time and compared, as a string, with the keys of `cases`.")
    cases: dict[str, Tasks] | None = Field(None, description="Branches by value: each key maps to the tasks to run.")
    defaults: Tasks | None = Field(None, description="Tasks run when no case matches.")
    errors: Tasks | None = _errors()
    finally_: Tasks | None = _finally()

    @field_validator("cases", mode="before")
    @classmethod
    def _text_keys(cls, value: Any) -> Any:
        # YAML reads `1:` or `true:` as a number or a boolean; the value is compared as text.
        if isinstance(value, dict):
            return {to_text(key): tasks for key, tasks in value.items()}
        return value

    @model_validator(mode="after")
    def _has_a_branch(self) -> Switch:
        if not self.cases and not self.defaults:
            raise ValueError("core.Switch needs `cases`, `defaults` or both")
        return self

    class Progress(FlowableTask.Progress):
        decided: bool = False
        case: str | None = None  # the matching key; None: the defaults

    def resolve(self, run: FlowableRun) -> Status:
        cases = self.cases or {}
        if not run.progress.decided:
            value = run.render(self.value)
            value = "" if value is None else (json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else
                                              str(value).lower() if isinstance(value, bool) else str(value))
            run.progress.decided, run.progress.case = True, value if value in cases else None
            run.outputs = {"value": value, "defaults": run.progress.case is None}
        case = run.progress.case
        if case is None and not self.defaults:
            run.error = f"no case matches the value {run.outputs['value'] if run.outputs else ''!r} and there are no `defaults`"
            return "FAILED"
        return run.sequence((cases.get(case) if case is not None else self.defaults) or [])


class ForEach(FlowableTask):
    """Run ``tasks`` once per value, one at a time by default (``concurrencyLimit: 0`` runs all at once).

    Inside, ``taskrun.value`` is the current value and ``parent.taskrun.value`` the value of an
    enclosing loop; outputs are read per value, ``outputs.<id>[value]``. Kestra's deprecated
    ``EachSequential`` maps here and its ``value`` property is read as ``values``.
    """

    type: ClassVar[str] = "core.ForEach"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.flow.ForEach",
        "io.kestra.plugin.core.flow.EachSequential", "io.kestra.core.tasks.flows.EachSequential",
    )
    examples: ClassVar[list[Example]] = [
        Example("Loop over a list, two at a time", """\
id: foreach_example
namespace: company.team
tasks:
  - id: each
    type: core.ForEach
    values: ["alpha", "beta", "gamma"]
    concurrencyLimit: 2
    tasks:
      - id: greet
        type: core.Return
        format: "hello {{ taskrun.value }}"
  - id: show
    type: core.Log
    message: "{{ outputs.greet['beta'].value }}"
"""),
        Example("Values from a JSON string (e.g. an earlier output)", """\
id: foreach_json_example
namespace: company.team
tasks:
  - id: each
    type: core.ForEach
    values: '[1, 2, 3]'
    tasks:
      - id: show
        type: core.Log
        message: "item {{ taskrun.value }}"
"""),
    ]

    values: list[Any] | Text = Field(
        validation_alias=AliasChoices("values", "value"),
        description="The values to loop over: a list, a JSON array string, or an expression giving either.")
    concurrencyLimit: int = Field(1, ge=0, description="How many iterations run at once; 1 (default) runs them in order, 0 runs all at once.")
    tasks: Tasks = Field(min_length=1, description="Tasks run for each value.")
    errors: Tasks | None = _errors()
    finally_: Tasks | None = _finally()

    class Progress(FlowableTask.Progress):
        values: list[Any] | None = None  # rendered once, when the loop starts

    def resolve(self, run: FlowableRun) -> Status:
        if run.progress.values is None:
            values = _as_list(run.render(self.values))
            if None in values:
                raise ValueError(f"`values` holds a null at position {values.index(None)}; "
                                 "every value of a ForEach must be set")
            run.progress.values = values
            run.outputs = {"count": len(run.progress.values)}
        values = run.progress.values
        return run.fan_out(len(values), lambda i: run.sequence(self.tasks, key=i, value=_value_text(values[i])),
                           limit=_int(run.render(self.concurrencyLimit)), index_of=lambda child: child.key)


class EachParallel(ForEach):
    """Kestra's deprecated parallel loop: a ``core.ForEach`` that runs every value at once by default.

    Prefer ``core.ForEach`` with ``concurrencyLimit: 0``. Kestra's ``value`` and ``concurrent``
    properties are read as ``values`` and ``concurrencyLimit``.
    """

    type: ClassVar[str] = "core.EachParallel"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.EachParallel", "io.kestra.core.tasks.flows.EachParallel")
    examples: ClassVar[list[Example]] = [
        Example("A Kestra flow using the old name runs unchanged", """\
id: each_parallel_example
namespace: company.team
tasks:
  - id: each
    type: io.kestra.core.tasks.flows.EachParallel
    value: ["a", "b"]
    tasks:
      - id: show
        type: core.Log
        message: "{{ taskrun.value }}"
"""),
    ]

    concurrencyLimit: int = Field(
        0, ge=0, validation_alias=AliasChoices("concurrencyLimit", "concurrent"),
        description="How many iterations run at once; 0 (default) runs all at once.")


class Loop(FlowableTask):
    """Run ``tasks`` once per item of ``values`` (Kestra 2.0's Loop, replacing ForEach and ForEachItem).

    ``values`` is a list, a map (one iteration per entry) or a `tiercel://` file URI (one iteration per
    line). Every task inside, however deeply nested, reads ``item.value``, ``item.index`` (from 0) and,
    for a map, ``item.key``. Each iteration's outputs are keyed by its index: ``outputs.<id>['0']``.
    """

    type: ClassVar[str] = "core.Loop"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.Loop",)
    examples: ClassVar[list[Example]] = [
        Example("Loop over a map, two entries at a time", """\
id: loop_example
namespace: company.team
tasks:
  - id: loop
    type: core.Loop
    values:
      eu: Paris
      us: Boston
    concurrencyLimit: 2
    tasks:
      - id: city
        type: core.Log
        message: "{{ item.index }}: {{ item.key }} is {{ item.value }}"
"""),
    ]

    values: list[Any] | dict[str, Any] | Text = Field(
        description="A list, a map, a `tiercel://` file URI (one item per line) or a JSON string of a list or map.")
    concurrencyLimit: int = Field(1, ge=0, description="Iterations at once: 1 (default) in order, 0 all at once.")
    tasks: Tasks = Field(min_length=1, description="Tasks run for each item.")
    errors: Tasks | None = _errors()
    finally_: Tasks | None = _finally()

    class Progress(FlowableTask.Progress):
        items: list[dict[str, Any]] | None = None  # [{value, index, key?}], rendered once

    def resolve(self, run: FlowableRun) -> Status:
        if run.progress.items is None:
            values = run.render(self.values)
            if isinstance(values, str) and values.startswith("tiercel://"):
                lines = run.files("lines", uri=values)
                if lines is None:
                    return RUNNING
                values = lines
            elif isinstance(values, str):
                values = json.loads(values) if values.strip()[:1] in ("[", "{") else [values]
            if isinstance(values, dict):
                items = [{"key": k, "value": v, "index": i} for i, (k, v) in enumerate(values.items())]
            elif isinstance(values, list):
                items = [{"value": v, "index": i} for i, v in enumerate(values)]
            else:
                raise ValueError(f"`values` must be a list, a map or a file URI, got {type(values).__name__}")
            run.progress.items = items
            run.outputs = {"count": len(items)}
        items = run.progress.items
        return run.fan_out(len(items), lambda i: run.sequence(self.tasks, key=i, value=str(i)),
                           limit=_int(run.render(self.concurrencyLimit)), index_of=lambda child: child.key)

    def child_variables(self, progress: dict[str, Any], key: Any) -> dict[str, Any] | None:
        items = progress.get("items") or []
        return {"item": items[key]} if isinstance(key, int) and 0 <= key < len(items) else None


class AllowFailure(FlowableTask):
    """Run child tasks in order; a failure inside ends this block WARNING and the flow goes on."""

    type: ClassVar[str] = "core.AllowFailure"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.AllowFailure", "io.kestra.core.tasks.flows.AllowFailure")
    examples: ClassVar[list[Example]] = [
        Example("A failing step that does not fail the flow", """\
id: allow_failure_example
namespace: company.team
tasks:
  - id: tolerant
    type: core.AllowFailure
    tasks:
      - id: boom
        type: core.Fail
        errorMessage: expected failure
  - id: next
    type: core.Log
    message: still running
"""),
    ]

    tasks: Tasks = Field(min_length=1, description="Tasks to run in order; their failure only warns.")
    allowFailure: bool = Field(True, description="A failure inside ends this block WARNING (after `errors` ran).")
    errors: Tasks | None = _errors()
    finally_: Tasks | None = _finally()

    def resolve(self, run: FlowableRun) -> Status:
        return run.sequence(self.tasks)


class DagTask(BaseModel):
    """One node of a ``core.Dag``: a task and the ids of the tasks it waits for."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    task: Task = Field(description="The task to run.")
    dependsOn: list[str] | None = Field(None, description="Ids of tasks of the same Dag that must end before this one starts.")


class Dag(FlowableTask):
    """Run tasks as a graph: each starts once every task in its ``dependsOn`` has ended.

    Unknown dependencies and cycles are rejected when the flow is validated.
    """

    type: ClassVar[str] = "core.Dag"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.Dag", "io.kestra.core.tasks.flows.Dag")
    examples: ClassVar[list[Example]] = [
        Example("A diamond: extract, two transforms, load", """\
id: dag_example
namespace: company.team
tasks:
  - id: graph
    type: core.Dag
    tasks:
      - task:
          id: extract
          type: core.Return
          format: data
      - task:
          id: clean
          type: core.Log
          message: "clean {{ outputs.extract.value }}"
        dependsOn: [extract]
      - task:
          id: enrich
          type: core.Log
          message: "enrich {{ outputs.extract.value }}"
        dependsOn: [extract]
      - task:
          id: load
          type: core.Log
          message: loaded
        dependsOn: [clean, enrich]
"""),
    ]

    tasks: list[DagTask] = Field(min_length=1, description="The nodes: `{task, dependsOn}` each.")
    concurrent: int = Field(0, ge=0, description="Maximum number of tasks running at once; 0 means no limit.")
    errors: Tasks | None = _errors()
    finally_: Tasks | None = _finally()

    def resolve(self, run: FlowableRun) -> Status:
        """Start every node whose dependencies succeeded, at most `concurrent` at a time."""
        nodes = {n.task.id: n for n in self.tasks if not n.task.disabled}
        limit = _int(run.render(self.concurrent)) or len(nodes)
        succeeded = (State.SUCCESS, State.WARNING, State.SKIPPED)

        def states() -> dict[str, str | None]:
            return {tid: (child.state if (child := run.child(tid)) else None) for tid in nodes}

        started = True
        while started:  # a node that ends at once (skipped by runIf, say) may unlock others
            now = states()
            if any(s in FAILURES for s in now.values()):
                break
            running = sum(1 for s in now.values() if s is not None and s not in TERMINAL)
            ready = [tid for tid, s in now.items()
                     if s is None and all(now.get(dep) in succeeded for dep in nodes[tid].dependsOn or [])]
            room = ready[:max(0, limit - running)]
            started = bool(room)
            for tid in room:
                run.start(nodes[tid].task)
        now = states()
        if any(s is not None and s not in TERMINAL for s in now.values()):
            return RUNNING
        if any(s in FAILURES for s in now.values()):
            return "FAILED"
        if any(s is None for s in now.values()):
            run.error = "nodes could never start: " + ", ".join(t for t, s in now.items() if s is None)
            return "FAILED"
        result = State.SUCCESS
        for s in now.values():
            result = worst(result, State(s))
        return result

    @model_validator(mode="after")
    def _acyclic(self) -> Dag:
        deps = {node.task.id: list(node.dependsOn or []) for node in self.tasks}
        for tid, needs in deps.items():
            for need in needs:
                if need not in deps:
                    known = ", ".join(sorted(deps))
                    raise ValueError(f"task `{tid}` depends on `{need}`, which is not a task of this Dag (known: {known})")
        cycle = find_cycle(deps)
        if cycle:
            raise ValueError("dependency cycle: " + " -> ".join(cycle))
        return self


def find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """A cycle in the ``node -> dependencies`` graph, as a closed path, or None."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for start in deps:
        if state.get(start):
            continue
        path = [start]
        stack = [iter(deps[start])]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(deps[nxt]))
    return None


class CheckFrequency(BaseModel):
    """Limits of a ``core.WaitFor`` loop."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    maxIterations: int = Field(100, ge=1, description="Stop after this many iterations.")
    maxDuration: timedelta = Field(timedelta(hours=1), description="Stop once the loop has run this long (ISO-8601 duration).")
    interval: timedelta = Field(timedelta(seconds=1), description="Delay between two iterations (ISO-8601 duration).")


class WaitFor(FlowableTask):
    """Run ``tasks`` again and again until ``condition`` is truthy, within ``checkFrequency`` limits.

    The condition is rendered after each iteration and may read the children's outputs.
    The output ``iterationCount`` tells how many iterations ran.
    """

    type: ClassVar[str] = "core.WaitFor"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.WaitFor",)
    static_fields: ClassVar[frozenset[str]] = FlowableTask.static_fields | {"condition"}
    examples: ClassVar[list[Example]] = [
        Example("Poll until a counter reaches three", """\
id: waitfor_example
namespace: company.team
tasks:
  - id: poll
    type: core.WaitFor
    condition: "{{ outputs.count.value | int >= 3 }}"
    checkFrequency:
      interval: PT0.1S
      maxIterations: 10
    tasks:
      - id: count
        type: core.Return
        format: "{{ taskrun.iteration }}"
"""),
    ]

    condition: Text | bool = Field(description="Rendered after each iteration (never before); the loop ends once it is truthy.")
    tasks: Tasks = Field(min_length=1, description="Tasks run at each iteration.")
    checkFrequency: CheckFrequency = Field(default_factory=CheckFrequency, description="Iteration limits and the delay between iterations.")
    failOnMaxReached: bool = Field(False, description="Fail the task when a limit is reached before the condition holds (otherwise it succeeds).")
    errors: Tasks | None = _errors()
    finally_: Tasks | None = _finally()

    class Progress(FlowableTask.Progress):
        iteration: int = 0
        since: float | None = None
        waiting: bool = False  # between two iterations, until the interval's timer fires

    def resolve(self, run: FlowableRun) -> Status:
        p = run.progress
        if p.since is None:
            p.since = run.now
        if p.waiting:
            if run.woken != "next":
                return RUNNING
            p.waiting, p.iteration = False, p.iteration + 1
        if (run.outputs or {}).get("iterationCount") != p.iteration + 1:
            run.outputs = {"iterationCount": p.iteration + 1}  # children read it during the iteration
        status = run.sequence(self.tasks, key=p.iteration)
        if status == RUNNING:
            return RUNNING
        if status in FAILURES:
            run.error = f"iteration {p.iteration + 1} ended {status}"
            return status
        if run.truthy(run.render(self.condition)):
            return "SUCCESS"
        freq = self.checkFrequency
        if p.iteration + 1 >= freq.maxIterations or run.now - p.since >= freq.maxDuration.total_seconds():
            if self.failOnMaxReached:
                run.error = f"condition still false after {p.iteration + 1} iterations"
                return "FAILED"
            return "SUCCESS"
        p.waiting = True
        run.wake_at(run.now + freq.interval.total_seconds(), "next")
        return RUNNING


class NamespaceFiles(BaseModel):
    """Which namespace files to copy into a working directory."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    enabled: bool = Field(True, description="Copy the namespace files at all.")
    include: list[str] | None = Field(None, description="Globs of files to copy (all when omitted).")
    exclude: list[str] | None = Field(None, description="Globs of files not to copy.")


class WorkingDirectoryCache(BaseModel):
    """Files of a WorkingDirectory kept between executions (Kestra's ``cache``): a virtualenv,
    ``node_modules``… restored before the tasks run, saved after a successful run."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    patterns: list[str] = Field(min_length=1, description="Globs, relative to the directory, of the files to cache (`venv/**`).")
    ttl: timedelta | None = Field(None, description="How long the cache is used before it is built again (ISO-8601); forever when omitted.")


class WorkingDirectory(FlowableTask):
    """Run child tasks in order in one shared directory, on one worker.

    ``inputFiles`` are written there before the first child runs; files matching
    ``outputFiles`` are uploaded to internal storage at the end and read as
    ``outputs.<id>.outputFiles['name']``.
    """

    type: ClassVar[str] = "core.WorkingDirectory"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.flow.WorkingDirectory", "io.kestra.core.tasks.flows.WorkingDirectory",
        "io.kestra.core.tasks.flows.Worker",
    )
    examples: ClassVar[list[Example]] = [
        Example("Files prepared once for the tasks inside", """\
id: working_directory_core_example
namespace: company.team
tasks:
  - id: workdir
    type: core.WorkingDirectory
    inputFiles:
      config.json: '{"mode": "fast"}'
    tasks:
      - id: start
        type: core.Log
        message: "config.json is ready for the tasks of this block"
"""),
        Example("Two script steps sharing files (requires the tiercel-scripts plugin)", """\
id: working_directory_example
namespace: company.team
tasks:
  - id: workdir
    type: core.WorkingDirectory
    inputFiles:
      data.csv: |
        name,score
        ada,3
    outputFiles:
      - report.txt
    tasks:
      - id: count
        type: scripts.Shell
        commands:
          - wc -l data.csv > report.txt
      - id: show
        type: scripts.Shell
        commands:
          - cat report.txt
""", run=False),
    ]

    tasks: Tasks = Field(min_length=1, description="Tasks run in order in the shared directory.")
    inputFiles: dict[str, Text] | Text | None = Field(
        None, description="Files to create first: name to content or `tiercel://` URI (or a JSON string of that map).")
    outputFiles: list[str] | None = Field(None, description="Globs, relative to the directory, of files to keep as outputs.")
    namespaceFiles: NamespaceFiles | None = Field(None, description="Copy the flow's namespace files into the directory.")
    cache: WorkingDirectoryCache | None = Field(None, description="`{patterns, ttl}`: files kept between executions, restored before the tasks run.")
    errors: Tasks | None = _errors()
    finally_: Tasks | None = _finally()

    class Progress(FlowableTask.Progress):
        written: bool = False  # the input files are in the directory
        copied: bool = False  # the namespace files are in the directory
        restored: bool | None = None  # the cache was looked for: found (True) or not (False)

    def resolve(self, run: FlowableRun) -> Status:
        run.share_working_directory()
        cache = self.cache
        if cache is not None and run.progress.restored is None:
            found = run.files("cache_restore", ttl=cache.ttl.total_seconds() if cache.ttl is not None else None)
            if found is None:
                return RUNNING
            run.progress.restored = bool(found.get("restored"))
        spec = self.namespaceFiles
        if spec is not None and spec.enabled and not run.progress.copied:
            if run.files("namespace", include=spec.include, exclude=spec.exclude) is None:
                return RUNNING
            run.progress.copied = True
        if self.inputFiles and not run.progress.written:
            if run.files("write", files=run.render(self.inputFiles)) is None:
                return RUNNING
            run.progress.written = True
        status = run.sequence(self.tasks)
        if status == RUNNING or status in FAILURES:
            return status
        if cache is not None and not run.progress.restored:
            if run.files("cache_save", patterns=list(cache.patterns)) is None:
                return RUNNING
        if not self.outputFiles:
            return status
        found = run.files("collect", globs=list(self.outputFiles))
        if found is None:
            return RUNNING
        run.outputs = {"outputFiles": found}
        return status


class Pause(FlowableTask):
    """Pause the execution: resume after ``delay``, or wait for a manual resume (bounded by ``timeout``).

    With neither, it waits until someone resumes it (``tiercel executions resume``, the API
    or ``core.Resume``). Values given for the ``onResume`` inputs are read as
    ``outputs.<id>.onResume.<input>``.
    """

    type: ClassVar[str] = "core.Pause"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.Pause", "io.kestra.core.tasks.flows.Pause")
    examples: ClassVar[list[Example]] = [
        Example("Wait one second, then go on", """\
id: pause_delay_example
namespace: company.team
tasks:
  - id: wait
    type: core.Pause
    delay: PT1S
  - id: after
    type: core.Log
    message: resumed
"""),
        Example("Ask for an approval with a reason", """\
id: pause_approval_example
namespace: company.team
tasks:
  - id: approve
    type: core.Pause
    timeout: PT1H
    onResume:
      - id: reason
        type: STRING
        defaults: approved
  - id: log
    type: core.Log
    message: "Approved: {{ outputs.approve.onResume.reason }}"
""", run=False),
    ]

    delay: timedelta | None = Field(
        None, validation_alias=AliasChoices("delay", "pauseDuration"),
        description="Resume automatically after this duration (Kestra's newer `pauseDuration` is read as this).")
    timeout: timedelta | None = Field(None, description="Fail the task when no one resumed it within this duration.")
    onResume: list[dict[str, Any]] | None = Field(None, description="Inputs (same shape as flow inputs) asked for when resuming.")
    tasks: Tasks | None = Field(None, description="Tasks run after the resume (Kestra's older form; prefer following tasks).")
    errors: Tasks | None = _errors()
    finally_: Tasks | None = _finally()

    @field_validator("onResume")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        """Check each definition as a flow input would be checked; keep the plain mappings."""
        if not isinstance(value, list):
            return value  # an expression at deploy time
        from pydantic import TypeAdapter

        from tiercel.flow.model import Input

        adapter = TypeAdapter(Input)
        for item in value:
            adapter.validate_python(item)
        return value

    def on_resume(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Resume inputs checked against ``onResume`` like flow inputs (a bad value refuses the resume)."""
        if not self.onResume:
            return inputs
        from types import SimpleNamespace

        from pydantic import TypeAdapter

        from tiercel.flow.inputs import resolve_inputs
        from tiercel.flow.model import Input

        specs = TypeAdapter(list[Input]).validate_python(self.onResume)
        return resolve_inputs(SimpleNamespace(inputs=specs), inputs)

    class Progress(FlowableTask.Progress):
        paused: bool = False
        resumed: bool = False

    def resolve(self, run: FlowableRun) -> Status:
        p = run.progress
        if not p.resumed:
            if run.resumed is not None or run.woken == "delay":
                p.resumed = True
                run.outputs = {"onResume": run.resumed or {}}
            elif run.woken == "timeout":
                run.error = "not resumed before the pause timeout"
                return "FAILED"
            else:
                if not p.paused:
                    p.paused = True
                    delay, timeout = _rendered(run, self, "delay"), _rendered(run, self, "timeout")
                    if delay:
                        run.wake_at(run.now + delay.total_seconds(), "delay")
                    elif timeout:
                        run.wake_at(run.now + timeout.total_seconds(), "timeout")
                run.pause()
                return RUNNING
        return run.sequence(self.tasks) if self.tasks else "SUCCESS"


class _ChildFlow(FlowableTask):
    """Fields shared by Subflow and ForEachItem: which flow to start, and how."""

    namespace: str = Field(description="Namespace of the flow to start.")
    flowId: str = Field(description="Id of the flow to start.")
    revision: int | None = Field(None, ge=1, description="Revision of that flow; the latest when omitted.")
    inputs: dict[str, Any] | None = Field(None, description="Inputs passed to the child execution.")
    labels: LabelsValue | None = Field(None, description="Labels added to the child execution, as a map or a list of `{key, value}`.")
    wait: bool = Field(True, description="Wait for the child execution to end; its outputs are then read as `outputs.<id>.outputs`.")
    transmitFailed: bool = Field(True, description="A failed child fails this task (needs `wait`).")
    inheritLabels: bool = Field(False, description="Copy this execution's labels to the child execution.")

    @field_validator("labels")
    @classmethod
    def _no_system_prefix(cls, value: LabelsValue | None) -> LabelsValue | None:
        if isinstance(value, str):  # an expression at deploy time: checked once rendered
            return value
        return check_user_labels(value)


    def request(self, run: FlowableRun, **taskrun: Any) -> SubflowRequest:
        """The child execution to ask for, rendered with this run's variables (and *taskrun* extras)."""
        labels: dict[str, str] = {}
        if self.inheritLabels:
            labels.update(run.render("{{ labels }}") or {})
        labels.update(rendered_labels(lambda value: run.render(value, taskrun=taskrun), self.labels))
        return SubflowRequest(namespace=run.render(self.namespace), flow_id=run.render(self.flowId),
                              revision=self.revision,
                              inputs=run.render(self.inputs or {}, taskrun=taskrun),
                              labels=labels, wait=self.wait)


class Subflow(_ChildFlow):
    """Start an execution of another flow, wait for it by default, and expose its outputs."""

    type: ClassVar[str] = "core.Subflow"
    static_fields: ClassVar[frozenset[str]] = FlowableTask.static_fields | {"outputs"}
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.flow.Subflow", "io.kestra.core.tasks.flows.Subflow",
        "io.kestra.plugin.core.flow.Flow", "io.kestra.core.tasks.flows.Flow",
    )
    examples: ClassVar[list[Example]] = [
        Example("Call a child flow and use its output", """\
id: subflow_example
namespace: company.team
tasks:
  - id: child
    type: core.Subflow
    namespace: company.team
    flowId: greeter
    inputs:
      name: Ada
    wait: true
    transmitFailed: true
  - id: show
    type: core.Log
    message: "{{ outputs.child.outputs.greeting }}"
""", run=False),
    ]


    outputs: dict[str, Any] | None = Field(None, description=(
        "Deprecated (Kestra's form; use the child flow's `outputs`): values rendered in the child "
        "execution's context when it ends, read as `outputs.<id>.outputs.<key>`."))

    def resolve(self, run: FlowableRun) -> Status:
        if not run.subflows:
            request = self.request(run)
            if self.outputs:
                request = dataclasses.replace(request, outputs=dict(self.outputs))
            run.start_subflow(request)
            return RUNNING
        result = run.subflows[None]
        if result is None:
            return RUNNING  # the child runs; its end resolves this again
        run.outputs = {"executionId": result.execution_id, "state": result.state, "outputs": result.outputs}
        run.error = result.error
        if result.state in FAILURES and self.transmitFailed:
            return "KILLED" if result.state == "KILLED" else "FAILED"
        return "WARNING" if result.state == "WARNING" else "SUCCESS"


class Batch(BaseModel):
    """How ``core.ForEachItem`` splits its file; set at most one of rows, bytes and partitions."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    rows: int | None = Field(None, ge=1, description="Items (lines) per batch; 1 when nothing is set.")
    bytes: str | None = Field(None, description="Maximum size of a batch, e.g. `10MB`.")
    partitions: int | None = Field(None, ge=1, description="Split into this many batches of equal item count.")
    separator: str = Field("\n", description="What separates items in the file.")

    @model_validator(mode="after")
    def _one_strategy(self) -> Batch:
        chosen = [name for name in ("rows", "bytes", "partitions") if getattr(self, name) is not None]
        if len(chosen) > 1:
            raise ValueError(f"set only one of rows, bytes and partitions (got {', '.join(chosen)})")
        return self


class ForEachItem(_ChildFlow):
    """Split a file from internal storage into batches and start one subflow execution per batch.

    Each child reads its batch as the ``tiercel://`` URI ``{{ taskrun.items }}`` (pass it as an
    input). With ``wait``, the children's outputs are merged into one file, ``outputs.<id>.uri``.
    """

    type: ClassVar[str] = "core.ForEachItem"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.flow.ForEachItem", "io.kestra.core.tasks.flows.ForEachItem")
    static_fields: ClassVar[frozenset[str]] = FlowableTask.static_fields | {"inputs"}
    examples: ClassVar[list[Example]] = [
        Example("One child execution per 100 lines of an uploaded file", """\
id: foreach_item_example
namespace: company.team
inputs:
  - id: file
    type: FILE
tasks:
  - id: each_batch
    type: core.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: 100
    namespace: company.team
    flowId: process_batch
    inputs:
      data: "{{ taskrun.items }}"
    wait: true
    transmitFailed: true
""", run=False),
    ]

    items: Text = Field(description="`tiercel://` URI of the file to split, one item per line (usually an expression).")
    batch: Batch = Field(default_factory=Batch, description="How to split the file into batches.")

    def resolve(self, run: FlowableRun) -> Status:
        batch = _rendered(run, self, "batch")
        batches = run.files("split", items=run.render(self.items), rows=batch.rows, partitions=batch.partitions,
                            bytes=batch.bytes, separator=batch.separator)
        if batches is None:
            return RUNNING
        if not run.subflows:
            for i, uri in enumerate(batches):
                run.start_subflow(self.request(run, items=uri, iteration=i), index=i)
            run.outputs = {"numberOfBatches": len(batches), "iterations": {}}
            if not self.wait or not batches:
                return "SUCCESS"
        results = {i: r for i, r in run.subflows.items() if r is not None}
        counts: dict[str, int] = {}
        for r in results.values():
            counts[r.state] = counts.get(r.state, 0) + 1
        run.outputs = {"numberOfBatches": len(batches), "iterations": counts,
                       "subflowOutputs": [results[i].outputs for i in sorted(results)]}  # type: ignore[type-var]
        if len(results) < len(batches):
            return RUNNING
        failed = any(r.state in FAILURES for r in results.values())
        if failed and self.transmitFailed:
            ended = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            run.error = f"{len(batches)} subflow executions: {ended}"
            return "FAILED"
        return "WARNING" if failed or counts.get("WARNING") else "SUCCESS"


def _rendered(run: FlowableRun, task: FlowableTask, name: str) -> Any:
    """Field *name* rendered with the run's variables and validated to its declared type."""
    from pydantic import TypeAdapter

    value = getattr(task, name)
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_unset=True)
    value = run.render(value)
    try:
        return TypeAdapter(type(task).model_fields[name].annotation).validate_python(value)
    except ValueError as exc:
        detail = "; ".join(e["msg"] for e in exc.errors()) if hasattr(exc, "errors") else str(exc)
        raise ValueError(f"property `{name}`: {detail} (rendered to {json.dumps(value, default=str)})") from None


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise ValueError(f"expected an integer, got {value!r}") from None


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"`values` must be a list or a JSON array, got {value!r}") from None
    if isinstance(value, dict):
        return [{"key": k, "value": v} for k, v in value.items()]
    if not isinstance(value, list):
        raise ValueError(f"`values` must be a list or a JSON array, got {type(value).__name__}")
    return value


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
