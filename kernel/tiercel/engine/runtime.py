"""One process running executions: the executor, a worker, timers and persistence, on asyncio.

Every state change is persisted before its effects are carried out (jobs handed to the
worker, timers armed, subflows created), so a killed process loses nothing: the attempts
still RUNNING say which work was in flight, and ``recover()`` picks an execution up again.

The parts, each in its own module: the stores (``tiercel.backend``), ownership (which process
runs what), the flow catalog, the log buffer, the executor (pure) and the worker. This class
is the loop that joins them: an inbox of events per execution, processed in steps.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tiercel.backend import Stores
from tiercel.engine import files
from tiercel.engine.catalog import FlowCatalog, FlowNotFound
from tiercel.engine.context import mask
from tiercel.engine.executor import (
    ArmTimer,
    Effects,
    Event,
    Executor,
    FilesDone,
    FileWork,
    Kill,
    Lost,
    Recover,
    Restart,
    Result,
    Start,
    StartSubflow,
    SubflowEnded,
    Timer,
    as_command,
    command_event,
)
from tiercel.engine.logbuffer import LogBuffer
from tiercel.engine.namespace_files import NamespaceFiles
from tiercel.engine.ownership import Ownership
from tiercel.engine.secrets import ExpressionFunction, SecretChain, sealer
from tiercel.engine.storage import SCHEME, InternalStorage, namespace_path, resolve_backend
from tiercel.engine.variables import Variables
from tiercel.engine.worker import Worker
from tiercel.flow.model import CORRELATION_LABEL, Flow
from tiercel.home import default_home
from tiercel.model import FAILURES, SUCCEEDED, TERMINAL, Execution, State, TaskRun, dumps, new_id

log = logging.getLogger("tiercel.engine")

#: How often an executor looks for workers' results while it runs executions (distributed mode).
QUEUE_POLL = 0.01
#: How often an executor turns expired job leases into LOST attempts.
REAP_EVERY = 1.0
#: How often an executor looks for new executions a webserver or scheduler left to executors.
TAKE_EVERY = 0.02

__all__ = ["FlowNotFound", "Runtime", "default_home"]


class Runtime:
    """Executes flows in this process against the home's database and storage."""

    def __init__(self, home: Path | None = None, registry: Any = None, worker_slots: int = 64,
                 flow_dirs: list[Path] | None = None, kind: str = "server", dispatch: str = "local") -> None:
        from tiercel.expr import Renderer
        from tiercel.plugins import get_registry

        self.home = Path(home) if home else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.registry = registry or get_registry()
        self.stores = Stores.of_home(self.home)
        self.db = self.stores.db
        self.storage = InternalStorage(resolve_backend(self.home, self.registry))
        self.stores.executions.offload = self._offload_outputs
        self.stores.executions.resolve = self.storage.read_text
        self.stores.executions.seal, self.stores.executions.unseal = sealer(self.home)
        self.renderer = Renderer(registry=self.registry, cache_file=self.home / "cache" / "expressions")
        self.secrets = SecretChain(self.registry, self.home)
        self.kv = self.stores.kv
        self.envs, self.globals = expression_envs(), expression_globals(self.home)
        self.variables = Variables(self.renderer, self._lookups)
        self.executor = Executor(self.variables)
        self.catalog = FlowCatalog(self.stores, self.registry, flow_dirs)
        from tiercel.backend.quotas import Quotas

        self.quotas = Quotas(self.db)
        self.ownership = Ownership(self.stores, kind, quota_of=self.quotas.keys_for)
        self.process_id = self.ownership.id
        self.worker = Worker(self, worker_slots)
        self.live: dict[str, Execution] = {}
        #: ``listener(kind, payload)`` for "execution", "taskrun" and "log" changes (the CLI's live view, SSE);
        #: a log's payload is (execution id, task id, level, message, timestamp, task run id).
        self.listeners: list[Callable[[str, Any], None]] = []
        #: Called with each execution that ends in this process (flow triggers, the CLI).
        self.on_end: list[Callable[[Execution], None]] = []
        from tiercel.observability import logs as process_logs

        self.logs = LogBuffer(self.stores.logs, self._emit, self._echo_log if process_logs.task_lines() else None,
                              cap=log_cap(), overflow=self._overflow_log)
        self._spill: dict[tuple[str, int | None], tuple[Any, str]] = {}  # (task run, attempt) -> (open file, uri)
        # notifications (metrics and traces are built-in plugins of these hooks): looked up once, not per step
        self._on_created = self.registry.implements("on_execution_created")
        self._on_task_run_end = self.registry.implements("on_task_run_end")
        self._task_types: dict[tuple[str | None, str], str] = {}  # (flow hash, task id) -> type, for the hook
        from tiercel.observability import metrics_enabled

        if metrics_enabled():
            from tiercel.observability import metrics

            metrics.watch(self)
        self._inbox: dict[str, list[Event]] = {}
        self._waiters: dict[str, list[asyncio.Future[Execution]]] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: dict[tuple[str, str, str], asyncio.TimerHandle] = {}
        #: "local": jobs run on this process's worker (embedded mode); "queue": jobs go to the ``jobs``
        #: table for `tiercel worker` processes, results come back through ``results`` (distributed mode).
        self.dispatch = dispatch
        #: A process without the executor duty (`tiercel webserver`, `tiercel scheduler`) in distributed mode
        #: leaves the executions it creates to executors: stored without an owner, which an executor takes.
        self.hand_off = dispatch == "queue" and "executor" not in kind.split("+")
        self._results: dict[str, list[tuple[str, int]]] = {}  # read, not yet applied (deleted when applied)
        self._reaped_at = self._taken_at = 0.0

    # --- flows --------------------------------------------------------------------------
    def flow_of(self, ex: Execution) -> Flow:
        return self.catalog.flow_of(ex)

    def register_flow(self, flow: Flow) -> str:
        return self.catalog.register(flow)

    def find_flow(self, namespace: str, flow_id: str, revision: int | None = None) -> tuple[Flow, int | None]:
        return self.catalog.find(namespace, flow_id, revision)

    # --- executions -----------------------------------------------------------------------
    def new_execution(self, flow: Flow, inputs: dict[str, Any], labels: dict[str, str] | None = None,
                      trigger: dict[str, Any] | None = None, revision: int | None = None,
                      parent: tuple[str, str] | None = None, dedupe_key: str | None = None,
                      original_id: str | None = None, execution_id: str | None = None) -> Execution:
        digest = self.register_flow(flow)
        execution_id = execution_id or new_id()
        labels = {**(flow.labels or {}), **(labels or {})}
        labels.setdefault(CORRELATION_LABEL, execution_id)  # Kestra's: a subflow request carries its parent's
        ex = Execution(id=execution_id, namespace=flow.namespace, flow_id=flow.id, flow_hash=digest,
                       state=State.CREATED, created_at=time.time(), flow_revision=revision,
                       inputs=inputs, labels=labels,
                       trigger=trigger, parent_id=parent[0] if parent else None,
                       parent_task_run_id=parent[1] if parent else None, dedupe_key=dedupe_key,
                       original_id=original_id)
        specs: list[Any] = list(flow.inputs or [])
        for spec in specs:
            if str(spec.type).upper() == "SECRET" and inputs.get(spec.id):
                ex.secrets.add(str(inputs[spec.id]))
                ex.secret_inputs.add(spec.id)
        if getattr(flow, "checks", None) and original_id is None:
            self._check(flow, ex)
        return ex

    def _check(self, flow: Flow, ex: Execution) -> None:
        """Kestra's flow ``checks``: a false condition blocks the execution (ExecutionBlocked), creates
        it FAILED, or only logs its message, as its behavior says."""
        from tiercel.flow.inputs import ExecutionBlocked

        variables = self.executor.variables
        context = variables.build(flow, ex, None, None)
        failed: list[Any] = []
        for check in flow.checks:
            try:
                ok = variables.truthy(variables.render(check.condition, context))
            except Exception as exc:
                raise ExecutionBlocked([f"check `{check.condition}`: {exc}"]) from None
            if not ok:
                failed.append(check)
        blocking = [c.message for c in failed if c.behavior == "BLOCK_EXECUTION"]
        if blocking:
            raise ExecutionBlocked(blocking)
        failing = [c.message for c in failed if c.behavior == "FAIL_EXECUTION"]
        if failing:
            ex.state, ex.ended_at, ex.error = State.FAILED, time.time(), "; ".join(failing)
        for check in failed:
            level = {"ERROR": "ERROR", "WARNING": "WARN"}.get(check.style, "INFO")
            self.logs.add(ex.id, None, None, level, f"check: {check.message}", time.time())

    def submit(self, ex: Execution) -> bool:
        """Persist a new execution (respecting the flow's concurrency) and start it.

        Returns False when the dedupe key says it already exists.
        """
        flow = self.flow_of(ex)
        concurrency = flow.concurrency
        executions = self.stores.executions
        owner = None if self.hand_off else self.process_id
        limited = concurrency is not None and concurrency.limit
        if limited or self.quotas.keys_for(ex.namespace):
            with self.db.transaction():
                if limited:
                    self.db.lock("concurrency", ex.namespace, ex.flow_id)  # count and insert as one, across processes
                if limited and executions.count_running(ex.namespace, ex.flow_id) >= concurrency.limit:  # type: ignore[union-attr]
                    behavior = str(concurrency.behavior or "QUEUE").upper().rsplit(".", 1)[-1]  # type: ignore[union-attr]
                    ex.state = {"QUEUE": State.QUEUED, "CANCEL": State.CANCELLED, "FAIL": State.FAILED}[behavior]
                    if ex.state != State.QUEUED:
                        ex.ended_at = time.time()
                        ex.error = f"flow concurrency limit ({concurrency.limit}) reached"  # type: ignore[union-attr]
                if ex.state == State.CREATED and self.quotas.must_queue(ex.namespace) is not None:
                    ex.state = State.QUEUED  # the namespace quota is reached: started in order when a slot frees
                if not executions.create(ex, owner=owner):
                    return False
        elif not executions.create(ex, owner=owner):
            return False
        self._emit("execution", ex)
        started_by = f" by trigger `{ex.trigger['id']}`" if ex.trigger and ex.trigger.get("id") else ""
        log.info("execution %s of %s.%s %s%s", ex.id, ex.namespace, ex.flow_id,
                 "started" if ex.state == State.CREATED else ex.state.lower(), started_by,
                 extra={"execution_id": ex.id, "namespace": ex.namespace, "flow_id": ex.flow_id})
        if self._on_created:
            try:
                self.registry.hook.on_execution_created(
                    execution_id=ex.id, namespace=ex.namespace, flow_id=ex.flow_id, state=str(ex.state),
                    created_at=ex.created_at, trigger=ex.trigger, labels=ex.labels)
            except Exception:
                log.exception("a plugin's on_execution_created failed for execution %s", ex.id)
        if self.hand_off and not ex.terminal:
            return True  # an executor takes it (queued ones once a slot frees up)
        if ex.state == State.CREATED:
            self.live[ex.id] = ex
            self.post(ex.id, Start())
        elif ex.state == State.QUEUED:
            self.live[ex.id] = ex  # started by a `start` command once a slot frees up
        elif ex.terminal:
            self._ended(ex)
        return True

    async def wait(self, execution_id: str) -> Execution | None:
        """The execution once it ends (None when there is no such execution)."""
        if execution_id not in self.live and execution_id not in self._inbox:
            loaded = self.stores.executions.load(execution_id)
            if loaded is None or loaded.terminal:
                return loaded
            if self.dispatch == "queue" and execution_id not in self.live:
                while loaded is not None and not loaded.terminal:  # another process runs it: poll its row
                    await asyncio.sleep(0.05)
                    state = self.stores.executions.state(execution_id)
                    if state is not None and state in TERMINAL:
                        return self.stores.executions.load(execution_id)
                return loaded
        fut: asyncio.Future[Execution] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(execution_id, []).append(fut)
        return await fut

    def recover(self, execution_id: str) -> Execution | None:
        """Take over an unfinished execution after a crash: re-issue what was in flight."""
        ex = self.stores.executions.load(execution_id)
        if ex is None or ex.terminal:
            return ex
        self.ownership.claim(ex.id)
        self.live[ex.id] = ex
        in_flight = frozenset(self.stores.jobs.in_flight(ex.id)) if self.dispatch == "queue" else frozenset()
        self.post(ex.id, Recover(in_flight))
        return ex

    def recover_orphans(self) -> int:
        """Take over unfinished executions whose process is gone; return how many."""
        taken = 0
        for execution_id, old_owner, why in self.ownership.orphans(set(self.live)):
            if self.ownership.take_over(execution_id, old_owner):
                log.info("recovering execution %s (%s)", execution_id, why)
                self.recover(execution_id)
                taken += 1
        return taken

    # --- commands: from this process or another ---------------------------------------------
    def kill(self, execution_id: str) -> None:
        self.send(execution_id, Kill())

    def restart(self, execution_id: str) -> None:
        """Run an ended (or paused) execution's failed task runs again, here unless a live process holds it."""
        if self.ownership.owned_elsewhere(execution_id):
            self.stores.commands.send(execution_id, "restart")
            return
        self.ownership.claim(execution_id)  # owned before it runs, so no other process takes it over
        self.post(execution_id, Restart())

    def command(self, execution_id: str, kind: str, payload: dict[str, Any] | None = None) -> None:
        """Deliver kill/resume/restart/start to the execution, wherever it runs."""
        self.send(execution_id, command_event(kind, payload or {}))

    def send(self, execution_id: str, event: Event) -> None:
        """Post *event* here, or leave it as a command for the live process that runs the execution."""
        if execution_id in self.live or not self.ownership.owned_elsewhere(execution_id):
            self.post(execution_id, event)
        else:
            kind, payload = as_command(event)
            self.stores.commands.send(execution_id, kind, payload)

    def _poll_commands(self) -> None:
        self.ownership.heartbeat()
        for command_id, execution_id, kind, payload in self.stores.commands.pending():
            if execution_id not in self.live and self.ownership.owned_elsewhere(execution_id):
                continue  # its owner applies it
            self.stores.commands.delete(command_id)
            if execution_id not in self.live:
                ex = self.stores.executions.load(execution_id)
                if ex is None:
                    continue
                if not ex.terminal:
                    self.recover(execution_id)
            try:
                self.post(execution_id, command_event(kind, payload))
            except (KeyError, ValueError) as exc:
                log.error("ignoring command %s for execution %s: %s", kind, execution_id, exc)

    # --- the loop -----------------------------------------------------------------------
    def post(self, execution_id: str, event: Event) -> None:
        self._inbox.setdefault(execution_id, []).append(event)
        if self._wake is None:
            return
        if self._loop is not None and self._loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not self._loop:
                self._loop.call_soon_threadsafe(self._wake.set)
                return
        self._wake.set()

    def wake(self) -> None:
        """Wake the loop now (after setting its stop event, or from another thread)."""
        if self._wake is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def serve(self, stop: asyncio.Event | None = None, poll_interval: float = 0.25) -> None:
        """Process events until *stop* is set (or forever); call :meth:`wake` after setting it to stop at once."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._inbox:
            self._wake.set()
        self.ownership.register()
        last_poll = 0.0
        stop = stop or asyncio.Event()
        while not stop.is_set():
            if not self._wake.is_set():
                wait = poll_interval
                if self.dispatch == "queue" and self.live:
                    wait = min(poll_interval, QUEUE_POLL)  # results of workers arrive through the database
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)  # let workers run between batches
            self._wake.clear()
            now = time.monotonic()
            if now - last_poll >= poll_interval:
                last_poll = now
                self._poll_commands()
            if self.dispatch == "queue":
                self._poll_results()
            while self._inbox:
                inbox, self._inbox = self._inbox, {}
                self._process_batch(inbox)
            self.logs.flush()
        self.logs.flush()

    # --- distributed mode: results from workers, leases of dead ones ---------------------------
    def _poll_results(self) -> None:
        jobs = self.stores.jobs
        now = time.monotonic()
        if now - self._reaped_at >= REAP_EVERY:
            self._reaped_at = now
            for execution_id, task_run_id, attempt in jobs.reap():
                log.warning("attempt %d of task run %s (execution %s) lost: its worker's lease expired",
                            attempt, task_run_id, execution_id)
        if not self.hand_off and now - self._taken_at >= TAKE_EVERY:
            self._taken_at = now
            for execution_id in jobs.unowned_created():
                if self.ownership.take_over(execution_id, None):
                    self.recover(execution_id)
        if not self.live:
            return
        for r in jobs.results_for(self.process_id):
            key = (r.task_run_id, r.attempt)
            pending = self._results.setdefault(r.execution_id, [])
            if key in pending:
                continue
            pending.append(key)
            if r.state == "LOST":
                self.post(r.execution_id, Lost(r.task_run_id, r.attempt, r.error or "its worker stopped", r.worker))
            else:
                self.post(r.execution_id, Result(r.task_run_id, r.attempt, State(r.state), r.outputs, r.error,
                                                 r.started_at, r.ended_at, r.worker))

    def _process_batch(self, inbox: dict[str, list[Event]]) -> None:
        """One loop turn: the steps of every execution with events, committed in one transaction, then
        carried out (jobs, timers, subflows) only once that commit is done. One commit per turn instead
        of one per execution is what keeps many concurrent executions fast on a server database."""
        if len(inbox) == 1:
            for execution_id, events in inbox.items():
                self._process(execution_id, events)
            return
        stepped: list[tuple[Execution, list[TaskRun], Effects]] = []
        try:
            with self.db.transaction():
                for execution_id, events in inbox.items():
                    step = self._step(execution_id, events)
                    if step is not None:
                        stepped.append(step)
        except Exception:  # one bad step must not hold back the others: take them one at a time
            log.exception("a batch of %d steps failed; applying them one by one", len(inbox))
            for ex, _, _ in stepped:  # forget the rolled-back in-memory changes: reload from the database
                self.live.pop(ex.id, None)
            for execution_id, events in inbox.items():
                self._process(execution_id, events)
            return
        for ex, changed, effects in stepped:
            self._after_step(ex, changed, effects)

    def _process(self, execution_id: str, events: list[Event]) -> None:
        step = self._step(execution_id, events)
        if step is not None:
            self._after_step(*step)

    def _step(self, execution_id: str, events: list[Event]) -> tuple[Execution, list[TaskRun], Effects] | None:
        """Apply *events* to the execution and save the step (joining the caller's transaction, if any)."""
        applied = self._results.pop(execution_id, []) if self._results else []  # workers' results it applies
        ex = self.live.get(execution_id)
        if ex is None:
            ex = self.stores.executions.load(execution_id)
            if ex is None or (ex.terminal and not any(isinstance(e, Restart) for e in events)):
                self.stores.jobs.applied(applied)
                return None
            self.live[execution_id] = ex
        try:
            effects = self.executor.apply(self.flow_of(ex), ex, events)
        except Exception as exc:  # an engine bug must fail the execution visibly, not hang it
            import traceback

            ex.state, ex.error, ex.ended_at, ex.dirty = State.FAILED, f"internal error: {exc!r}", time.time(), True
            self.logs.add(ex.id, None, None, "ERROR", traceback.format_exc(), time.time())
            effects = Effects(ended=True)
        changed = list(ex.changed.values())
        if ex.secrets:
            for tr in changed:
                if tr.outputs:
                    tr.outputs = mask(tr.outputs, ex.secrets)
                if tr.error:
                    tr.error = mask(tr.error, ex.secrets)
            if ex.outputs:
                ex.outputs = mask(ex.outputs, ex.secrets)
        for run, level, message in effects.logs:
            self.logs.add(ex.id, run, run.attempt if run else None, level, message, time.time())
        if self.dispatch == "queue":  # one transaction: the results applied, the step, the jobs it creates
            with self.db.transaction():
                self.stores.jobs.applied(applied)
                self.stores.executions.save(ex, logs=self.logs.take())
                self.stores.jobs.enqueue([(job.task_run.id, job.attempt, ex.id, queue_of(job.task),
                                           {"taskId": job.task_run.task_id}) for job in effects.jobs])
        else:
            self.stores.executions.save(ex, logs=self.logs.take())
        return ex, changed, effects

    def _after_step(self, ex: Execution, changed: list[TaskRun], effects: Effects) -> None:
        for tr in changed:
            self._emit("taskrun", (ex, tr))
            if tr.state in TERMINAL:
                if self.logs.used and self.logs.finish(tr.id, tr.attempt):
                    self._store_spilled(tr.id)
                if self._on_task_run_end:
                    self._task_run_ended(ex, tr)
        self._emit("execution", ex)
        self._carry_out(ex, effects)

    def _task_run_ended(self, ex: Execution, tr: TaskRun) -> None:
        """on_task_run_end, with plain values (no serialisation of the run on the engine's loop)."""
        key = (ex.flow_hash, tr.task_id)
        task_type = self._task_types.get(key)
        if task_type is None:
            try:
                task_type = self._task_types[key] = type(self.flow_of(ex).task(tr.task_id)).type
            except Exception:
                task_type = "unknown"
        parent = ex.task_runs.get(tr.parent_id) if tr.parent_id else None
        try:
            self.registry.hook.on_task_run_end(
                execution_id=ex.id, namespace=ex.namespace, flow_id=ex.flow_id, task_id=tr.task_id,
                task_type=task_type, task_run_id=tr.id, parent_task_run_id=tr.parent_id,
                parent_attempt=parent.attempt if parent is not None else 0, state=str(tr.state),
                attempts=[{"attempt": a.attempt, "state": str(a.state), "startedAt": a.started_at,
                           "endedAt": a.ended_at, "error": a.error} for a in tr.attempts],
                started_at=tr.started_at, ended_at=tr.ended_at,
                correlation_id=ex.labels.get(CORRELATION_LABEL) or ex.id)
        except Exception:
            log.exception("a plugin's on_task_run_end failed for execution %s", ex.id)

    def _carry_out(self, ex: Execution, effects: Effects) -> None:
        """Do what a persisted step asked for."""
        if self.dispatch == "local":
            for job in effects.jobs:
                self.worker.submit(job, self.post)
        for timer in effects.timers:
            self._arm(timer)
        for tr_id in effects.cancel:
            if self.dispatch == "queue":
                if self.stores.jobs.cancel(tr_id) == "signalled":
                    continue  # its worker cancels it and reports KILLED
            elif self.worker.cancel(tr_id):
                continue
            tr = ex.task_runs.get(tr_id)
            if tr is not None:
                self.post(ex.id, Result(tr_id, tr.attempt, State.KILLED, None, "killed", time.time(), time.time()))
        for start in effects.subflows:
            self._start_subflow(ex, start)
        for work in effects.files:
            self._do_files(ex, work)
        for child_id in effects.kill_children:
            self.kill(child_id)
        for target, inputs in effects.resume:
            self.command(target, "resume", {"inputs": inputs})
        if effects.ended:
            self._ended(ex)
        if effects.retry_execution is not None and ex.state == State.RETRIED:
            loop = self._loop or asyncio.get_event_loop()
            loop.call_later(effects.retry_execution, self._retry_execution, ex)

    def _arm(self, timer: ArmTimer) -> None:
        key = (timer.execution_id, timer.task_run_id, timer.name)
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        loop = self._loop or asyncio.get_event_loop()

        def fire() -> None:
            self._timers.pop(key, None)
            self.post(timer.execution_id, Timer(timer.task_run_id, timer.name))

        self._timers[key] = loop.call_later(max(0.0, timer.when - time.time()), fire)

    def _ended(self, ex: Execution) -> None:
        took = f" in {ex.ended_at - ex.created_at:.2f} s" if ex.ended_at else ""
        log.log(logging.WARNING if ex.state in FAILURES else logging.INFO, "execution %s of %s.%s ended %s%s",
                ex.id, ex.namespace, ex.flow_id, ex.state, took,
                extra={"execution_id": ex.id, "namespace": ex.namespace, "flow_id": ex.flow_id, "state": str(ex.state)})
        self.live.pop(ex.id, None)
        for key in [k for k in self._timers if k[0] == ex.id]:
            self._timers.pop(key).cancel()
        self.logs.flush()
        if self.dispatch == "queue":
            self.stores.jobs.forget(ex.id)
            self._results.pop(ex.id, None)
        self.ownership.release(ex.id)
        for fut in self._waiters.pop(ex.id, []):
            if not fut.done():
                fut.set_result(ex)
        if ex.parent_id and ex.parent_task_run_id and ex.state != State.RETRIED:  # a retried child: its successor reports
            index = ((ex.trigger or {}).get("variables") or {}).get("iteration")
            self.send(ex.parent_id, SubflowEnded(ex.parent_task_run_id, index, ex.id, ex.state,
                                                 self._outputs_for_parent(ex), ex.error))
        for name in {tr.meta.workdir for tr in ex.task_runs.values() if tr.meta.workdir}:
            shutil.rmtree(self.home / "workdirs" / name, ignore_errors=True)
        self._promote_queued(ex)
        for callback in self.on_end:
            callback(ex)
        if self.registry.implements("on_execution_end"):
            parent = self.live.get(ex.parent_id) if ex.parent_id else None
            parent_run = parent.task_runs.get(ex.parent_task_run_id) if parent and ex.parent_task_run_id else None
            # the whole execution as JSON (every task run) only when a plugin may read it, not for metrics alone
            external = any("on_execution_end" in p.hooks for p in self.registry.plugins.values())
            execution = mask(ex.to_json(), ex.secrets) if external else {
                "id": ex.id, "namespace": ex.namespace, "flowId": ex.flow_id, "state": ex.state,
                "error": mask(ex.error, ex.secrets) if ex.error else None}
            try:
                self.registry.hook.on_execution_end(
                    execution=execution, execution_id=ex.id, namespace=ex.namespace,
                    flow_id=ex.flow_id, state=str(ex.state), created_at=ex.created_at, ended_at=ex.ended_at,
                    parent_task_run_id=ex.parent_task_run_id,
                    parent_attempt=parent_run.attempt if parent_run is not None else 0,
                    correlation_id=ex.labels.get(CORRELATION_LABEL) or ex.id)
            except Exception:
                log.exception("a plugin's on_execution_end failed for execution %s", ex.id)

    def _retry_execution(self, old: Execution) -> None:
        """The new execution that follows a RETRIED one: same flow revision, inputs, labels and trigger,
        its attempt number one more (kept with the trigger, so counting goes on across executions)."""
        try:
            flow = self.flow_of(old)
            meta = (old.trigger or {}).get("retry") or {}
            trigger = {**(old.trigger or {}), "retry": {"attempt": int(meta.get("attempt") or 1) + 1,
                                                          "firstAt": meta.get("firstAt") or old.created_at,
                                                          "previousId": old.id}}
            labels = {k: v for k, v in old.labels.items() if k != CORRELATION_LABEL}
            labels[CORRELATION_LABEL] = old.labels.get(CORRELATION_LABEL, old.id)
            new = self.new_execution(flow, dict(old.inputs), labels=labels, trigger=trigger,
                                     revision=old.flow_revision,
                                     parent=(old.parent_id, old.parent_task_run_id)
                                     if old.parent_id and old.parent_task_run_id else None)
            new.secrets |= old.secrets
            new.secret_inputs |= old.secret_inputs
            self.submit(new)
            self.logs.add(old.id, None, None, "INFO", f"retried as execution {new.id}", time.time())
        except Exception:
            log.exception("could not create the execution retrying %s", old.id)

    def _outputs_for_parent(self, ex: Execution) -> dict[str, Any]:
        """The child's outputs as its parent reads them, plus the parent's deprecated Subflow ``outputs``
        map rendered with the child's variables (Kestra's form, before flow outputs existed)."""
        wanted = (ex.trigger or {}).get("outputs")
        if not wanted or ex.state not in SUCCEEDED:
            return ex.outputs
        variables = self.executor.variables
        try:
            extra = variables.render(wanted, variables.build(self.flow_of(ex), ex, None, None))
        except Exception as exc:
            self.logs.add(ex.id, None, None, "WARN", f"subflow outputs: {exc}", time.time())
            return ex.outputs
        return {**(ex.outputs or {}), **mask(extra, ex.secrets)}

    def promote_quotas(self, namespace: str | None = None) -> list[str]:
        """Start the oldest queued executions that namespace quotas have room for (all quotas, or *namespace*'s)."""
        started: list[str] = []
        keys = self.quotas.keys_for(namespace) if namespace is not None else sorted(self.quotas.limits)
        for key in keys:
            with self.db.transaction():
                promoted = self.quotas.next_to_start(key, self._flow_allows)
            for execution_id in promoted:
                self._start_promoted(execution_id)
            started += promoted
        return started

    def _flow_allows(self, namespace: str, flow_id: str) -> bool:
        try:
            concurrency = self.find_flow(namespace, flow_id)[0].concurrency
        except FlowNotFound:
            return True
        if concurrency is None or not concurrency.limit:
            return True
        return self.stores.executions.count_running(namespace, flow_id) < concurrency.limit

    def _promote_queued(self, ex: Execution) -> None:
        """A slot freed up: start the oldest queued execution of the flow, and those the namespace quota allows."""
        if self.quotas.limits:
            self.promote_quotas(ex.namespace)
        concurrency = self.flow_of(ex).concurrency
        if concurrency is None or not concurrency.limit:
            return
        executions = self.stores.executions
        with self.db.transaction():
            self.db.lock("concurrency", ex.namespace, ex.flow_id)
            queued = executions.oldest_queued(ex.namespace, ex.flow_id)
            if queued is None or executions.count_running(ex.namespace, ex.flow_id) >= concurrency.limit:
                return
            if any(self.quotas.running(k) >= self.quotas.limits[k] for k in self.quotas.keys_for(ex.namespace)):
                return
            executions.promote(queued)
        self._start_promoted(queued)

    def _start_promoted(self, queued: str) -> None:
        """A QUEUED execution just became CREATED: start it where it lives."""
        if queued in self.live:
            self.live[queued].state = State.CREATED
            self.post(queued, Start())
        elif self.ownership.owned_elsewhere(queued):
            self.stores.commands.send(queued, "start")
        elif self.dispatch == "queue" and self.stores.executions.owner(queued) is None:
            return  # an executor takes it (unowned CREATED), atomically
        else:
            self.recover(queued)

    def _do_files(self, ex: Execution, work: FileWork) -> None:
        """File work for a flowable; answered with a FilesDone event (or its error)."""
        tr = work.task_run
        if work.kind == "resume":
            self._resume_other(ex, work)
            return
        if work.kind == "toggle":
            self._toggle_trigger(ex, work)
            return
        if work.kind == "logs":
            self._fetch_logs(ex, work)
            return
        if work.kind in ("count", "state"):
            try:
                if work.kind == "count":
                    self.logs.flush()
                    answer: Any = self.stores.executions.count_by_flow(**work.params)
                else:
                    answer = files.flow_state(self.storage, ex, **work.params)
            except Exception as exc:
                self.post(ex.id, FilesDone(tr.id, work.kind, error=f"task `{tr.task_id}`: {exc}"))
                return
            self.post(ex.id, FilesDone(tr.id, work.kind, answer))
            return
        if work.kind == "purge_executions":
            from tiercel.engine.purge import purge_executions

            try:
                self.logs.flush()
                counts = purge_executions(self.stores, self.storage, **work.params)
            except Exception as exc:
                self.post(ex.id, FilesDone(tr.id, work.kind, error=f"task `{tr.task_id}`: {exc}"))
                return
            self.post(ex.id, FilesDone(tr.id, work.kind, counts))
            return
        if work.kind == "purge_logs":
            try:
                self.logs.flush()
                count = self.stores.logs.purge(**work.params)
            except Exception as exc:
                self.post(ex.id, FilesDone(work.task_run.id, work.kind, error=f"task `{work.task_run.task_id}`: {exc}"))
                return
            self.post(ex.id, FilesDone(work.task_run.id, work.kind, {"count": count}))
            return
        try:
            result = files.do(work.kind, self.storage, self.home, ex, tr, work.params)
        except Exception as exc:
            self.post(ex.id, FilesDone(tr.id, work.kind, error=f"task `{tr.task_id}`: {exc}"))
            return
        self.post(ex.id, FilesDone(tr.id, work.kind, result))

    def _resume_other(self, ex: Execution, work: FileWork) -> None:
        """Resume another execution for a flowable, failing its task run if that one is missing or not paused."""
        target = work.params["execution_id"]
        live = self.live.get(target)
        state = live.state if live is not None else self.stores.executions.state(target)
        if state is None:
            error = f"task `{work.task_run.task_id}`: execution `{target}` does not exist"
        elif state != State.PAUSED:
            error = f"task `{work.task_run.task_id}`: execution `{target}` is not paused (it is {state})"
        else:
            self.command(target, "resume", {"inputs": work.params["inputs"]})
            self.post(ex.id, FilesDone(work.task_run.id, work.kind, True))
            return
        self.post(ex.id, FilesDone(work.task_run.id, work.kind, error=error))

    def _fetch_logs(self, ex: Execution, work: FileWork) -> None:
        """An execution's log lines (this one by default) into a JSON-lines file, for a flowable (log.Fetch)."""
        p, tr = work.params, work.task_run
        try:
            self.logs.flush()
            target = p.get("execution_id") or ex.id
            owner = self.live.get(target) or self.stores.executions.load(target)
            if owner is None or owner.namespace != ex.namespace:
                raise ValueError(f"execution `{target}` does not exist in namespace `{ex.namespace}`")
            lines = [line for line in self.stores.logs.query(target, min_level=p.get("level"))
                     if not p.get("task_ids") or line["taskId"] in p["task_ids"]]
            body = "".join(str(dumps({k: v for k, v in line.items() if k != "id"})) + "\n" for line in lines)
            uri = self.storage.task_uri(ex.namespace, ex.flow_id, ex.id, tr.task_id, tr.id, "logs.jsonl")
            self.storage.put(uri, body.encode())
        except Exception as exc:
            self.post(ex.id, FilesDone(tr.id, work.kind, error=f"task `{tr.task_id}`: {exc}"))
            return
        self.post(ex.id, FilesDone(tr.id, work.kind, {"uri": uri, "size": len(lines)}))

    def _toggle_trigger(self, ex: Execution, work: FileWork) -> None:
        """Enable or disable a trigger of a deployed flow for a flowable (Kestra's trigger.Toggle)."""
        p = work.params
        try:
            flow, _ = self.find_flow(p["namespace"], p["flow_id"])
            trigger = next((t for t in flow.triggers if t.id == p["trigger"]), None)
            if trigger is None:
                known = ", ".join(t.id for t in flow.triggers) or "none"
                raise ValueError(f"flow `{p['namespace']}.{p['flow_id']}` has no trigger `{p['trigger']}` (triggers: {known})")
            self.stores.triggers.set_disabled(p["namespace"], p["flow_id"], trigger.id, type(trigger).type,
                                              not p["enabled"])
        except Exception as exc:
            self.post(ex.id, FilesDone(work.task_run.id, work.kind, error=f"task `{work.task_run.task_id}`: {exc}"))
            return
        self.post(ex.id, FilesDone(work.task_run.id, work.kind, True))

    def _start_subflow(self, parent: Execution, start: StartSubflow) -> None:
        from tiercel.flow.inputs import resolve_inputs

        tr, req = start.task_run, start.request
        try:
            flow, revision = self.find_flow(req.namespace, req.flow_id, req.revision)
            inputs = resolve_inputs(flow, req.inputs or {}, upload=None)
            labels = {**req.labels, CORRELATION_LABEL: parent.labels.get(CORRELATION_LABEL, parent.id)}
            child = self.new_execution(flow, inputs, labels=labels, revision=revision,
                                       parent=(parent.id, tr.id) if req.wait else None, execution_id=start.execution_id,
                                       trigger={"id": tr.task_id, "type": start.task_type,
                                                "variables": {"executionId": parent.id, "namespace": parent.namespace,
                                                              "flowId": parent.flow_id, "iteration": start.index},
                                                **({"outputs": req.outputs} if req.outputs else {})})
            if parent.secrets:  # the parent's secrets stay secret in the child: masked, stored sealed
                child.secrets |= parent.secrets
                child.secret_inputs |= {k for k, v in child.inputs.items() if mask(v, parent.secrets) != v}
                child.labels = mask(child.labels, parent.secrets)
            self.submit(child)
        except Exception as exc:
            self.post(parent.id, SubflowEnded(tr.id, start.index, None, State.FAILED, None, str(exc)))
            return
        if not req.wait and start.index is None:
            self.post(parent.id, SubflowEnded(tr.id, None, child.id, State.SUCCESS, {}))

    def close(self) -> None:
        self.logs.flush()
        for task_run_id in {k[0] for k in self._spill}:
            self._store_spilled(task_run_id)
        self.renderer.save_cache()
        try:
            self.ownership.close()
        except Exception:
            pass
        self.stores.close()

    # --- what workers and run contexts use (WorkerHost) ------------------------------------
    def log(self, execution_id: str, tr: TaskRun | None, attempt: int | None, level: str, message: str,
            ts: float) -> None:
        self.logs.add(execution_id, tr, attempt, level, message, ts)

    def record_metrics(self, execution_id: str, task_run_id: str, metrics: list[tuple[Any, ...]]) -> None:
        self.stores.metrics.append([(execution_id, task_run_id, name, kind, value, dumps(tags), ts)
                                    for name, kind, value, tags, ts in metrics])

    def secrets_of(self, execution_id: str) -> set[str]:
        ex = self.live.get(execution_id)
        return ex.secrets if ex is not None else set()

    def track_resources(self, task_run_id: str, attempt: int, resources: dict[str, Any]) -> None:
        self.stores.executions.track_resources(task_run_id, attempt, resources)

    def _overflow_log(self, execution_id: str, tr: TaskRun, attempt: int | None, level: str, message: str,
                      ts: float) -> str:
        """A log line past the task's cap: appended to a local file, stored in internal storage when the task run ends."""
        key = (tr.id, attempt)
        spill = self._spill.get(key)
        if spill is None:
            ex = self.live.get(execution_id)
            namespace, flow_id = (ex.namespace, ex.flow_id) if ex else ("_", "_")
            uri = self.storage.task_uri(namespace, flow_id, execution_id, tr.task_id, tr.id, f"logs-{attempt or 0}.txt")
            folder = self.home / "spill"
            folder.mkdir(exist_ok=True)
            spill = self._spill[key] = (open(folder / f"{tr.id}-{attempt or 0}.txt", "a", encoding="utf-8"), uri)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
        spill[0].write(f"{stamp} {level} {message}\n")
        return spill[1]

    def _store_spilled(self, task_run_id: str) -> None:
        for key in [k for k in self._spill if k[0] == task_run_id]:
            handle, uri = self._spill.pop(key)
            handle.close()
            try:
                self.storage.put(uri, Path(handle.name))
            except Exception:
                log.exception("could not store the overflowing log of task run %s in %s", task_run_id, uri)
            else:
                Path(handle.name).unlink(missing_ok=True)

    def _echo_log(self, execution_id: str, tr: TaskRun | None, attempt: int | None, level: str, message: str) -> None:
        from tiercel.observability.logs import task_line

        ex = self.live.get(execution_id)
        if ex is None:
            ex = type("Unknown", (), {"id": execution_id, "namespace": None, "flow_id": None})()
        task_line(ex, tr, attempt, level, mask(message, ex.secrets) if getattr(ex, "secrets", None) else message)

    def _emit(self, kind: str, payload: Any) -> None:
        for listener in self.listeners:
            listener(kind, payload)

    def _offload_outputs(self, tr: TaskRun, text: str) -> str:
        ex = self.live.get(tr.execution_id)
        namespace, flow_id = (ex.namespace, ex.flow_id) if ex else ("_", "_")
        uri = self.storage.task_uri(namespace, flow_id, tr.execution_id, tr.task_id, tr.id, f"outputs-{tr.attempt}.json")
        self.storage.put(uri, text.encode())
        return uri

    # --- expressions ----------------------------------------------------------------------
    def _lookups(self, ex: Execution) -> dict[str, Any]:
        """What expressions of *ex* may read outside it: secrets, the KV store, stored files."""

        def secret(name: str) -> str:
            value = self.secrets.read(name, ex.namespace)
            ex.secrets.add(value)
            return value

        def kv(key: str, namespace: str | None = None, errorOnMissing: bool = True) -> Any:
            if namespace and namespace != ex.namespace and not ex.namespace.startswith(namespace + "."):
                raise PermissionError(f"kv(): namespace `{ex.namespace}` may read its own keys and its parents' "
                                      f"(as secrets inherit), not those of `{namespace}`")
            value = self.stores.kv.get(namespace or ex.namespace, key)
            if value is None and errorOnMissing:
                from tiercel.expr import Missing

                raise Missing(f"kv key `{key}` not found in namespace `{namespace or ex.namespace}`")
            return value

        def read(uri: str) -> str:
            """A ``tiercel://`` file of the execution's namespace, or a namespace file by its path (``scripts/q.sql``)."""
            if not uri.startswith("tiercel://"):
                uri = NamespaceFiles.uri(ex.namespace, uri)
            return self.storage.read_text(uri, ex.namespace)

        def render(template: Any) -> Any:
            flow = self.flow_of(ex)
            return self.renderer.render(template, self.variables.build(flow, ex, None, None))

        def error_logs() -> list[dict[str, Any]]:
            """Kestra's ``errorLogs()``: the ERROR lines of this execution so far (for alerts in `errors`)."""
            stored = self.stores.logs.query(ex.id, min_level="ERROR")
            pending = [{"taskRunId": r[1], "taskId": r[2], "attemptNumber": r[3], "level": r[4], "message": r[5],
                        "timestamp": r[6]} for r in list(self.logs.pending) if r[0] == ex.id and r[4] == "ERROR"]
            return [{k: v for k, v in line.items() if k != "id"} for line in stored] + pending

        def file_size(uri: str) -> int:
            return self.storage.backend.size(self.storage.path_of(uri, ex.namespace))

        def file_uri(path: str) -> str:
            """Kestra's ``fileURI(path)``: the internal-storage URI of a namespace file."""
            return f"{SCHEME}{namespace_path(ex.namespace)}/_files/{str(path).lstrip('/')}"

        def file_exists(uri: str) -> bool:
            return bool(self.storage.backend.exists(self.storage.path_of(uri, ex.namespace)))

        functions: dict[str, Callable[..., Any]] = {"secret": secret, "kv": kv, "read": read, "render": render, "errorLogs": error_logs,
                     "fileSize": file_size, "isFileEmpty": lambda uri: file_size(uri) == 0, "fileURI": file_uri,
                     "fileExists": file_exists}
        return {**{name: ExpressionFunction(name, fn) for name, fn in functions.items()},
                "envs": self.envs, "globals": self.globals}


def log_cap() -> int | None:
    """Characters of log a task-run attempt keeps in the database (``TIERCEL_TASK_LOG_CAP``: ``10M`` by
    default, ``500k``, ``0`` or ``off`` for no cap); past it, lines go to a file in internal storage."""
    raw = os.environ.get("TIERCEL_TASK_LOG_CAP", "10M").strip().lower()
    if raw in ("", "0", "off", "none"):
        return None
    scale = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(raw[-1], 1)
    try:
        return int(float(raw.rstrip("kmg")) * scale)
    except ValueError:
        raise ValueError(f"TIERCEL_TASK_LOG_CAP={raw!r}: expected a number of characters such as 10M or 500k") from None


def expression_envs() -> dict[str, str]:
    """Kestra's ``envs``: environment variables named ``ENV_X`` or ``KESTRA_X``, read as ``envs.x``."""
    out: dict[str, str] = {}
    for name, value in os.environ.items():
        for prefix in ("KESTRA_", "ENV_"):
            if name.startswith(prefix) and len(name) > len(prefix):
                out[name[len(prefix):].lower()] = value
    return out


def expression_globals(home: Path) -> dict[str, Any]:
    """Kestra's ``globals``: the server's global variables, from ``$TIERCEL_HOME/globals.yaml`` (a map)."""
    import yaml

    path = home / "globals.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: global variables must be a map, got {type(data).__name__}")
    return data


def queue_of(task: Any) -> str:
    """The worker queue of a task: its ``queue``, else Kestra's ``workerGroup.key``, else ``default``."""
    queue = getattr(task, "queue", None)
    if queue:
        return str(queue)
    group = getattr(task, "workerGroup", None)
    if group is not None and getattr(group, "key", None):
        return str(group.key)
    return "default"
