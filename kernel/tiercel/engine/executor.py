"""The executor: a transition from (execution, events) to (execution, effects), with no I/O.

Flowable tasks (Sequential, Parallel, If, Switch, ForEach, Dag, WaitFor, Pause, Subflow…)
are resolved here and never hold a worker; runnable tasks become jobs. The caller persists
the changed rows and carries out the effects (jobs, timers, subflows, cancellations).
A change to a task run re-resolves only its ancestors, so a 10,000-item ForEach costs
O(1) work per finished child, not O(n).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from tiercel.engine.model import FAILURES, TERMINAL, Attempt, Execution, State, TaskRun, new_id

RUNNING = State.RUNNING
_WORST = {State.SUCCESS: 0, State.SKIPPED: 0, State.WARNING: 1, State.CANCELLED: 2, State.KILLED: 3, State.FAILED: 4}


def worst(a: str, b: str) -> str:
    return a if _WORST.get(a, 0) >= _WORST.get(b, 0) else b


@dataclass
class Event:
    """Something that happened to an execution."""

    kind: str  # start | result | kill | resume | timer | subflow | restart
    task_run_id: str | None = None
    attempt: int | None = None
    state: str | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Job:
    """A runnable task attempt for a worker."""

    execution_id: str
    task_run: TaskRun
    task: Any
    attempt: int
    variables: dict[str, Any]
    workdir: str | None = None


@dataclass
class SubflowRequest:
    task_run: TaskRun
    namespace: str
    flow_id: str
    revision: int | None
    inputs: dict[str, Any]
    labels: dict[str, str]
    wait: bool
    index: int | None = None


@dataclass
class IORequest:
    """File work the runtime does for a flowable task, answered by an `io` event."""

    task_run: TaskRun
    kind: str  # split | workdir_in | workdir_out
    params: dict[str, Any]


@dataclass
class Step:
    """The effects of one transition, for the caller to carry out after persisting."""

    jobs: list[Job] = field(default_factory=list)
    timers: list[tuple[str, float, str]] = field(default_factory=list)
    subflows: list[SubflowRequest] = field(default_factory=list)
    io: list[IORequest] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)
    kill_children: list[str] = field(default_factory=list)
    resume_executions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    logs: list[tuple[TaskRun | None, str, str]] = field(default_factory=list)
    ended: bool = False


class FlowPlan:
    """Per-flow lookups computed once: tasks by id and the block each task belongs to."""

    def __init__(self, flow: Any) -> None:
        self.flow = flow
        self.tasks: dict[str, Any] = {}
        self.block: dict[str, tuple[str | None, str]] = {}
        for task, parent, block in flow.walk():
            self.tasks[task.id] = task
            self.block[task.id] = (parent.id if parent is not None else None, block)


class Executor:
    """Resolves flows. ``render(value, variables)`` and ``truthy(value)`` come from tiercel.expr."""

    def __init__(self, renderer: Any, variables: Callable[..., dict[str, Any]], clock: Callable[[], float] = time.time) -> None:
        self.renderer = renderer
        self.variables = variables
        self.clock = clock
        self._plans: dict[int, FlowPlan] = {}

    def plan(self, flow: Any) -> FlowPlan:
        plan = self._plans.get(id(flow))
        if plan is None or plan.flow is not flow:
            plan = self._plans[id(flow)] = FlowPlan(flow)
        return plan

    # --- entry point ----------------------------------------------------------------------
    def apply(self, flow: Any, ex: Execution, events: list[Event]) -> Step:
        c = _Ctx(self, flow, self.plan(flow), ex, Step(), self.clock())
        for event in events:
            if ex.terminal and event.kind not in ("restart",):
                continue
            getattr(self, f"_on_{event.kind}")(c, event)
        if not ex.terminal:
            self._settle_execution_state(c)
        return c.step

    def _on_start(self, c: _Ctx, event: Event) -> None:
        ex = c.ex
        if ex.state not in (State.CREATED, State.QUEUED, State.RESTARTED):
            return
        ex.state, ex.started_at, ex.dirty = RUNNING, c.now, True
        # a replayed execution starts with copied task runs: resolve its open flowables first
        open_ = {tr.id for tr in ex.task_runs.values() if tr.state == RUNNING and _is_flowable(c.plan.tasks[tr.task_id])}
        for tr_id in open_:
            _recount(c, ex.task_runs[tr_id])
        self._resolve_open(c, open_)
        self._resolve_root(c)

    def _resolve_open(self, c: _Ctx, ids: set[str]) -> None:
        """Resolve open flowable task runs again, deepest first (after a restart or a replay)."""
        for tr_id in sorted(ids, key=lambda i: _depth(c.ex, c.ex.task_runs[i]), reverse=True):
            tr = c.ex.task_runs.get(tr_id)
            if tr is not None and tr.state == RUNNING:
                self._reresolve(c, tr, None)

    def _on_result(self, c: _Ctx, ev: Event) -> None:
        tr = c.ex.task_runs.get(ev.task_run_id or "")
        if tr is None or tr.state in TERMINAL or tr.attempt != ev.attempt:
            return  # a result for an attempt already settled: ignored (at-least-once delivery)
        task = c.plan.tasks[tr.task_id]
        attempt = tr.attempts[-1]
        attempt.state, attempt.started_at, attempt.ended_at, attempt.error = ev.state, ev.started_at, ev.ended_at, ev.error
        attempt.new = True
        tr.dirty = True
        if ev.state == "LOST":  # its process died: run it again as a new attempt (at-least-once)
            attempt.state = State.FAILED
            self._dispatch(c, task, tr)
            return
        if ev.state == State.FAILED and c.ex.state != State.KILLING:
            delay = self._retry_delay(c, task, tr)
            if delay is not None:
                tr.state, tr.error = State.RETRYING, ev.error
                _timer(c, tr, c.now + delay, "retry")
                return
        if ev.state == State.SUCCESS and len(tr.attempts) > 1:
            retry = task.retry or getattr(c.flow, "retry", None)
            if retry is not None and retry.warningOnRetry:
                ev.state = State.WARNING
        tr.outputs = ev.outputs
        tr.error = ev.error
        self._finish(c, tr, ev.state)
        self._notify_parent(c, tr)

    def _on_timer(self, c: _Ctx, ev: Event) -> None:
        tr = c.ex.task_runs.get(ev.task_run_id or "")
        if tr is None or tr.state in TERMINAL:
            return
        kind = ev.data.get("kind")
        tr.data.pop("timer", None)
        if kind == "retry" and tr.state == State.RETRYING:
            if c.ex.state == State.KILLING:
                self._finish(c, tr, State.KILLED)
                self._notify_parent(c, tr)
                return
            self._dispatch(c, c.plan.tasks[tr.task_id], tr)
        elif kind in ("delay", "timeout") and tr.state == State.PAUSED:
            if kind == "timeout" and not tr.data.get("delay"):
                tr.error = "not resumed before the pause timeout"
                self._finish(c, tr, State.FAILED)
                self._notify_parent(c, tr)
            else:
                self._resume_task_run(c, tr, {})
        elif kind == "waitfor" and tr.state == RUNNING:
            tr.data["iteration"] = tr.data.get("iteration", 0) + 1
            tr.dirty = True
            self._reresolve(c, tr, None)

    def _on_resume(self, c: _Ctx, ev: Event) -> None:
        paused = [tr for tr in c.ex.task_runs.values() if tr.state == State.PAUSED
                  and (ev.task_run_id is None or tr.id == ev.task_run_id)]
        for tr in paused:
            self._resume_task_run(c, tr, ev.data.get("inputs") or {})

    def _on_subflow(self, c: _Ctx, ev: Event) -> None:
        tr = c.ex.task_runs.get(ev.task_run_id or "")
        if tr is None or tr.state in TERMINAL:
            return
        task = c.plan.tasks[tr.task_id]
        child_state = ev.state or State.FAILED
        if _kind(task) == "core.ForEachItem":
            self._foreachitem_result(c, task, tr, ev, child_state)
            return
        tr.outputs = {"executionId": ev.data.get("executionId"), "state": child_state,
                      "outputs": ev.outputs or {}}
        tr.error = ev.error
        if child_state in FAILURES and getattr(task, "transmitFailed", True):
            state = State.FAILED if child_state != State.KILLED else State.KILLED
        elif child_state == State.WARNING:
            state = State.WARNING
        else:
            state = State.SUCCESS
        self._finish(c, tr, state)
        self._notify_parent(c, tr)

    def _on_io(self, c: _Ctx, ev: Event) -> None:
        tr = c.ex.task_runs.get(ev.task_run_id or "")
        if tr is None or tr.state in TERMINAL:
            return
        if ev.error:
            tr.error = ev.error
            self._finish(c, tr, State.FAILED)
            self._notify_parent(c, tr)
            return
        tr.data.update(ev.data.get("result") or {})
        tr.data[f"{ev.data['kind']}_done"] = True
        tr.dirty = True
        self._reresolve(c, tr, None)

    def _on_kill(self, c: _Ctx, ev: Event) -> None:
        ex = c.ex
        if ex.state in (State.CREATED, State.QUEUED):
            ex.state, ex.ended_at, ex.dirty = State.KILLED, c.now, True
            c.step.ended = True
            return
        ex.state, ex.dirty = State.KILLING, True
        for tr in list(ex.task_runs.values()):
            if tr.state in TERMINAL:
                continue
            task = c.plan.tasks[tr.task_id]
            if _is_flowable(task) and tr.state == RUNNING:
                if _kind(task) == "core.Subflow" and tr.data.get("child"):
                    c.step.kill_children.append(tr.data["child"])
                continue
            if tr.state == RUNNING and tr.attempts and tr.attempts[-1].state == RUNNING:
                c.step.cancel.append(tr.id)  # the worker reports KILLED
            else:
                self._finish(c, tr, State.KILLED)
                self._notify_parent(c, tr)
        if not any(tr.state not in TERMINAL for tr in ex.task_runs.values()):
            self._resolve_root(c)

    def _on_restart(self, c: _Ctx, ev: Event) -> None:
        """Re-run failed or killed task runs in the same execution, each with a new attempt."""
        ex = c.ex
        if ex.state not in (State.FAILED, State.KILLED, State.WARNING, State.PAUSED):
            return
        failed = [tr for tr in ex.task_runs.values() if tr.state in FAILURES]
        ancestors: set[str] = set()
        for tr in failed:
            p = tr.parent_id
            while p:
                ancestors.add(p)
                p = ex.task_runs[p].parent_id
        # errors/finally task runs ran because of the failure: drop them so they run again if needed
        drop = [tr for tr in ex.task_runs.values()
                if c.plan.block.get(tr.task_id, (None, ""))[1] in ("errors", "finally") ]
        for tr in drop:
            self._forget(c, tr)
        ex.state, ex.ended_at, ex.error, ex.outputs, ex.dirty = RUNNING, None, None, {}, True
        for tr_id in ancestors:
            tr = ex.task_runs.get(tr_id)
            if tr is None:
                continue
            tr.state, tr.ended_at, tr.dirty = RUNNING, None, True
            tr.data.pop("main", None)
            _recount(c, tr)
        for tr in failed:
            if tr.id not in ex.task_runs:
                continue
            task = c.plan.tasks[tr.task_id]
            if _is_flowable(task):
                tr.state, tr.ended_at, tr.dirty = RUNNING, None, True
                tr.data.pop("main", None)
                _recount(c, tr)
                ancestors.add(tr.id)
            else:
                tr.ended_at = None
                self._dispatch(c, task, tr)
        c.root.clear()
        self._resolve_open(c, ancestors)
        self._resolve_root(c)

    # --- core mechanics ---------------------------------------------------------------
    def _forget(self, c: _Ctx, tr: TaskRun) -> None:
        c.ex.task_runs.pop(tr.id, None)
        c.ex.index.pop((tr.parent_id, tr.task_id, tr.iteration), None)
        c.ex.outputs_ctx.pop(tr.task_id, None)
        c.ex.forgotten.append(tr.id)
        c.ex.dirty = True

    def _retry_delay(self, c: _Ctx, task: Any, tr: TaskRun) -> float | None:
        retry = task.retry or getattr(c.flow, "retry", None)
        if retry is None:
            return None
        n = len(tr.attempts)
        if retry.maxAttempt is not None and n >= retry.maxAttempt:
            return None
        if retry.maxAttempt is None and retry.maxDuration is None:
            return None
        first = tr.attempts[0].started_at or tr.created_at
        interval = _secs(retry.interval) or 1.0
        if retry.type == "exponential":
            delay = interval * (retry.delayFactor or 2) ** (n - 1)
            if retry.maxInterval is not None:
                delay = min(delay, _secs(retry.maxInterval))
        elif retry.type == "random":
            lo = _secs(retry.minInterval) or 0.0
            hi = _secs(retry.maxInterval) or max(lo, interval)
            delay = random.uniform(lo, hi)
        else:
            delay = interval
        if retry.maxDuration is not None and c.now + delay - first > _secs(retry.maxDuration):
            return None
        return delay

    def _dispatch(self, c: _Ctx, task: Any, tr: TaskRun) -> None:
        tr.attempt += 1
        tr.state, tr.dirty = RUNNING, True
        if tr.started_at is None:
            tr.started_at = c.now
        tr.attempts.append(Attempt(tr.attempt, RUNNING, started_at=c.now))
        variables = self.variables(c.flow, c.ex, tr, c.plan)
        c.step.jobs.append(Job(c.ex.id, tr, task, tr.attempt, variables, workdir=tr.data.get("workdir")))

    def _finish(self, c: _Ctx, tr: TaskRun, state: str) -> None:
        task = c.plan.tasks.get(tr.task_id)
        if task is not None:
            if state == State.FAILED and getattr(task, "allowFailure", False):
                state = State.WARNING
            if state == State.WARNING and getattr(task, "allowWarning", False):
                state = State.SUCCESS
        tr.state, tr.ended_at, tr.dirty = state, c.now, True
        if state in (State.SUCCESS, State.WARNING):
            c.ex.record_outputs(tr)

    def _notify_parent(self, c: _Ctx, tr: TaskRun) -> None:
        """Re-resolve the ancestors of a task run that just finished."""
        while True:
            if tr.parent_id is None:
                self._resolve_root(c)
                return
            parent = c.ex.task_runs[tr.parent_id]
            if parent.state in TERMINAL:
                return
            status = self._handle(c, parent, tr)
            if status == RUNNING:
                return
            self._finish(c, parent, status)
            tr = parent

    def _reresolve(self, c: _Ctx, tr: TaskRun, changed: TaskRun | None) -> None:
        status = self._handle(c, tr, changed)
        if status != RUNNING:
            self._finish(c, tr, status)
            self._notify_parent(c, tr)

    def _create(self, c: _Ctx, task: Any, parent: TaskRun | None, key: Any, value: str | None,
                vpath: list | None = None) -> TaskRun:
        ex = c.ex
        tr = TaskRun(id=new_id(), execution_id=ex.id, task_id=task.id,
                     parent_id=parent.id if parent else None, value=value, iteration=key,
                     state=State.CREATED, seq=c.next_seq(), created_at=c.now)
        if vpath:
            tr.data["vpath"] = vpath
        if parent is not None and parent.data.get("workdir"):
            tr.data["workdir"] = parent.data["workdir"]
        ex.add(tr)
        run_if = getattr(task, "runIf", None)
        if run_if is not None and run_if != "" and run_if is not True:
            try:
                ok = self.renderer.truthy(self._render(c, tr, run_if))
            except Exception as exc:
                tr.error = f"task `{task.id}`: property `runIf`: {exc}"
                self._finish(c, tr, State.FAILED)
                return tr
            if not ok:
                self._finish(c, tr, State.SKIPPED)
                return tr
        if c.ex.state == State.KILLING:
            self._finish(c, tr, State.KILLED)
            return tr
        if _is_flowable(task):
            tr.state, tr.started_at = RUNNING, c.now
            status = self._handle(c, tr, None)
            if status != RUNNING:
                self._finish(c, tr, status)
        else:
            self._dispatch(c, task, tr)
        return tr

    def _render(self, c: _Ctx, tr: TaskRun | None, value: Any) -> Any:
        return self.renderer.render(value, self.variables(c.flow, c.ex, tr, c.plan))

    # --- blocks -----------------------------------------------------------------------
    def _seq(self, c: _Ctx, tasks: list, parent: TaskRun | None, key: Any = None,
             value: str | None = None, vpath: list | None = None) -> str:
        """Run *tasks* one after another; RUNNING while unfinished, else the combined state."""
        result = State.SUCCESS
        cursor_key = (parent.id if parent else None, key, id(tasks))
        start = c.cursor.get(cursor_key, 0)
        for i in range(start, len(tasks)):
            task = tasks[i]
            if task.disabled:
                continue
            tr = c.ex.child(parent.id if parent else None, task.id, key)
            if tr is None:
                if c.ex.state == State.KILLING:
                    return State.KILLED
                tr = self._create(c, task, parent, key, value, vpath)
            if tr.state not in TERMINAL:
                c.cursor[cursor_key] = i
                return RUNNING
            if tr.state in FAILURES:
                return State.FAILED if tr.state == State.CANCELLED else tr.state
            result = worst(result, tr.state)
        # earlier tasks may have ended WARNING: fold them in when starting past zero
        for i in range(0, start):
            task = tasks[i]
            if not task.disabled:
                tr = c.ex.child(parent.id if parent else None, task.id, key)
                if tr is not None:
                    result = worst(result, tr.state if tr.state not in FAILURES else State.FAILED)
        return result

    def _with_handlers(self, c: _Ctx, holder: Any, parent: TaskRun | None, main: str, key: Any = None,
                       value: str | None = None) -> str:
        """After the main block: the `errors` block on failure, then `finally` in any case."""
        result = main
        errors = getattr(holder, "errors", None) or []
        if main in FAILURES and errors and c.ex.state != State.KILLING:
            status = self._seq(c, errors, parent, key, value)
            if status == RUNNING:
                return RUNNING
        final = getattr(holder, "finally_", None) or []
        if final:
            status = self._seq(c, final, parent, key, value)
            if status == RUNNING:
                return RUNNING
            if status in FAILURES:
                result = worst(result, State.FAILED)
            else:
                result = worst(result, status)
        return result

    def _resolve_root(self, c: _Ctx) -> None:
        ex = c.ex
        if ex.terminal:
            return
        flow = c.flow
        main = c.root.get("main")
        if main is None:
            main = self._seq(c, flow.tasks, None)
            if main == RUNNING:
                return
            if ex.state == State.KILLING and main in FAILURES:
                main = State.KILLED
            c.root["main"] = main
        status = self._with_handlers(c, flow, None, main)
        if status == RUNNING:
            return
        after = getattr(flow, "afterExecution", None) or []
        if after:
            ex.state = status  # visible to afterExecution tasks as execution.state
            if self._seq(c, after, None) == RUNNING:
                ex.state = RUNNING
                return
        if ex.state == State.KILLING or main == State.KILLED:
            status = State.KILLED
        if status in (State.SUCCESS, State.WARNING):
            try:
                ex.outputs = self._flow_outputs(c)
            except Exception as exc:
                status, ex.error = State.FAILED, f"flow outputs: {exc}"
        if status == State.FAILED and ex.error is None:
            failed = [tr for tr in ex.task_runs.values() if tr.state == State.FAILED and tr.error]
            if failed:
                last = max(failed, key=lambda t: t.seq)
                ex.error = f"task `{last.task_id}` failed: {last.error}"
        ex.state, ex.ended_at, ex.dirty = status, c.now, True
        c.step.ended = True

    def _flow_outputs(self, c: _Ctx) -> dict[str, Any]:
        outputs = getattr(c.flow, "outputs", None) or []
        if not outputs:
            return {}
        variables = self.variables(c.flow, c.ex, None, c.plan)
        result = {}
        for out in outputs:
            try:
                value = self.renderer.render(out.value, variables)
            except Exception as exc:
                raise ValueError(f"output `{out.id}`: {exc}") from exc
            result[out.id] = _coerce_output(out, value)
        return result

    # --- flowable tasks ---------------------------------------------------------------
    def _handle(self, c: _Ctx, tr: TaskRun, changed: TaskRun | None) -> str:
        task = c.plan.tasks[tr.task_id]
        kind = _kind(task)
        main = tr.data.get("main")
        if main is None:
            if changed is not None and c.plan.block.get(changed.task_id, (None, ""))[1] in ("errors", "finally"):
                changed = None
            handler = _HANDLERS.get(kind)
            if handler is None:
                if hasattr(task, "tasks"):
                    handler = Executor._h_sequential
                else:
                    tr.error = f"task type {kind} is flowable but the executor does not know how to resolve it"
                    return State.FAILED
            try:
                main = handler(self, c, task, tr, changed)
            except Exception as exc:
                tr.error = f"task `{task.id}`: {exc}"
                main = State.FAILED
            if main == RUNNING:
                return RUNNING
            tr.data["main"] = main
            tr.dirty = True
        status = self._with_handlers(c, task, tr, main, value=tr.value)
        if kind == "core.AllowFailure" and status == State.FAILED:
            status = State.WARNING
        return status

    def _h_sequential(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        return self._seq(c, task.tasks, tr, None, tr.value, tr.data.get("vpath"))

    def _h_allow_failure(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        return self._seq(c, task.tasks, tr, None, tr.value, tr.data.get("vpath"))  # WARNING after `errors` ran

    def _h_if(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        if "branch" not in tr.data:
            tr.data["branch"] = "then" if self.renderer.truthy(self._render(c, tr, task.condition)) else "else"
            tr.outputs = {"condition": tr.data["branch"] == "then"}
        branch = (task.then if tr.data["branch"] == "then" else getattr(task, "else_", None)) or []
        return self._seq(c, branch, tr, None, tr.value, tr.data.get("vpath"))

    def _h_switch(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        if "case" not in tr.data:
            value = self._render(c, tr, task.value)
            value = "" if value is None else (json.dumps(value) if isinstance(value, (dict, list)) else str(value).lower() if isinstance(value, bool) else str(value))
            cases = task.cases or {}
            tr.data["case"] = value if value in cases else None
            tr.outputs = {"value": value, "defaults": tr.data["case"] is None}
        case = tr.data["case"]
        branch = (task.cases or {}).get(case) if case is not None else (getattr(task, "defaults", None) or [])
        return self._seq(c, branch or [], tr, None, tr.value, tr.data.get("vpath"))

    def _fan_out(self, c: _Ctx, tr: TaskRun, changed: TaskRun | None, total: int, limit: int,
                 run_one: Callable[[int], str], key_of: Callable[[TaskRun], int | None],
                 stop_on_failure: bool = True) -> str:
        """Run *total* branches with at most *limit* in flight; O(1) per finished child."""
        d = tr.data
        d.setdefault("next", 0)
        d.setdefault("running", 0)
        d.setdefault("done", 0)
        d.setdefault("worst", State.SUCCESS)
        limit = limit if limit and limit > 0 else total
        if changed is not None:
            i = key_of(changed)
            if i is not None:
                status = run_one(i)
                if status != RUNNING:
                    d["running"] -= 1
                    d["done"] += 1
                    d["worst"] = worst(d["worst"], status)
        while d["next"] < total and d["running"] < limit and not (stop_on_failure and d["worst"] in FAILURES):
            i = d["next"]
            d["next"] += 1
            d["running"] += 1
            status = run_one(i)
            if status != RUNNING:
                d["running"] -= 1
                d["done"] += 1
                d["worst"] = worst(d["worst"], status)
        tr.dirty = True
        if d["running"] > 0:
            return RUNNING
        if d["done"] < total and not (stop_on_failure and d["worst"] in FAILURES):
            return RUNNING
        return d["worst"]

    def _h_parallel(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        tasks = [t for t in task.tasks if not t.disabled]
        positions = {t.id: i for i, t in enumerate(tasks)}

        def run_one(i: int) -> str:
            return self._seq(c, [tasks[i]], tr, None, tr.value, tr.data.get("vpath"))

        return self._fan_out(c, tr, changed, len(tasks), _int(self._render(c, tr, getattr(task, "concurrent", 0))),
                             run_one, lambda ch: positions.get(ch.task_id), stop_on_failure=False)

    def _h_foreach(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        d = tr.data
        if "values" not in d:
            d["values"] = _as_list(self._render(c, tr, _foreach_values(task)))
            tr.outputs = {"count": len(d["values"])}
        values = d["values"]
        base = d.get("vpath") or []
        tasks = task.tasks

        def run_one(i: int) -> str:
            value = _value_str(values[i])
            return self._seq(c, tasks, tr, i, value, [*base, value])

        limit = getattr(task, "concurrencyLimit", 1)
        return self._fan_out(c, tr, changed, len(values), _int(self._render(c, tr, limit)), run_one,
                             lambda ch: ch.iteration)

    def _h_dag(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        """Start every node whose dependencies succeeded, at most `concurrent` at a time."""
        nodes = {n.task.id: n for n in task.tasks if not n.task.disabled}
        limit = _int(self._render(c, tr, getattr(task, "concurrent", 0))) or len(nodes)
        succeeded = (State.SUCCESS, State.WARNING, State.SKIPPED)

        def states() -> dict[str, str | None]:
            return {tid: (child.state if (child := c.ex.child(tr.id, tid)) else None) for tid in nodes}

        started = True
        while started:  # a node that ends at once (skipped by runIf, say) may unlock others
            now = states()
            if any(s in FAILURES for s in now.values()):
                break
            running = sum(1 for s in now.values() if s is not None and s not in TERMINAL)
            ready = [tid for tid, s in now.items()
                     if s is None and all(now.get(dep) in succeeded for dep in nodes[tid].dependsOn or [])]
            started = bool(ready[:max(0, limit - running)])
            for tid in ready[:max(0, limit - running)]:
                self._create(c, nodes[tid].task, tr, None, tr.value, tr.data.get("vpath"))
        now = states()
        if any(s is not None and s not in TERMINAL for s in now.values()):
            return RUNNING
        if any(s in FAILURES for s in now.values()):
            return State.FAILED
        if any(s is None for s in now.values()):
            tr.error = "nodes could never start: " + ", ".join(t for t, s in now.items() if s is None)
            return State.FAILED
        result = State.SUCCESS
        for s in now.values():
            result = worst(result, s)
        return result

    def _h_waitfor(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        d = tr.data
        d.setdefault("iteration", 0)
        d.setdefault("since", c.now)
        n = d["iteration"]
        if d.get("waiting") == n:
            return RUNNING
        status = self._seq(c, task.tasks, tr, n, tr.value, tr.data.get("vpath"))
        if status == RUNNING:
            return RUNNING
        tr.outputs = {"iterationCount": n + 1}
        if status in FAILURES:
            return status
        if self.renderer.truthy(self._render(c, tr, task.condition)):
            return State.SUCCESS
        freq = getattr(task, "checkFrequency", None)
        max_iter = getattr(freq, "maxIterations", 100) if freq else 100
        max_dur = _secs(getattr(freq, "maxDuration", None)) if freq else 3600.0
        interval = _secs(getattr(freq, "interval", None)) if freq else 1.0
        if n + 1 >= (max_iter or 100) or (max_dur and c.now - d["since"] >= max_dur):
            if getattr(task, "failOnMaxReached", False):
                tr.error = f"condition still false after {n + 1} iterations"
                return State.FAILED
            return State.SUCCESS
        d["waiting"] = n
        _timer(c, tr, c.now + (interval or 0.0), "waitfor")
        return RUNNING

    def _h_pause(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        d = tr.data
        if not d.get("resumed"):
            if tr.state != State.PAUSED:
                tr.state = State.PAUSED
                delay, timeout = _secs(getattr(task, "delay", None)), _secs(getattr(task, "timeout", None))
                if delay:
                    d["delay"] = delay
                    _timer(c, tr, c.now + delay, "delay")
                elif timeout:
                    _timer(c, tr, c.now + timeout, "timeout")
            return RUNNING
        tasks = getattr(task, "tasks", None) or []
        return self._seq(c, tasks, tr, None, tr.value, tr.data.get("vpath")) if tasks else State.SUCCESS

    def _resume_task_run(self, c: _Ctx, tr: TaskRun, inputs: dict[str, Any]) -> None:
        specs = getattr(c.plan.tasks[tr.task_id], "onResume", None)
        if specs:
            from types import SimpleNamespace

            from tiercel.flow.inputs import resolve_inputs

            try:
                from pydantic import TypeAdapter

                from tiercel.flow.model import Input

                parsed = TypeAdapter(list[Input]).validate_python(specs)
                inputs = resolve_inputs(SimpleNamespace(inputs=parsed), inputs)
            except Exception as exc:
                c.step.logs.append((tr, "WARN", f"resume refused: {exc}"))
                return
        tr.data["resumed"] = True
        tr.state, tr.dirty = RUNNING, True
        tr.outputs = {"onResume": inputs}
        self._reresolve(c, tr, None)

    def _h_subflow(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        if "requested" not in tr.data:
            tr.data["requested"] = True
            inputs = self._render(c, tr, task.inputs or {})
            labels = dict(c.ex.labels) if getattr(task, "inheritLabels", False) else {}
            labels.update(_labels(self._render(c, tr, getattr(task, "labels", None) or {})))
            c.step.subflows.append(SubflowRequest(
                tr, self._render(c, tr, task.namespace), self._render(c, tr, task.flowId),
                getattr(task, "revision", None), inputs, labels, bool(getattr(task, "wait", True))))
        return RUNNING  # the runtime answers with a `subflow` event

    def _h_labels(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        labels = _labels(self._render(c, tr, task.labels))
        c.ex.labels.update(labels)
        c.ex.dirty = True
        tr.outputs = {"labels": labels}
        return State.SUCCESS

    def _h_resume(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        target = self._render(c, tr, getattr(task, "executionId", None)) or c.ex.id
        c.step.resume_executions.append((target, self._render(c, tr, getattr(task, "inputs", None) or {})))
        return State.SUCCESS

    def _h_working_directory(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        d = tr.data
        d.setdefault("workdir", tr.id)
        files = getattr(task, "inputFiles", None)
        if files and not d.get("workdir_in_done"):
            if not d.get("workdir_in_asked"):
                d["workdir_in_asked"] = True
                c.step.io.append(IORequest(tr, "workdir_in", {"files": self._render(c, tr, files)}))
            return RUNNING
        status = self._seq(c, task.tasks, tr, None, tr.value, d.get("vpath"))
        globs = getattr(task, "outputFiles", None)
        if status == RUNNING or not globs or status in FAILURES or d.get("workdir_out_done"):
            if status != RUNNING and d.get("outputFiles"):
                tr.outputs = {"outputFiles": d["outputFiles"]}
            return status
        if not d.get("workdir_out_asked"):
            d["workdir_out_asked"] = True
            c.step.io.append(IORequest(tr, "workdir_out", {"globs": list(globs)}))
        return RUNNING

    def _h_foreachitem(self, c: _Ctx, task: Any, tr: TaskRun, changed: TaskRun | None) -> str:
        d = tr.data
        if "batches" not in d:
            if not d.get("split_asked"):
                d["split_asked"] = True
                batch = task.batch
                c.step.io.append(IORequest(tr, "split", {
                    "items": self._render(c, tr, task.items), "rows": batch.rows, "partitions": batch.partitions,
                    "bytes": batch.bytes, "separator": batch.separator}))
            return RUNNING
        if "results" not in d:
            d["results"] = {}
            base = self.variables(c.flow, c.ex, tr, c.plan)
            wait = bool(getattr(task, "wait", True))
            for i, uri in enumerate(d["batches"]):
                variables = {**base, "taskrun": {**base["taskrun"], "items": uri, "iteration": i}}
                inputs = self.renderer.render(task.inputs or {}, variables)
                labels = dict(c.ex.labels) if getattr(task, "inheritLabels", False) else {}
                labels.update(_labels(self.renderer.render(getattr(task, "labels", None) or {}, variables)))
                c.step.subflows.append(SubflowRequest(
                    tr, self.renderer.render(task.namespace, variables), self.renderer.render(task.flowId, variables),
                    getattr(task, "revision", None), inputs, labels, wait, index=i))
            tr.outputs = {"numberOfBatches": len(d["batches"]), "iterations": {}}
            if not wait or not d["batches"]:
                return State.SUCCESS
        return RUNNING

    def _foreachitem_result(self, c: _Ctx, task: Any, tr: TaskRun, ev: Event, child_state: str) -> None:
        d = tr.data
        d.setdefault("results", {})[str(ev.data.get("index"))] = {
            "executionId": ev.data.get("executionId"), "state": child_state, "outputs": ev.outputs or {}}
        tr.dirty = True
        counts: dict[str, int] = {}
        for result in d["results"].values():
            counts[result["state"]] = counts.get(result["state"], 0) + 1
        tr.outputs = {"numberOfBatches": len(d["batches"]), "iterations": counts,
                      "subflowOutputs": [d["results"][k]["outputs"] for k in sorted(d["results"], key=int)]}
        if len(d["results"]) < len(d["batches"]):
            return
        failed = any(r["state"] in FAILURES for r in d["results"].values())
        if failed and getattr(task, "transmitFailed", True):
            tr.error = f"{counts} of {len(d['batches'])} subflow executions"
            self._finish(c, tr, State.FAILED)
        else:
            self._finish(c, tr, State.WARNING if failed or counts.get(State.WARNING) else State.SUCCESS)
        self._notify_parent(c, tr)

    # --- execution state --------------------------------------------------------------
    def _settle_execution_state(self, c: _Ctx) -> None:
        """RUNNING or PAUSED: paused when a task run waits for a resume and nothing else works."""
        ex = c.ex
        if ex.state in (State.KILLING, State.CREATED, State.QUEUED) or ex.terminal:
            return
        if ex.state == RUNNING and not any(tr.state == State.PAUSED for tr in ex.changed.values()):
            return  # only a task run entering PAUSED can pause a running execution
        active = [tr for tr in ex.task_runs.values() if tr.state not in TERMINAL]
        paused = any(tr.state == State.PAUSED for tr in active)
        busy = any(tr.state in (RUNNING, State.RETRYING, State.CREATED) and not _is_flowable(c.plan.tasks[tr.task_id])
                   for tr in active)
        waiting = any(_kind(c.plan.tasks[tr.task_id]) in ("core.Subflow", "core.WaitFor", "core.ForEachItem")
                      and tr.state == RUNNING for tr in active)
        state = State.PAUSED if paused and not busy and not waiting else RUNNING
        if state != ex.state:
            ex.state, ex.dirty = state, True


class _Ctx:
    __slots__ = ("executor", "flow", "plan", "ex", "step", "now", "cursor", "root")

    def __init__(self, executor: Executor, flow: Any, plan: FlowPlan, ex: Execution, step: Step, now: float) -> None:
        self.executor, self.flow, self.plan, self.ex, self.step, self.now = executor, flow, plan, ex, step, now
        self.cursor = ex.__dict__.setdefault("_cursor", {})
        self.root = ex.__dict__.setdefault("_root", {})

    def next_seq(self) -> int:
        seq = self.ex.__dict__.get("_seq", len(self.ex.task_runs))
        self.ex.__dict__["_seq"] = seq + 1
        return seq


def _depth(ex: Execution, tr: TaskRun) -> int:
    depth = 0
    while tr.parent_id:
        depth += 1
        tr = ex.task_runs[tr.parent_id]
    return depth


def _timer(c: _Ctx, tr: TaskRun, when: float, kind: str) -> None:
    """Arm a timer; it is also kept on the task run so a restarted process re-arms it."""
    tr.data["timer"] = [when, kind]
    tr.dirty = True
    c.step.timers.append((tr.id, when, kind))


def _recount(c: _Ctx, tr: TaskRun) -> None:
    """Forget a fan-out's counters: resolving it again replays its branches (finished ones answer at once)."""
    for key in ("next", "running", "done", "worst"):
        tr.data.pop(key, None)
    c.cursor.clear()


