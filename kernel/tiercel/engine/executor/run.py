"""The engine's side of :class:`tiercel.FlowableRun`: what a flowable's ``resolve(run)`` acts on."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tiercel.api import ChildRun, FlowableRun, FlowableTask, Status, SubflowRequest, SubflowResult, Task
from tiercel.engine.executor.effects import FileWork, StartSubflow
from tiercel.engine.secrets import mask
from tiercel.model import FAILURES, ChildExecution, FanOut, State, TaskRun, new_id, worst

if TYPE_CHECKING:
    from tiercel.engine.executor.machine import Step

RUNNING = State.RUNNING


def child_run(tr: TaskRun) -> ChildRun:
    return ChildRun(tr.task_id, tr.iteration, tr.state, tr.outputs)


class EngineRun(FlowableRun):
    """One resolution of one flowable task run, within one executor step."""

    def __init__(self, step: Step, task: FlowableTask, tr: TaskRun, changed: TaskRun | None) -> None:
        self._step, self._task, self._tr, self._changed = step, task, tr, changed
        cached = step.memo.progress.get(tr.id)
        if cached is None or not isinstance(cached, task.Progress):  # validated once per task run and process
            cached = step.memo.progress[tr.id] = task.Progress.model_validate(tr.progress or {})
        self.progress = cached
        self.value = tr.value
        self.now = step.now

    def _keep_progress(self) -> None:
        if self.progress._assigned:
            self._tr.progress = self.progress.model_dump(mode="json", exclude_defaults=True)
            self.progress._assigned = False
            self._tr.dirty = True

    def close(self) -> None:
        """Keep the flowable's progress with the task run if it was assigned; a fired timer has been seen."""
        tr = self._tr
        self._keep_progress()
        if tr.meta.woken is not None:
            tr.meta.woken = None
            tr.dirty = True

    # outputs and error are the task run's own
    @property
    def outputs(self) -> dict[str, Any] | None:
        return self._tr.outputs

    @outputs.setter
    def outputs(self, value: dict[str, Any] | None) -> None:
        self._tr.outputs = value
        self._tr.dirty = True
        self._step.ex.record_outputs(self._tr)  # readable by its children while it runs (WaitFor's iterationCount)

    @property
    def error(self) -> str | None:
        return self._tr.error

    @error.setter
    def error(self, value: str | None) -> None:
        self._tr.error = value
        self._tr.dirty = True

    # --- expressions ------------------------------------------------------------------
    def render(self, value: Any, /, **extra: Any) -> Any:
        variables = self._step.executor.variables
        context = variables.build(self._step.flow, self._step.ex, self._tr, self._task)
        if extra:  # merged one level deep: taskrun={"items": uri} adds to taskrun
            context = {**context, **{k: {**context[k], **v} if isinstance(v, dict) and isinstance(context.get(k), dict)
                                     else v for k, v in extra.items()}}
        return variables.render(value, context)

    def truthy(self, value: Any) -> bool:
        return self._step.executor.variables.truthy(value)

    # --- children ---------------------------------------------------------------------
    def sequence(self, tasks: list[Task], key: Any = None, value: str | None = None) -> Status:
        self._keep_progress()  # children created now may read it (a flowable's child_variables)
        tr = self._tr
        if value is None:  # the children share this run's loop value
            return self._step.sequence(tasks, tr, key, tr.value, tr.meta.vpath)
        return self._step.sequence(tasks, tr, key, value, [*(tr.meta.vpath or []), value])

    def fan_out(self, count: int, branch: Callable[[int], Status], *, limit: int = 0,
                index_of: Callable[[ChildRun], int | None] | None = None, stop_on_failure: bool = True) -> Status:
        tr = self._tr
        fan = tr.meta.fan
        if fan is None:
            fan = tr.meta.fan = FanOut()
        limit = limit if limit and limit > 0 else count

        def settle(status: Status) -> None:
            if status != RUNNING:
                fan.running -= 1
                fan.done += 1
                fan.worst = worst(fan.worst, State(status))

        if self._changed is not None and index_of is not None:
            i = index_of(child_run(self._changed))
            if i is not None:
                settle(branch(i))
        while fan.next < count and fan.running < limit and not (stop_on_failure and fan.worst in FAILURES):
            i = fan.next
            fan.next += 1
            fan.running += 1
            settle(branch(i))
        tr.dirty = True
        if fan.running > 0:
            return RUNNING
        if fan.done < count and not (stop_on_failure and fan.worst in FAILURES):
            return RUNNING
        return fan.worst

    def child(self, task_id: str, key: Any = None) -> ChildRun | None:
        found = self._step.ex.child(self._tr.id, task_id, key)
        return child_run(found) if found is not None else None

    def start(self, task: Task, key: Any = None, value: str | None = None) -> ChildRun:
        self._keep_progress()
        tr = self._tr
        vpath = tr.meta.vpath if value is None else [*(tr.meta.vpath or []), value]
        return child_run(self._step.create(task, tr, key, tr.value if value is None else value, vpath))

    @property
    def changed(self) -> ChildRun | None:
        return child_run(self._changed) if self._changed is not None else None

    # --- waiting ----------------------------------------------------------------------
    def wake_at(self, when: float, name: str) -> None:
        self._step.arm(self._tr, when, name)

    @property
    def woken(self) -> str | None:
        return self._tr.meta.woken

    def pause(self) -> None:
        self._tr.state = State.PAUSED
        self._tr.dirty = True

    @property
    def resumed(self) -> dict[str, Any] | None:
        return self._tr.meta.resumed

    def start_subflow(self, request: SubflowRequest, index: int | None = None) -> None:
        tr, key = self._tr, "" if index is None else str(index)
        if key in tr.meta.children:
            return  # asked already (a resolution can repeat)
        child_id = new_id()
        tr.meta.children[key] = ChildExecution(child_id)
        tr.dirty = True
        self._step.effects.subflows.append(StartSubflow(self._step.ex.id, tr, type(self._task).type, index, request,
                                                        child_id))

    @property
    def subflows(self) -> dict[int | None, SubflowResult | None]:
        out: dict[int | None, SubflowResult | None] = {}
        for key, child in self._tr.meta.children.items():
            index = None if key == "" else int(key)
            out[index] = None if child.state is None else SubflowResult(
                child.execution_id, child.state, child.outputs or {}, child.error)
        return out

    def files(self, kind: str, **params: Any) -> Any:
        if kind not in ("split", "write", "collect", "namespace", "lines", "resume", "toggle", "logs", "purge_logs",
                        "count", "state", "purge_executions", "cache_restore", "cache_save"):
            raise ValueError(f"unknown file work `{kind}` (split, write, collect, namespace or lines)")  # resume, toggle, logs, purge_*, cache_*: internal
        tr = self._tr
        entry = tr.meta.files.get(kind, False)
        if entry is False:
            tr.meta.files[kind] = None
            tr.dirty = True
            self._step.effects.files.append(FileWork(self._step.ex.id, tr, kind, params))
            return None
        return None if entry is None else entry["result"]

    def share_working_directory(self) -> None:
        if not self._tr.meta.workdir:
            self._tr.meta.workdir = self._tr.id
            self._tr.dirty = True

    # --- the execution ----------------------------------------------------------------
    def set_labels(self, labels: dict[str, str]) -> None:
        self._step.ex.labels.update(mask(labels, self._step.ex.secrets))
        self._step.ex.dirty = True

    def set_variables(self, values: dict[str, Any], unset: list[str]) -> None:
        self.progress.setVariables, self.progress.unsetVariables = values or None, unset or None
        self._keep_progress()
        self._step.executor.variables.refresh_vars(self._step.flow, self._step.ex)

    def exit_execution(self, state: str) -> None:
        self.progress.exit = state  # persisted with the run: a reload finds it
        self._step.request_exit(State(state))

    def resume_execution(self, execution_id: str | None, inputs: dict[str, Any]) -> bool | None:
        if execution_id is None or execution_id == self._step.ex.id:
            self._step.effects.resume.append((self._step.ex.id, inputs))
            return True
        # another execution: checked (and resumed) off the executor, answered like file work
        return self.files("resume", execution_id=execution_id, inputs=inputs)  # type: ignore[no-any-return]
