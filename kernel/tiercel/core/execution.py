"""Kestra core tasks that read or keep data across executions: execution.Count and the deprecated state.*.

They run in the executor like other flowables and hand their I/O to the runtime (``run.files``),
which answers with the result once the execution's step is persisted.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tiercel.api import Example, FlowableRun, FlowableTask, Status
from tiercel.core.tasks import _rendered_date
from tiercel.model import State


class FlowRef(BaseModel):
    """A flow named by namespace and id."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    namespace: str = Field(description="Namespace of the flow.")
    flowId: str = Field(description="Id of the flow.")


class Count(FlowableTask):
    """Count the executions of some flows since ``startDate`` and keep the flows whose count makes
    ``expression`` true (Kestra's execution.Count): ``outputs.<id>.results`` lists
    ``{namespace, flowId, count}``, ``outputs.<id>.total`` sums their counts. A listed flow without
    executions counts 0, so ``{{ count == 0 }}`` finds flows that did not run."""

    type: ClassVar[str] = "core.execution.Count"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.core.execution.Count", "io.kestra.plugin.core.execution.Counts",
        "io.kestra.core.tasks.executions.Counts",
    )
    examples: ClassVar[list[Example]] = [
        Example("Flows that did not run in the last 24 hours", """\
id: executions_count
namespace: company.team
tasks:
  - id: counts
    type: core.execution.Count
    expression: "{{ count == 0 }}"
    flows:
      - namespace: company.team
        flowId: logs
    startDate: "{{ now() | dateAdd(-1, 'DAYS') }}"
  - id: alert
    type: core.ForEach
    values: "{{ outputs.counts.results }}"
    tasks:
      - id: log
        type: core.Log
        level: WARN
        message: "{{ (taskrun.value | fromJson).flowId }} did not run for a day"
"""),
    ]

    expression: str = Field(description="Rendered for each flow with `count` (and `namespace`, `flowId`); the "
                                        "flow is kept when it is true, e.g. `{{ count >= 5 }}`.")
    startDate: Any = Field(description="Count executions created from this date (ISO-8601, usually an expression).")
    endDate: Any = Field(None, description="And up to this date; now when omitted.")
    flows: list[FlowRef] | None = Field(None, description="The flows to count, as `{namespace, flowId}`.")
    namespaces: list[str] | None = Field(None, description="Count every flow of these namespaces (and their children).")
    states: list[State] | None = Field(None, description="Count only executions in these states; all when omitted.")

    static_fields: ClassVar[frozenset[str]] = FlowableTask.static_fields | {"expression"}

    def resolve(self, run: FlowableRun) -> Status:
        if not self.flows and not self.namespaces:
            raise ValueError("set `flows` or `namespaces`")
        flows = [FlowRef.model_validate(f if isinstance(f, dict) else f.model_dump()) for f in run.render(
            [f.model_dump() if isinstance(f, BaseModel) else f for f in self.flows or []])]
        counts = run.files("count", flows=[(f.namespace, f.flowId) for f in flows],
                           namespaces=run.render(self.namespaces), states=run.render(self.states),
                           start=_rendered_date(run, self.startDate), end=_rendered_date(run, self.endDate))
        if counts is None:
            return "RUNNING"
        results = []
        for namespace, flow_id, count in counts:
            kept = run.render(self.expression, count=count, namespace=namespace, flowId=flow_id)
            if run.truthy(kept):
                results.append({"namespace": namespace, "flowId": flow_id, "count": count})
        run.outputs = {"results": results, "total": sum(r["count"] for r in results)}
        return "SUCCESS"


class _State(FlowableTask):
    """Fields of the deprecated state tasks (Kestra's state.Get|Set|Delete; use the KV store)."""

    name: str = Field("default", description="Name of the state.")
    namespace: bool = Field(False, description="Share the state with every flow of the namespace (else it is this flow's).")
    taskrunValue: bool = Field(True, description="Keep one state per `taskrun.value` (inside a loop).")

    def _ask(self, run: FlowableRun, action: str, **params: Any) -> Any:
        return run.files("state", action=action, name=run.render(self.name), namespace_wide=bool(self.namespace),
                         value=run.value if self.taskrunValue else None, **params)


class StateGet(_State):
    """Read a state map: ``outputs.<id>.data`` and its size ``count`` (empty when missing, unless
    ``errorOnMissing``). Deprecated by Kestra in favour of the KV store; read for old flows."""

    type: ClassVar[str] = "core.state.Get"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.state.Get", "io.kestra.core.tasks.states.Get")
    examples: ClassVar[list[Example]] = [
        Example("Remember the last processed id between executions", """\
id: state_example
namespace: company.team
tasks:
  - id: last
    type: core.state.Get
    name: cursor
  - id: remember
    type: core.state.Set
    name: cursor
    data:
      lastId: "{{ (outputs.last.data.lastId ?? 0) | int + 1 }}"
  - id: show
    type: core.Log
    message: "processed up to {{ outputs.remember.count }} key(s), last id {{ (outputs.last.data.lastId ?? 0) | int + 1 }}"
"""),
    ]

    errorOnMissing: bool = Field(False, description="Fail when the state does not exist.")

    def resolve(self, run: FlowableRun) -> Status:
        done = self._ask(run, "get", error_on_missing=bool(self.errorOnMissing))
        if done is None:
            return "RUNNING"
        run.outputs = done
        return "SUCCESS"


class StateSet(_State):
    """Merge ``data`` into a state map (created when missing); ``outputs.<id>.count`` is its size."""

    type: ClassVar[str] = "core.state.Set"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.state.Set", "io.kestra.core.tasks.states.Set")
    examples: ClassVar[list[Example]] = [
        Example("Count the runs of a flow in its state", """\
id: state_set_example
namespace: company.team
tasks:
  - id: get
    type: core.state.Get
    name: runs
  - id: set
    type: core.state.Set
    name: runs
    data:
      count: "{{ (outputs.get.data.count ?? 0) | int + 1 }}"
"""),
    ]

    data: dict[str, Any] = Field(default_factory=dict, description="Keys and values to set (merged into the state).")

    def resolve(self, run: FlowableRun) -> Status:
        done = self._ask(run, "set", data=run.render(self.data))
        if done is None:
            return "RUNNING"
        run.outputs = done
        return "SUCCESS"


class StateDelete(_State):
    """Delete a state map; ``outputs.<id>.deleted`` says whether it existed."""

    type: ClassVar[str] = "core.state.Delete"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.state.Delete", "io.kestra.core.tasks.states.Delete")
    examples: ClassVar[list[Example]] = [
        Example("Forget a flow's state", """\
id: state_delete_example
namespace: company.team
tasks:
  - id: reset
    type: core.state.Delete
    name: runs
"""),
    ]

    errorOnMissing: bool = Field(False, description="Fail when the state does not exist.")

    def resolve(self, run: FlowableRun) -> Status:
        done = self._ask(run, "delete", error_on_missing=bool(self.errorOnMissing))
        if done is None:
            return "RUNNING"
        run.outputs = done
        return "SUCCESS"


TASKS = (Count, StateGet, StateSet, StateDelete)
