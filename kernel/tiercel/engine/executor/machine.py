"""The executor: ``apply(flow, execution, events) -> Effects``, with no I/O of its own.

It changes the execution in place (task runs created, states moved) and says what the caller
must do once that is persisted: jobs for workers, timers, subflows, file work, cancellations.
Flowable tasks resolve themselves through :class:`tiercel.FlowableRun` (see ``run.py``); the
executor never names a task type. A change to a task run re-resolves only its ancestors, so a
10,000-item ForEach costs O(1) work per finished child, not O(n).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tiercel.api import FlowableTask, Task
from tiercel.engine.executor import rules
from tiercel.engine.executor.effects import ArmTimer, Effects, Job
from tiercel.engine.executor.events import (
    Event,
    FilesDone,
    Kill,
    Lost,
    Recover,
    Restart,
    Result,
    Resume,
    Start,
    SubflowEnded,
    Timer,
)
from tiercel.engine.variables import Variables
from tiercel.flow.model import Flow
from tiercel.model import (
    FAILURES,
    SUCCEEDED,
    TERMINAL,
    Attempt,
    ChildExecution,
    Execution,
    State,
    TaskRun,
    new_id,
    worst,
)

RUNNING = State.RUNNING
#: Blocks whose tasks run because of the main block's outcome; a change there never re-resolves it.
HANDLER_BLOCKS = ("errors", "finally")


class FlowPlan:
    """Per-flow lookups computed once: tasks by id, and the (parent id, block) each task sits in."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.tasks: dict[str, Task] = {}
        self.block: dict[str, tuple[str | None, str]] = {}
        for task, parent, block in flow.walk():
            self.tasks[task.id] = task
            self.block[task.id] = (parent.id if parent is not None else None, block)


@dataclass
class Memo:
    """What the executor remembers of one execution between steps in this process (never persisted:
    a reloaded execution rebuilds it by replaying, where finished children answer at once)."""

    #: (parent task run id, loop key, block id) -> index of the first unfinished task of a sequence.
    cursor: dict[tuple[str | None, Any, int], int] = field(default_factory=dict)
    #: The outcome of the flow's main block, once known.
    root_main: State | None = None
    #: Each flowable's Progress, validated once from its task run, by task run id.
    progress: dict[str, Any] = field(default_factory=dict)
    #: The state an Exit-like flowable ended the execution with (found in task runs' progress once).
    exit_state: State | None = None
    exit_checked: bool = False
    #: The end state a violated SLA asked for (FAILED or CANCELLED).
    sla_state: State | None = None
    #: Delay before the new execution that replaces this one (retry CREATE_NEW_EXECUTION).
    retry_delay: float | None = None


class Executor:
    """Resolves flows. *variables* builds what expressions see; *clock* is the step's time."""

    def __init__(self, variables: Variables, clock: Callable[[], float] = time.time) -> None:
        self.variables = variables
        self.clock = clock
        self._plans: dict[int, FlowPlan] = {}
        self._memos: weakref.WeakKeyDictionary[Execution, Memo] = weakref.WeakKeyDictionary()

    def plan(self, flow: Flow) -> FlowPlan:
        plan = self._plans.get(id(flow))
        if plan is None or plan.flow is not flow:
            plan = self._plans[id(flow)] = FlowPlan(flow)
        return plan

    def apply(self, flow: Flow, ex: Execution, events: Iterable[Event]) -> Effects:
        """Apply *events* to *ex* in order; return what to do once the changes are persisted."""
        memo = self._memos.get(ex)
        if memo is None:
            memo = self._memos[ex] = Memo()
        step = Step(self, flow, self.plan(flow), ex, Effects(), self.clock(), memo)
        for event in events:
            if ex.terminal and not isinstance(event, Restart):
                continue
            step.on(event)
        if not ex.terminal:
            step.settle_execution_state()
        return step.effects


