"""Replay: a new execution of the same flow and inputs that reuses task runs before a chosen task."""

from __future__ import annotations

import copy
from typing import Any

from tiercel.model import SUCCEEDED, TERMINAL, Execution, RunMeta, State, new_id


def replay_execution(rt: Any, execution_id: str, from_task: str | None = None) -> Execution:
    old = rt.stores.executions.load(execution_id)
    if old is None:
        raise ValueError(f"no execution `{execution_id}`")
    flow = rt.flow_of(old)
    new = rt.new_execution(flow, old.inputs, labels=old.labels, trigger=old.trigger, revision=old.flow_revision,
                           original_id=old.original_id or old.id)
    if from_task is not None:
        plan = rt.executor.plan(flow)
        if from_task not in plan.tasks:
            known = ", ".join(sorted(plan.tasks)[:20])
            raise ValueError(f"flow {flow.namespace}.{flow.id} has no task `{from_task}` (tasks: {known})")
        runs = [tr for tr in old.task_runs.values() if tr.task_id == from_task]
        if not runs:
            raise ValueError(f"task `{from_task}` did not run in execution {execution_id}; replay without --from")
        target = min(runs, key=lambda t: t.seq)
        ancestors: set[str] = set()
        pid = target.parent_id
        while pid:
            ancestors.add(pid)
            pid = old.task_runs[pid].parent_id
        ids: dict[str, str] = {}
        for tr in sorted(old.task_runs.values(), key=lambda t: t.seq):
            keep = tr.id in ancestors or (tr.seq < target.seq and tr.state in TERMINAL)
            if not keep or (tr.parent_id and tr.parent_id not in ids):
                continue
            clone = copy.copy(tr)
            clone.id, clone.execution_id = new_id(), new.id
            clone.parent_id = ids.get(tr.parent_id) if tr.parent_id else None
            clone.meta = RunMeta.from_json(copy.deepcopy(tr.meta.to_json()))
            clone.progress = copy.deepcopy(tr.progress)
            clone.attempts = [copy.copy(a) for a in tr.attempts]
            for a in clone.attempts:
                a.new = True
            clone.new = clone.dirty = True
            if tr.id in ancestors:
                clone.state, clone.ended_at = State.RUNNING, None
                clone.meta.main = None
            ids[tr.id] = clone.id
            new.add(clone)
            if clone.state in SUCCEEDED:
                new.record_outputs(clone)
    rt.submit(new)
    result: Execution = new
    return result
