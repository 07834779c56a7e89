"""The variables expressions see: flow, execution, inputs, vars, outputs, taskrun, parent, trigger, labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tiercel.engine.model import Execution, TaskRun, iso


def build_variables(flow: Any, ex: Execution, tr: TaskRun | None, plan: Any,
                    functions: dict[str, Callable[..., Any]]) -> dict[str, Any]:
    """Variables for rendering a property of *tr* (or of the flow when None).

    The large parts (outputs, inputs) are shared, never copied: building this is O(depth).
    """
    base = ex.__dict__.get("_vars")
    if base is None:
        trigger = ex.trigger or {}
        base = ex.__dict__["_vars"] = {
            "flow": {"id": ex.flow_id, "namespace": ex.namespace, "revision": ex.flow_revision},
            "execution": {"id": ex.id, "startDate": iso(ex.started_at or ex.created_at),
                          "originalId": ex.original_id or ex.id, "state": ex.state},
            "inputs": ex.inputs,
            "vars": getattr(flow, "variables", None) or {},
            "outputs": ex.outputs_ctx,
            "labels": ex.labels,
            "trigger": trigger.get("variables", {}),
            **functions,
        }
    base["execution"]["state"] = ex.state
    if tr is None:
        return base
    variables = dict(base)
    task = plan.tasks.get(tr.task_id)
    variables["task"] = {"id": tr.task_id, "type": type(task).type if task is not None else None}
    variables["taskrun"] = {"id": tr.id, "value": tr.value, "iteration": tr.iteration,
                            "attemptsCount": max(tr.attempt, 1), "parentId": tr.parent_id,
                            "startDate": iso(tr.started_at or tr.created_at)}
    parents = []
    pid = tr.parent_id
    while pid:
        p = ex.task_runs.get(pid)
        if p is None:
            break
        parents.append({"taskrun": {"id": p.id, "value": p.value, "iteration": p.iteration},
                        "outputs": p.outputs or {}})
        pid = p.parent_id
    if parents:
        variables["parent"] = parents[0]
    variables["parents"] = parents
    if tr.data.get("workdir"):
        variables["workingDir"] = tr.data["workdir"]
    return variables