class Step:
    """One transition of one execution: the events applied, the task runs touched, the effects."""

    def __init__(self, executor: Executor, flow: Flow, plan: FlowPlan, ex: Execution, effects: Effects, now: float,
                 memo: Memo) -> None:
        self.executor, self.flow, self.plan, self.ex, self.effects, self.now, self.memo = \
            executor, flow, plan, ex, effects, now, memo

    # --- events ---------------------------------------------------------------------------
    def on(self, event: Event) -> None:
        match event:
            case Start():
                self.start()
            case Result():
                self.result(event)
            case Lost():
                self.lost(event)
            case Timer():
                self.timer(event)
            case Resume():
                self.resume(event)
            case SubflowEnded():
                self.subflow_ended(event)
            case FilesDone():
                self.files_done(event)
            case Kill():
                self.kill()
            case Restart():
                self.restart()
            case Recover():
                self.recover(event.in_flight)

    def start(self) -> None:
        ex = self.ex
        if ex.state not in (State.CREATED, State.QUEUED, State.RESTARTED):
            return
        ex.state, ex.started_at, ex.dirty = RUNNING, self.now, True
        self.arm_sla()
        # a replayed execution starts with copied task runs: resolve its open flowables first
        open_ = {tr.id for tr in ex.task_runs.values() if tr.state == RUNNING and self.is_flowable(tr)}
        for tr_id in open_:
            self.recount(ex.task_runs[tr_id])
        self.resolve_open(open_)
        self.resolve_root()

    def result(self, ev: Result) -> None:
        tr = self.ex.task_runs.get(ev.task_run_id)
        if tr is None or tr.state in TERMINAL or tr.attempt != ev.attempt or not tr.attempts:
            return  # a result for an attempt already settled: ignored (at-least-once delivery)
        task = self.plan.tasks[tr.task_id]
        attempt = tr.attempts[-1]
        attempt.state, attempt.started_at, attempt.ended_at, attempt.error = ev.state, ev.started_at, ev.ended_at, ev.error
        if ev.worker:
            attempt.worker = ev.worker
        attempt.new = True
        tr.dirty = True
        state = ev.state
        retry = self.retry_of(task)
        if state == State.FAILED and self.ex.state != State.KILLING and retry is not None \
                and retry.behavior == "CREATE_NEW_EXECUTION":
            self.retry_in_new_execution(retry)
        elif state == State.FAILED and self.ex.state != State.KILLING:
            delay = rules.retry_delay(retry, tr.attempts, tr.attempts[0].started_at or tr.created_at, self.now)
            if delay is not None:
                tr.state, tr.error = State.RETRYING, ev.error
                self.arm(tr, self.now + delay, "retry")
                return
        tr.outputs, tr.error = ev.outputs, ev.error
        self.finish(tr, rules.warning_on_retry(self.retry_of(task), state, tr.attempts))
        self.notify_parent(tr)

    def lost(self, ev: Lost) -> None:
        tr = self.ex.task_runs.get(ev.task_run_id)
        if tr is None or tr.state in TERMINAL or tr.attempt != ev.attempt or not tr.attempts:
            return
        attempt = tr.attempts[-1]
        attempt.state, attempt.ended_at, attempt.error, attempt.new = State.LOST, self.now, ev.error, True
        if ev.worker:
            attempt.worker = ev.worker
        tr.dirty = True
        if self.ex.state == State.KILLING:
            self.finish(tr, State.KILLED)
        elif rules.lost_again(tr.attempts):
            self.dispatch(self.plan.tasks[tr.task_id], tr)
            return
        else:
            tr.error = rules.lost_error(tr.attempts)
            self.finish(tr, State.FAILED)
        self.notify_parent(tr)

    def timer(self, ev: Timer) -> None:
        if ev.task_run_id == "" and ev.name.startswith("sla:"):
            self.max_duration_passed(ev.name[4:])
            return
        tr = self.ex.task_runs.get(ev.task_run_id)
        if tr is None or tr.state in TERMINAL or tr.meta.timer is None or tr.meta.timer[1] != ev.name:
            return  # fired for a timer since replaced, or for a run that ended meanwhile
        tr.meta.timer = None
        tr.dirty = True
        if ev.name == "retry" and tr.state == State.RETRYING:
            if self.ex.state == State.KILLING:
                self.finish(tr, State.KILLED)
                self.notify_parent(tr)
                return
            if self.is_flowable(tr):  # a retried flowable runs its children again, from the start
                tr.state = RUNNING
                self.reresolve(tr)
                return
            self.dispatch(self.plan.tasks[tr.task_id], tr)
        elif tr.state in (RUNNING, State.PAUSED) and self.is_flowable(tr):
            tr.state, tr.meta.woken = RUNNING, ev.name
            self.reresolve(tr)

    def resume(self, ev: Resume) -> None:
        paused = [tr for tr in self.ex.task_runs.values() if tr.state == State.PAUSED
                  and (ev.task_run_id is None or tr.id == ev.task_run_id)]
        for tr in paused:
            task = self.plan.tasks[tr.task_id]
            try:
                inputs = task.on_resume(dict(ev.inputs)) if isinstance(task, FlowableTask) else dict(ev.inputs)
            except Exception as exc:
                self.effects.logs.append((tr, "WARN", f"resume refused: {exc}"))
                continue
            tr.state, tr.meta.resumed, tr.dirty = RUNNING, inputs, True
            tr.meta.timer = None  # a pending delay or timeout is moot
            self.reresolve(tr)

    def subflow_ended(self, ev: SubflowEnded) -> None:
        tr = self.ex.task_runs.get(ev.task_run_id)
        if tr is None or tr.state in TERMINAL:
            return
        key = "" if ev.index is None else str(ev.index)
        tr.meta.children[key] = ChildExecution(ev.execution_id, ev.state, ev.outputs or {}, ev.error)
        tr.dirty = True
        self.reresolve(tr)

    def files_done(self, ev: FilesDone) -> None:
        tr = self.ex.task_runs.get(ev.task_run_id)
        if tr is None or tr.state in TERMINAL:
            return
        if ev.error:
            tr.error = ev.error
            self.finish(tr, State.FAILED)
            self.notify_parent(tr)
            return
        tr.meta.files[ev.kind] = {"done": True, "result": ev.result}
        tr.dirty = True
        self.reresolve(tr)

    def kill(self) -> None:
        ex = self.ex
        if ex.state in (State.CREATED, State.QUEUED):
            ex.state, ex.ended_at, ex.dirty = State.KILLED, self.now, True
            self.effects.ended = True
            return
        ex.state, ex.dirty = State.KILLING, True
        for tr in list(ex.task_runs.values()):
            if tr.state in TERMINAL:
                continue
            running = bool(tr.attempts) and tr.attempts[-1].state == RUNNING
            children = [c.execution_id for c in tr.meta.children.values() if c.state is None and c.execution_id]
            action = rules.on_kill(tr.state, self.is_flowable(tr), running, bool(children))
            if action is rules.OnKill.KILL_CHILDREN:
                self.effects.kill_children.extend(c for c in children if c)
            elif action is rules.OnKill.CANCEL:
                self.effects.cancel.append(tr.id)
            elif action is rules.OnKill.FINISH:
                tr.meta.timer = None
                self.finish(tr, State.KILLED)
                self.notify_parent(tr)
        if not any(tr.state not in TERMINAL for tr in ex.task_runs.values()):
            self.resolve_root()

    def restart(self) -> None:
        """Re-run failed or killed task runs in the same execution, each with a new attempt."""
        ex = self.ex
        if ex.state not in (State.FAILED, State.KILLED, State.WARNING, State.PAUSED):
            return
        failed = [tr for tr in ex.task_runs.values() if tr.state in FAILURES]
        ancestors: set[str] = set()
        for tr in failed:
            pid = tr.parent_id
            while pid:
                ancestors.add(pid)
                pid = ex.task_runs[pid].parent_id
        # errors/finally task runs ran because of the failure: drop them so they run again if needed
        for tr in [t for t in ex.task_runs.values() if self.plan.block.get(t.task_id, (None, ""))[1] in HANDLER_BLOCKS]:
            self.forget(tr)
        ex.state, ex.ended_at, ex.error, ex.outputs, ex.dirty = RUNNING, None, None, {}, True
        for tr_id in ancestors:
            ancestor = ex.task_runs.get(tr_id)
            if ancestor is not None:
                self.reopen(ancestor)
        for tr in failed:
            if tr.id not in ex.task_runs:
                continue
            if self.is_flowable(tr):
                self.reopen(tr)
                ancestors.add(tr.id)
            else:
                tr.ended_at = None
                self.dispatch(self.plan.tasks[tr.task_id], tr)
        self.memo.root_main = None
        self.memo.cursor.clear()
        self.resolve_open(ancestors)
        self.resolve_root()

    def recover(self, in_flight: frozenset[tuple[str, int]] = frozenset()) -> None:
        """After a crash: attempts still RUNNING were lost with their process; timers are armed again."""
        ex = self.ex
        if ex.state in (State.CREATED, State.QUEUED):
            ex.state = State.CREATED
            self.start()
            return
        if ex.state == RUNNING:
            self.arm_sla()
        for tr in list(ex.task_runs.values()):
            if tr.state in TERMINAL:
                continue
            if tr.state == RUNNING and tr.attempts and tr.attempts[-1].state == RUNNING:
                if (tr.id, tr.attempt) not in in_flight:
                    self.lost(Lost(tr.id, tr.attempt))
            elif tr.meta.timer is not None:
                when, name = tr.meta.timer
                self.effects.timers.append(ArmTimer(ex.id, tr.id, when, name))

    # --- retry in a new execution -----------------------------------------------------
    def retry_in_new_execution(self, retry: Any) -> None:
        """A task failed under ``behavior: CREATE_NEW_EXECUTION``: with attempts left (counted across
        the executions), this one ends RETRIED and a new one starts after the delay."""
        if self.memo.retry_delay is not None:
            return
        meta = (self.ex.trigger or {}).get("retry") or {}
        attempt = int(meta.get("attempt") or 1)
        first_at = float(meta.get("firstAt") or self.ex.created_at)
        done = [Attempt(i + 1, State.FAILED) for i in range(attempt)]
        delay = rules.retry_delay(retry, done, first_at, self.now)
        if delay is not None:
            self.memo.retry_delay = delay
            self.effects.logs.append((None, "WARN", f"execution attempt {attempt} failed: a new execution follows "
                                                    f"in {delay:g} s (retry CREATE_NEW_EXECUTION)"))

    # --- SLA ----------------------------------------------------------------------------
    def arm_sla(self) -> None:
        """A timer per MAX_DURATION SLA, from the execution's start (armed again after a crash)."""
        for sla in getattr(self.flow, "sla", None) or []:
            if sla.type == "MAX_DURATION" and sla.duration is not None:
                when = (self.ex.started_at or self.now) + sla.duration.total_seconds()
                self.effects.timers.append(ArmTimer(self.ex.id, "", when, f"sla:{sla.id}"))

    def max_duration_passed(self, sla_id: str) -> None:
        sla = next((s for s in getattr(self.flow, "sla", None) or [] if s.id == sla_id), None)
        if sla is None or self.ex.terminal or self.ex.state == State.KILLING:
            return
        if self.violate(sla, f"the execution ran longer than {sla.duration}"):
            self.kill()

    def violate(self, sla: Any, reason: str) -> bool:
        """Record a violated SLA: its labels, a log line, and the end state it asks for (True unless NONE)."""
        ex = self.ex
        message = f"SLA `{sla.id}` violated: {reason}"
        if sla.labels:
            try:
                ex.labels.update({k: str(v) for k, v in (self.render(None, dict(sla.labels)) or {}).items()})
            except Exception as exc:
                self.effects.logs.append((None, "WARN", f"SLA `{sla.id}`: labels: {exc}"))
            ex.dirty = True
        self.effects.logs.append((None, "WARN", message))
        if sla.behavior == "NONE":
            return False
        ex.error, ex.dirty = message, True
        self.memo.sla_state = State.FAILED if sla.behavior == "FAIL" else State.CANCELLED
        return True

    def sla_state(self) -> State | None:
        """The end state a violated SLA asked for (read back from the error after a reload)."""
        if self.memo.sla_state is None and self.ex.error and self.ex.error.startswith("SLA `"):
            for sla in getattr(self.flow, "sla", None) or []:
                if self.ex.error.startswith(f"SLA `{sla.id}` violated") and sla.behavior != "NONE":
                    self.memo.sla_state = State.FAILED if sla.behavior == "FAIL" else State.CANCELLED
        return self.memo.sla_state

    def check_assertions(self, status: State) -> None:
        """EXECUTION_ASSERTION SLAs, once the execution's end state is known."""
        ex = self.ex
        for sla in getattr(self.flow, "sla", None) or []:
            if sla.type != "EXECUTION_ASSERTION" or self.memo.sla_state is not None:
                continue
            before, ex.state = ex.state, status  # visible as execution.state
            try:
                ok = self.executor.variables.truthy(self.render(None, sla.assert_))
                reason = f"`{sla.assert_}` is false"
            except Exception as exc:
                ok, reason = False, f"`{sla.assert_}`: {exc}"
            finally:
                ex.state = before
            if not ok:
                self.violate(sla, reason)

    # --- mechanics --------------------------------------------------------------------
    def is_flowable(self, tr: TaskRun) -> bool:
        return isinstance(self.plan.tasks.get(tr.task_id), FlowableTask)

    def retry_of(self, task: Task) -> Any:
        return task.retry or getattr(self.flow, "retry", None)

    def arm(self, tr: TaskRun, when: float, name: str) -> None:
        """Arm a timer; it is kept on the task run, so a process taking the execution over re-arms it."""
        tr.meta.timer = (when, name)
        tr.dirty = True
        self.effects.timers.append(ArmTimer(self.ex.id, tr.id, when, name))

    def recount(self, tr: TaskRun) -> None:
        """Forget a fan-out's counters: resolving it again replays its branches (ended ones answer at once)."""
        tr.meta.fan = None
        self.memo.cursor.clear()

    def reopen(self, tr: TaskRun) -> None:
        tr.state, tr.ended_at, tr.dirty = RUNNING, None, True
        tr.meta.main = None
        self.recount(tr)

    def forget(self, tr: TaskRun) -> None:
        ex = self.ex
        ex.task_runs.pop(tr.id, None)
        ex.index.pop((tr.parent_id, tr.task_id, tr.iteration), None)
        ex.outputs_ctx.pop(tr.task_id, None)
        ex.forgotten.append(tr.id)
        ex.dirty = True

    def resolve_open(self, ids: set[str]) -> None:
        """Resolve open flowable task runs again, deepest first (after a restart or a replay)."""
        for tr_id in sorted(ids, key=lambda i: self.depth(self.ex.task_runs[i]), reverse=True):
            tr = self.ex.task_runs.get(tr_id)
            if tr is not None and tr.state == RUNNING:
                self.reresolve(tr)

    def depth(self, tr: TaskRun) -> int:
        depth = 0
        while tr.parent_id:
            depth += 1
            tr = self.ex.task_runs[tr.parent_id]
        return depth

    def dispatch(self, task: Task, tr: TaskRun) -> None:
        """A new attempt of a runnable task: a job for a worker."""
        tr.attempt += 1
        tr.state, tr.dirty = RUNNING, True
        if tr.started_at is None:
            tr.started_at = self.now
        tr.attempts.append(Attempt(tr.attempt, RUNNING, started_at=self.now))
        variables = self.executor.variables.build(self.flow, self.ex, tr, self.plan.tasks.get(tr.task_id))
        self.effects.jobs.append(Job(self.ex.id, tr, task, tr.attempt, variables, workdir=tr.meta.workdir))

    def finish(self, tr: TaskRun, state: State) -> None:
        task = self.plan.tasks.get(tr.task_id)
        if isinstance(task, FlowableTask) and task.retry is not None and self.retry_flowable(task, tr, state):
            return
        state = rules.allowed(task, state)
        tr.state, tr.ended_at, tr.dirty = state, self.now, True
        tr.meta.timer = None
        if state in SUCCEEDED:
            self.ex.record_outputs(tr)

    def retry_flowable(self, task: FlowableTask, tr: TaskRun, state: State) -> bool:
        """A flowable with its own ``retry`` (Subflow, Sequential, WorkingDirectory…): each end is an
        attempt; a failure with attempts left drops its children and runs it again after the delay
        (a Subflow starts a new child execution), as Kestra does. True when a retry is armed."""
        started = tr.attempts[-1].ended_at if tr.attempts else tr.started_at
        if state not in TERMINAL:
            return False
        tr.attempt += 1
        tr.attempts.append(Attempt(tr.attempt, state, started_at=started, ended_at=self.now, error=tr.error))
        tr.dirty = True
        if state != State.FAILED or self.ex.state == State.KILLING:
            return False
        delay = rules.retry_delay(task.retry, tr.attempts, tr.attempts[0].started_at or tr.created_at, self.now)
        if delay is None:
            return False
        doomed, frontier = [], {tr.id}
        for run in sorted(self.ex.task_runs.values(), key=lambda t: t.seq):
            if run.parent_id in frontier:
                frontier.add(run.id)
                doomed.append(run)
        for run in doomed:
            self.memo.progress.pop(run.id, None)
            self.forget(run)
        self.memo.progress.pop(tr.id, None)
        tr.progress, tr.outputs, tr.state = None, None, State.RETRYING
        tr.meta.main, tr.meta.children, tr.meta.files, tr.meta.resumed, tr.meta.woken = None, {}, {}, None, None
        self.recount(tr)
        self.arm(tr, self.now + delay, "retry")
        return True

    def notify_parent(self, tr: TaskRun) -> None:
        """Re-resolve the ancestors of a task run that just ended."""
        while True:
            if tr.parent_id is None:
                self.resolve_root()
                return
            parent = self.ex.task_runs[tr.parent_id]
            if parent.state in TERMINAL:
                return
            status = self.handle(parent, tr)
            if status == RUNNING:
                return
            self.finish(parent, status)
            tr = parent

    def reresolve(self, tr: TaskRun, changed: TaskRun | None = None) -> None:
        status = self.handle(tr, changed)
        if status != RUNNING:
            self.finish(tr, status)
            self.notify_parent(tr)

    def create(self, task: Task, parent: TaskRun | None, key: Any, value: str | None,
               vpath: list[str] | None = None) -> TaskRun:
        """A new child task run: skipped by ``runIf``, resolved at once if flowable, else dispatched."""
        ex = self.ex
        tr = TaskRun(id=new_id(), execution_id=ex.id, task_id=task.id, parent_id=parent.id if parent else None,
                     value=value, iteration=key, state=State.CREATED, seq=ex.next_seq, created_at=self.now)
        tr.meta.vpath = vpath or None
        if parent is not None and parent.meta.workdir:
            tr.meta.workdir = parent.meta.workdir
        ex.add(tr)
        run_if = task.runIf
        if run_if is not None and run_if != "" and run_if is not True:
            try:
                ok = self.executor.variables.truthy(self.render(tr, run_if))
            except Exception as exc:
                tr.error = f"task `{task.id}`: property `runIf`: {exc}"
                self.finish(tr, State.FAILED)
                return tr
            if not ok:
                self.finish(tr, State.SKIPPED)
                return tr
        if ex.state == State.KILLING:
            self.finish(tr, State.KILLED)
            return tr
        if isinstance(task, FlowableTask):
            tr.state, tr.started_at = RUNNING, self.now
            status = self.handle(tr, None)
            if status != RUNNING:
                self.finish(tr, status)
        else:
            self.dispatch(task, tr)
        return tr

    def render(self, tr: TaskRun | None, value: Any) -> Any:
        task = self.plan.tasks.get(tr.task_id) if tr is not None else None
        return self.executor.variables.render(value, self.executor.variables.build(self.flow, self.ex, tr, task))

    # --- blocks -----------------------------------------------------------------------
    def sequence(self, tasks: list[Task], parent: TaskRun | None, key: Any = None, value: str | None = None,
                 vpath: list[str] | None = None) -> State:
        """Run *tasks* one after another; RUNNING while unfinished, else the combined state."""
        result = State.SUCCESS
        cursor_key = (parent.id if parent else None, key, id(tasks))
        start = self.memo.cursor.get(cursor_key, 0)
        parent_id = parent.id if parent else None
        for i in range(start, len(tasks)):
            task = tasks[i]
            if task.disabled:
                continue
            tr = self.ex.child(parent_id, task.id, key)
            if tr is None:
                if self.ex.state == State.KILLING:
                    return State.KILLED
                exit_state = self.exit_state()
                if exit_state is not None:  # the execution was ended early: nothing more starts
                    return exit_state
                tr = self.create(task, parent, key, value, vpath)
            if tr.state not in TERMINAL:
                self.memo.cursor[cursor_key] = i
                return RUNNING
            if tr.state in FAILURES:
                return State.FAILED if tr.state == State.CANCELLED else tr.state
            result = worst(result, tr.state)
        # earlier tasks may have ended WARNING: fold them in when starting past zero
        for i in range(0, start):
            task = tasks[i]
            if not task.disabled:
                tr = self.ex.child(parent_id, task.id, key)
                if tr is not None:
                    result = worst(result, tr.state if tr.state not in FAILURES else State.FAILED)
        return result

    def with_handlers(self, holder: Any, parent: TaskRun | None, main: State, key: Any = None,
                      value: str | None = None) -> State:
        """After the main block: the `errors` block on failure, then `finally` in any case."""
        result = main
        errors = getattr(holder, "errors", None) or []
        if main in FAILURES and errors and self.ex.state != State.KILLING:
            status = self.sequence(errors, parent, key, value)
            if status == RUNNING:
                return RUNNING
        final = getattr(holder, "finally_", None) or []
        if final:
            status = self.sequence(final, parent, key, value)
            if status == RUNNING:
                return RUNNING
            result = worst(result, State.FAILED if status in FAILURES else status)
        return result

    def handle(self, tr: TaskRun, changed: TaskRun | None) -> State:
        """Resolve a flowable task run: its main block through ``task.resolve``, then its handlers."""
        from tiercel.engine.executor.run import EngineRun

        task = self.plan.tasks[tr.task_id]
        main = tr.meta.main
        if main is None:
            if changed is not None and self.plan.block.get(changed.task_id, (None, ""))[1] in HANDLER_BLOCKS:
                changed = None
            if not isinstance(task, FlowableTask):
                tr.error = f"task `{task.id}` ({type(task).type}) is not a FlowableTask"
                return State.FAILED
            run = EngineRun(self, task, tr, changed)
            try:
                status = State(task.resolve(run))
            except Exception as exc:
                tr.error = f"task `{task.id}`: {exc}"
                status = State.FAILED
            finally:
                run.close()
            if status == RUNNING:
                return RUNNING
            if status not in TERMINAL:
                tr.error = f"task `{task.id}`: resolve() returned {status}, expected RUNNING or a terminal state"
                status = State.FAILED
            tr.meta.main = status
            tr.dirty = True
            main = status
        return self.with_handlers(task, tr, main, value=tr.value)

    def exit_state(self) -> State | None:
        """The state a flowable asked the execution to end in (FlowableRun.exit_execution), if any."""
        memo = self.memo
        if not memo.exit_checked:
            memo.exit_checked = True
            for tr in self.ex.task_runs.values():
                if tr.progress and tr.progress.get("exit"):
                    memo.exit_state = State(tr.progress["exit"])
        return memo.exit_state

    def request_exit(self, state: State) -> None:
        self.memo.exit_state, self.memo.exit_checked = state, True

    def resolve_root(self) -> None:
        ex = self.ex
        if ex.terminal:
            return
        flow = self.flow
        main = self.memo.root_main
        if main is None:
            main = self.sequence(flow.tasks, None)
            if main == RUNNING:
                return
            if ex.state == State.KILLING and main in FAILURES:
                main = State.KILLED
            self.memo.root_main = main
        status = self.with_handlers(flow, None, main)
        if status == RUNNING:
            return
        after = flow.afterExecution or []
        if after:
            ex.state = status  # visible to afterExecution tasks as execution.state
            if self.sequence(after, None) == RUNNING:
                ex.state = RUNNING
                return
        if ex.state == State.KILLING or main == State.KILLED:
            status = State.KILLED
        if self.sla_state() is None and getattr(self.flow, "sla", None):
            self.check_assertions(status)
        sla_state = self.sla_state()
        if sla_state is not None:
            status = sla_state
        if self.memo.retry_delay is not None and status == State.FAILED:
            status = State.RETRIED
            self.effects.retry_execution = self.memo.retry_delay
        exit_state = self.exit_state()
        if exit_state is not None:
            status = exit_state
        if status in SUCCEEDED:
            try:
                ex.outputs = self.flow_outputs()
            except Exception as exc:
                status, ex.error = State.FAILED, f"flow outputs: {exc}"
        if status == State.FAILED and ex.error is None:
            failed = [tr for tr in ex.task_runs.values() if tr.state == State.FAILED and tr.error]
            if failed:
                last = max(failed, key=lambda t: t.seq)
                ex.error = f"task `{last.task_id}` failed: {last.error}"
        ex.state, ex.ended_at, ex.dirty = status, self.now, True
        self.effects.ended = True

    def flow_outputs(self) -> dict[str, Any]:
        outputs = self.flow.outputs or []
        if not outputs:
            return {}
        variables = self.executor.variables.build(self.flow, self.ex, None, None)
        result = {}
        for out in outputs:
            try:
                value = self.executor.variables.render(out.value, variables)
            except Exception as exc:
                raise ValueError(f"output `{out.id}`: {exc}") from exc
            result[out.id] = coerce_output(out.type, value)
        return result

    # --- execution state --------------------------------------------------------------
    def settle_execution_state(self) -> None:
        """RUNNING or PAUSED: paused when a task run waits for a resume and nothing else works."""
        ex = self.ex
        if ex.state in (State.KILLING, State.CREATED, State.QUEUED) or ex.terminal:
            return
        if ex.state == RUNNING and not any(tr.state == State.PAUSED for tr in ex.changed.values()):
            return  # only a task run entering PAUSED can pause a running execution
        paused = busy = False
        for tr in ex.task_runs.values():
            if tr.state in TERMINAL:
                continue
            if tr.state == State.PAUSED:
                paused = True
            elif not self.is_flowable(tr):
                busy = busy or tr.state in (RUNNING, State.RETRYING, State.CREATED)
            elif tr.meta.timer is not None or any(c.state is None for c in tr.meta.children.values()) \
                    or any(v is None for v in tr.meta.files.values()):
                busy = True  # a flowable waiting on a timer, a child execution or file work
        state = State.PAUSED if paused and not busy else RUNNING
        if state != ex.state:
            ex.state, ex.dirty = state, True


def coerce_output(kind: str | None, value: Any) -> Any:
    """A flow output's value as its declared type (STRING by default)."""
    import json

    kind = (kind or "STRING").upper()
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
            return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"expected {kind}, got {value!r}") from exc
    return value
