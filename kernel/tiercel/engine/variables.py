"""The variables expressions see: flow, execution, inputs, vars, outputs, taskrun, parent, trigger, labels.

The executor builds them through :class:`Variables`; the functions that read outside the
execution (``secret()``, ``kv()``, ``read()``) come from a :class:`Lookups` the process gives
it, so the executor itself does no I/O.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Protocol

from tiercel.api import FlowableTask, Task
from tiercel.flow.model import Flow
from tiercel.model import Execution, TaskRun, iso


class Lookups(Protocol):
    """What expressions may read outside the execution, bound to one execution."""

    def __call__(self, ex: Execution) -> dict[str, Any]:
        """The functions (``secret``, ``kv``, ``read``, ``render``…) and process-wide values (``envs``,
        ``globals``) for expressions of *ex*."""
        ...


class Variables:
    """Builds the variables of one task run (or of the flow) and renders expressions with them."""

    def __init__(self, renderer: Any, lookups: Lookups) -> None:
        from tiercel.expr import truthy

        self.renderer = renderer
        self.truthy: Callable[[Any], bool] = truthy
        self.lookups = lookups
        self._bases: weakref.WeakKeyDictionary[Execution, dict[str, Any]] = weakref.WeakKeyDictionary()

    def render(self, value: Any, variables: dict[str, Any]) -> Any:
        return self.renderer.render(value, variables)

    @staticmethod
    def execution_vars(flow: Flow, ex: Execution) -> dict[str, Any]:
        """``vars``: the flow's variables, changed by the runs that set or unset some (SetVariables), in order."""
        values = flow.variables or {}
        changes = [tr for tr in ex.task_runs.values() if tr.progress and ("setVariables" in tr.progress
                                                                          or "unsetVariables" in tr.progress)]
        if changes:
            values = dict(values)
            for tr in sorted(changes, key=lambda t: t.seq):
                values.update(tr.progress.get("setVariables") or {})  # type: ignore[union-attr]
                for name in tr.progress.get("unsetVariables") or []:  # type: ignore[union-attr]
                    values.pop(name, None)
        return values

    def refresh_vars(self, flow: Flow, ex: Execution) -> None:
        """Recompute ``vars`` after a run changed them."""
        base = self._bases.get(ex)
        if base is not None:
            base["vars"] = self.execution_vars(flow, ex)

    def build(self, flow: Flow, ex: Execution, tr: TaskRun | None, task: Task | None) -> dict[str, Any]:
        """Variables for rendering a property of *tr* (or of the flow when None).

        The large parts (outputs, inputs) are shared, never copied: building this is O(depth).
        """
        base = self._bases.get(ex)
        if base is None:
            trigger = ex.trigger or {}
            base = self._bases[ex] = {
                "flow": {"id": ex.flow_id, "namespace": ex.namespace, "revision": ex.flow_revision},
                "execution": {"id": ex.id, "startDate": iso(ex.started_at or ex.created_at),
                              "originalId": ex.original_id or ex.id, "state": ex.state},
                "inputs": ex.inputs,
                "vars": self.execution_vars(flow, ex),
                "outputs": ex.outputs_ctx,
                "labels": ex.labels,
                "trigger": trigger.get("variables", {}),
                **self.lookups(ex),
            }
        base["execution"]["state"] = ex.state
        if tr is None:
            return base
        variables = dict(base)
        variables["task"] = {"id": tr.task_id, "type": type(task).type if task is not None else None}
        variables["taskrun"] = {"id": tr.id, "value": tr.value, "iteration": tr.iteration,
                                "attemptsCount": max(tr.attempt - 1, 0), "parentId": tr.parent_id,
                                "startDate": iso(tr.started_at or tr.created_at)}  # attempts before this one, as Kestra
        parents = []
        pid = tr.parent_id
        child = tr
        while pid:
            p = ex.task_runs.get(pid)
            if p is None:
                break
            try:
                owner: Any = flow.task(p.task_id)  # indexed: a dict lookup
            except KeyError:
                owner = None
            if getattr(type(owner), "child_variables", None) not in (None, FlowableTask.child_variables):  # Loop's `item`
                for name, value in (owner.child_variables(p.progress or {}, child.iteration) or {}).items():
                    variables.setdefault(name, value)
            child = p
            parents.append({"taskrun": {"id": p.id, "value": p.value, "iteration": p.iteration},
                            "outputs": p.outputs or {}})
            if p.meta.workdir == p.id and "workerTaskrun" not in variables:  # Kestra's: the WorkingDirectory's run
                variables["workerTaskrun"] = parents[-1]["taskrun"]
            pid = p.parent_id
        if parents:
            variables["parent"] = parents[0]
        variables["parents"] = parents
        if tr.meta.workdir:
            variables["workingDir"] = tr.meta.workdir
        return variables