def _kind(task: Any) -> str:
    return type(task).type


def _is_flowable(task: Any) -> bool:
    from tiercel.api import FlowableTask

    return isinstance(task, FlowableTask) or _kind(task) in _HANDLERS


def _secs(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise ValueError(f"expected an integer, got {value!r}") from None


def _as_list(value: Any) -> list:
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


def _foreach_values(task: Any) -> Any:
    values = getattr(task, "values", None)
    return values if values is not None else getattr(task, "value", None)


def _value_str(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, list):
        pairs = [(item["key"], item["value"]) if isinstance(item, dict) else (item.key, item.value) for item in value]
        return {str(k): str(v) for k, v in pairs}
    return {str(k): str(v) for k, v in (value or {}).items()}


def _coerce_output(out: Any, value: Any) -> Any:
    kind = (getattr(out, "type", None) or "STRING").upper()
    if value is None:
        return None
    try:
        if kind == "INT":
            return int(value)
        if kind == "FLOAT":
            return float(value)
        if kind == "BOOLEAN":
            return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes")
        if kind == "JSON" and isinstance(value, str):
            return json.loads(value)
        if kind == "STRING":
            return value if isinstance(value, str) else json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"expected {kind}, got {value!r}") from exc
    return value


_FOREACH = ("core.ForEach", "core.EachParallel")
_HANDLERS: dict[str, Callable[..., str]] = {
    "core.Sequential": Executor._h_sequential,
    "core.AllowFailure": Executor._h_allow_failure,
    "core.If": Executor._h_if,
    "core.Switch": Executor._h_switch,
    "core.Parallel": Executor._h_parallel,
    "core.ForEach": Executor._h_foreach,
    "core.EachParallel": Executor._h_foreach,
    "core.Dag": Executor._h_dag,
    "core.WaitFor": Executor._h_waitfor,
    "core.Pause": Executor._h_pause,
    "core.Subflow": Executor._h_subflow,
    "core.Labels": Executor._h_labels,
    "core.Resume": Executor._h_resume,
    "core.WorkingDirectory": Executor._h_working_directory,
    "core.ForEachItem": Executor._h_foreachitem,
}
