"""One process running executions: executor, worker, timers and persistence, on asyncio.

Every state change is persisted before its effects are carried out (jobs handed to the
worker, timers armed, subflows created), so a killed process loses nothing: the attempts
still RUNNING say which work was in flight, and ``recover()`` picks an execution up again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tiercel.backend.db import Database
from tiercel.backend.repository import Repository
from tiercel.engine.context import mask, read_secret
from tiercel.engine.executor import Event, Executor, SubflowRequest
from tiercel.engine.model import TERMINAL, Execution, State, dumps, new_id
from tiercel.engine.storage import InternalStorage, resolve_backend
from tiercel.engine.variables import build_variables
from tiercel.engine.worker import Worker


log = logging.getLogger("tiercel.engine")


def default_home() -> Path:
    return Path(os.environ.get("TIERCEL_HOME") or Path.cwd() / ".tiercel").resolve()


class FlowNotFound(Exception):
    pass


class _Expr:
    """The executor's view of the expression engine."""

    def __init__(self, renderer: Any) -> None:
        from tiercel.expr import truthy

        self.render = renderer.render
        self.truthy = truthy


class Runtime:
    """Executes flows in this process against the home's database and storage."""

    def __init__(self, home: Path | None = None, registry: Any = None, worker_slots: int = 64,
                 flow_dirs: list[Path] | None = None) -> None:
        from tiercel.expr import Renderer
        from tiercel.plugins import get_registry

        self.home = Path(home) if home else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.registry = registry or get_registry()
        self.db = Database(self.home / "tiercel.db")
        self.repo = Repository(self.db)
        self.storage = InternalStorage(resolve_backend(self.home, self.registry))
        self.repo.offload = self._offload_outputs
        self.repo.resolve = self.storage.read_text
        self.renderer = Renderer(registry=self.registry)
        self.executor = Executor(_Expr(self.renderer), self._variables)
        self.worker = Worker(self, worker_slots)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{new_id()[:6]}"
        self.flow_dirs = list(flow_dirs or [])
        self.live: dict[str, Execution] = {}
        self.listeners: list[Callable[[str, Any], None]] = []
        self.on_end: list[Callable[[Execution], None]] = []
        self._flows: dict[str, Any] = {}
        self._saved: dict[int, str] = {}  # id(flow) -> hash of a source already saved
        self._inbox: dict[str, list[Event]] = {}
        self._pending_logs: list[tuple] = []
        self._waiters: dict[str, list[asyncio.Future]] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: dict[tuple[str, str, str], asyncio.TimerHandle] = {}

    # --- flows --------------------------------------------------------------------------
    def flow_of(self, ex: Execution) -> Any:
        flow = self._flows.get(ex.flow_hash)
        if flow is None:
            from tiercel.flow import load_flow

            found = self.repo.source(ex.flow_hash)
            if found is None:
                raise FlowNotFound(f"the source of flow {ex.namespace}.{ex.flow_id} ({ex.flow_hash}) is missing")
            flow = self._flows[ex.flow_hash] = load_flow(found[0], found[1], registry=self.registry)
        return flow

    def register_flow(self, flow: Any) -> str:
        """Keep *flow*'s source so executions can be resumed from it; returns its hash (saved once per process)."""
        digest = self._saved.get(id(flow))
        if digest is None or self._flows.get(digest) is not flow:
            digest = self.repo.save_source(flow.source, getattr(flow, "path", None))
            self._saved[id(flow)] = digest
            self._flows[digest] = flow
        return digest

    def find_flow(self, namespace: str, flow_id: str, revision: int | None = None) -> tuple[Any, int | None]:
        """A deployed flow, or one sitting in a flow folder of this run."""
        from tiercel.flow import load_flow

        row = self.repo.flow(namespace, flow_id, revision)
        if row is not None:
            flow = self._flows.get(row["hash"]) or load_flow(row["source"], None, registry=self.registry)
            self._flows[row["hash"]] = flow
            return flow, row["revision"]
        for folder in self.flow_dirs:
            for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                try:
                    text = path.read_text()
                except OSError:
                    continue
                if f"{flow_id}" not in text:
                    continue
                try:
                    flow = load_flow(text, str(path), registry=self.registry)
                except Exception:
                    continue
                if flow.id == flow_id and flow.namespace == namespace:
                    return flow, None
        raise FlowNotFound(f"flow `{namespace}.{flow_id}` not found: deploy it with `tiercel flows deploy DIR` "
                           f"or put it in the same folder as the calling flow")

    # --- executions -----------------------------------------------------------------------
    def new_execution(self, flow: Any, inputs: dict[str, Any], labels: dict[str, str] | None = None,
                      trigger: dict[str, Any] | None = None, revision: int | None = None,
                      parent: tuple[str, str] | None = None, dedupe_key: str | None = None,
                      original_id: str | None = None, execution_id: str | None = None) -> Execution:
        digest = self.register_flow(flow)
        ex = Execution(id=execution_id or new_id(), namespace=flow.namespace, flow_id=flow.id, flow_hash=digest,
                       state=State.CREATED, created_at=time.time(), flow_revision=revision,
                       inputs=inputs, labels={**(getattr(flow, "labels", None) or {}), **(labels or {})},
                       trigger=trigger, parent_id=parent[0] if parent else None,
                       parent_task_run_id=parent[1] if parent else None, dedupe_key=dedupe_key,
                       original_id=original_id)
        for spec in getattr(flow, "inputs", None) or []:
            if str(getattr(spec, "type", "")).upper() == "SECRET" and inputs.get(spec.id):
                ex.secrets.add(str(inputs[spec.id]))
        return ex

    def submit(self, ex: Execution) -> bool:
        """Persist a new execution (respecting the flow's concurrency) and start it.

        Returns False when the dedupe key says it already exists.
        """
        flow = self.flow_of(ex)
        concurrency = getattr(flow, "concurrency", None)
        if concurrency is not None and concurrency.limit:
            with self.db.transaction():
                if self.repo.count_running(ex.namespace, ex.flow_id) >= concurrency.limit:
                    behavior = str(getattr(concurrency, "behavior", "QUEUE")).upper().rsplit(".", 1)[-1]
                    ex.state = {"QUEUE": State.QUEUED, "CANCEL": State.CANCELLED, "FAIL": State.FAILED}[behavior]
                    if ex.state != State.QUEUED:
                        ex.ended_at = time.time()
                        ex.error = f"flow concurrency limit ({concurrency.limit}) reached"
                if not self.repo.create_execution(ex, owner=self.worker_id):
                    return False
        elif not self.repo.create_execution(ex, owner=self.worker_id):
            return False
        self._emit("execution", ex)
        if ex.state == State.CREATED:
            self.live[ex.id] = ex
            self.post(ex.id, Event("start"))
        elif ex.state == State.QUEUED:
            self.live[ex.id] = ex  # started by a `start` command once a slot frees up
        elif ex.terminal:
            self._ended(ex)
        return True

    async def wait(self, execution_id: str) -> Execution:
        if execution_id not in self.live and execution_id not in self._inbox:
            loaded = self.repo.load_execution(execution_id)
            if loaded is None or loaded.terminal:
                return loaded  # type: ignore[return-value]
        fut = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(execution_id, []).append(fut)
        return await fut

    def recover(self, execution_id: str) -> Execution | None:
        """Take over an unfinished execution after a crash: re-dispatch what was in flight."""
        ex = self.repo.load_execution(execution_id)
        if ex is None or ex.terminal:
            return ex
        self.repo.set_owner(ex.id, self.worker_id)
        self.live[ex.id] = ex
        if ex.state in (State.CREATED, State.QUEUED):
            ex.state = State.CREATED
            self.post(ex.id, Event("start"))
            return ex
        self.post(ex.id, Event("recover"))
        return ex

    # --- the loop -----------------------------------------------------------------------
    def post(self, execution_id: str, event: Event) -> None:
        self._inbox.setdefault(execution_id, []).append(event)
        if self._wake is not None:
            if self._loop is not None and self._loop.is_running():
                try:
                    running = asyncio.get_running_loop()
                except RuntimeError:
                    running = None
                if running is self._loop:
                    self._wake.set()
                else:
                    self._loop.call_soon_threadsafe(self._wake.set)
            else:
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
        self._register_worker()
        last_poll = 0.0
        stop = stop or asyncio.Event()
        while not stop.is_set():
            if not self._wake.is_set():
                try:
                    await asyncio.wait_for(self._wake.wait(), poll_interval)
                except asyncio.TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)  # let workers run between batches
            self._wake.clear()
            now = time.monotonic()
            if now - last_poll >= poll_interval:
                last_poll = now
                self._poll_commands()
            while self._inbox:
                inbox, self._inbox = self._inbox, {}
                for execution_id, events in inbox.items():
                    self._process(execution_id, events)
            if self._pending_logs:
                self._flush_logs()
        self._flush_logs()

    def _process(self, execution_id: str, events: list[Event]) -> None:
        ex = self.live.get(execution_id)
        if ex is None:
            ex = self.repo.load_execution(execution_id)
            if ex is None or (ex.terminal and not any(e.kind == "restart" for e in events)):
                return
            self.live[execution_id] = ex
        flow = self.flow_of(ex)
        recover = [e for e in events if e.kind == "recover"]
        events = [e for e in events if e.kind != "recover"]
        if recover:
            events = self._recovery_events(ex) + events
        try:
            step = self.executor.apply(flow, ex, events)
        except Exception as exc:  # an engine bug must fail the execution visibly, not hang it
            import traceback

            ex.state, ex.error, ex.ended_at, ex.dirty = State.FAILED, f"internal error: {exc!r}", time.time(), True
            self._pending_logs.append((ex.id, None, None, None, "ERROR", traceback.format_exc(), time.time()))
            from tiercel.engine.executor import Step

            step = Step(ended=True)
        changed = list(ex.changed.values())
        if ex.secrets:
            for tr in changed:
                if tr.outputs:
                    tr.outputs = mask(tr.outputs, ex.secrets)
                if tr.error:
                    tr.error = mask(tr.error, ex.secrets)
            if ex.outputs:
                ex.outputs = mask(ex.outputs, ex.secrets)
        for tr, level, message in step.logs:
            self.log(ex.id, tr, tr.attempt if tr else None, level, message, time.time())
        logs, self._pending_logs = self._pending_logs, []
        self.repo.save(ex, logs=logs)
        for tr in changed:
            self._emit("taskrun", (ex, tr))
        self._emit("execution", ex)
        for job in step.jobs:
            self.worker.submit(job, self.post)
        for tr_id, when, kind in step.timers:
            self._arm(ex.id, tr_id, when, kind)
        for tr_id in step.cancel:
            if not self.worker.cancel(tr_id):
                tr = ex.task_runs.get(tr_id)
                if tr is not None:
                    self.post(ex.id, Event("result", tr_id, tr.attempt, State.KILLED, None, "killed",
                                           time.time(), time.time()))
        for req in step.subflows:
            self._start_subflow(ex, req)
        for io in step.io:
            self._do_io(ex, io)
        for child_id in step.kill_children:
            self.kill(child_id)
        for target, inputs in step.resume_executions:
            self.command(target, "resume", {"inputs": inputs})
        if step.ended:
            self._ended(ex)

    def _recovery_events(self, ex: Execution) -> list[Event]:
        """Events that restart in-flight work after a crash: lost attempts, timers.

        An attempt row is written (RUNNING) in the same transaction that dispatches it, so the
        attempts still RUNNING are exactly the ones whose process died.
        """
        events: list[Event] = []
        now = time.time()
        for tr in ex.task_runs.values():
            if tr.state == State.RUNNING and tr.attempts and tr.attempts[-1].state == State.RUNNING:
                events.append(Event("result", tr.id, tr.attempt, "LOST", None,
                                    "the process running this attempt stopped", tr.started_at, now))
            elif tr.state == State.RETRYING:
                events.append(Event("timer", tr.id, data={"kind": "retry"}))
            timer = tr.data.get("timer")
            if timer and tr.state not in TERMINAL:
                self._arm(ex.id, tr.id, timer[0], timer[1])
        return events

    def _arm(self, execution_id: str, tr_id: str, when: float, kind: str) -> None:
        key = (execution_id, tr_id, kind)
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        loop = self._loop or asyncio.get_event_loop()

        def fire() -> None:
            self._timers.pop(key, None)
            self.post(execution_id, Event("timer", tr_id, data={"kind": kind}))

        self._timers[key] = loop.call_later(max(0.0, when - time.time()), fire)

    def _ended(self, ex: Execution) -> None:
        self.live.pop(ex.id, None)
        for key in [k for k in self._timers if k[0] == ex.id]:
            self._timers.pop(key).cancel()
        self._flush_logs()
        self.repo.set_owner(ex.id, None)
        for fut in self._waiters.pop(ex.id, []):
            if not fut.done():
                fut.set_result(ex)
        if ex.parent_id and ex.parent_task_run_id:
            index = ((ex.trigger or {}).get("variables") or {}).get("iteration")
            self.post(ex.parent_id, Event("subflow", ex.parent_task_run_id, state=ex.state, outputs=ex.outputs,
                                          error=ex.error, data={"executionId": ex.id, "index": index}))
        workdirs = {tr.data["workdir"] for tr in ex.task_runs.values() if tr.data.get("workdir")}
        for name in workdirs:
            import shutil

            shutil.rmtree(self.home / "workdirs" / name, ignore_errors=True)
        self._promote_queued(ex)
        for callback in self.on_end:
            callback(ex)
        if self.registry.implements("on_execution_end"):
            try:
                self.registry.hook.on_execution_end(execution=mask(ex.to_json(), ex.secrets))
            except Exception:
                log.exception("a plugin's on_execution_end failed for execution %s", ex.id)

    def _promote_queued(self, ex: Execution) -> None:
        """A slot of the flow's concurrency freed up: start the oldest queued execution."""
        flow = self.flow_of(ex)
        concurrency = getattr(flow, "concurrency", None)
        if concurrency is None or not concurrency.limit:
            return
        with self.db.transaction():
            queued = self.repo.oldest_queued(ex.namespace, ex.flow_id)
            if queued is None or self.repo.count_running(ex.namespace, ex.flow_id) >= concurrency.limit:
                return
            self.db.execute("UPDATE executions SET state = 'CREATED' WHERE id = ? AND state = 'QUEUED'", (queued,))
        owner = self.repo.owner(queued)
        if queued in self.live:
            self.post(queued, Event("start"))
        elif owner not in (None, self.worker_id) and _alive(owner, self.repo):
            self.repo.add_event(queued, "start")
        else:
            self.recover(queued)

    def _do_io(self, ex: Execution, req: Any) -> None:
        """File work for a flowable task; answered with an `io` event (or its error)."""
        from tiercel.engine import files

        tr = req.task_run
        try:
            if req.kind == "split":
                result = {"batches": files.split_items(self, ex, tr, req.params)}
            elif req.kind == "workdir_in":
                files.write_input_files(self, ex, tr, req.params["files"])
                result = {}
            else:
                result = {"outputFiles": files.collect_output_files(self, ex, tr, req.params["globs"])}
        except Exception as exc:
            self.post(ex.id, Event("io", tr.id, error=f"task `{tr.task_id}`: {exc}", data={"kind": req.kind}))
            return
        self.post(ex.id, Event("io", tr.id, data={"kind": req.kind, "result": result}))

    def _start_subflow(self, parent: Execution, req: SubflowRequest) -> None:
        from tiercel.flow.inputs import resolve_inputs

        tr = req.task_run
        try:
            flow, revision = self.find_flow(req.namespace, req.flow_id, req.revision)
            inputs = resolve_inputs(flow, req.inputs or {}, upload=None)
            child = self.new_execution(flow, inputs, labels=req.labels, revision=revision,
                                       parent=(parent.id, tr.id) if req.wait else None,
                                       trigger={"id": tr.task_id, "type": "core.Subflow",
                                                "variables": {"executionId": parent.id, "namespace": parent.namespace,
                                                              "flowId": parent.flow_id, "iteration": req.index}})
            child.__dict__["_parent_wait"] = req.wait
            tr.data["child"] = child.id
            tr.dirty = True
            self.submit(child)
        except Exception as exc:
            self.post(parent.id, Event("subflow", tr.id, state=State.FAILED, error=str(exc),
                                       data={"executionId": None, "index": req.index}))
            return
        if not req.wait and req.index is None:
            self.post(parent.id, Event("subflow", tr.id, state=State.SUCCESS, outputs={},
                                       data={"executionId": child.id}))

    # --- commands -----------------------------------------------------------------------
    def kill(self, execution_id: str) -> None:
        self.command(execution_id, "kill")

    def command(self, execution_id: str, kind: str, payload: dict[str, Any] | None = None) -> None:
        """Deliver kill/resume/restart to the execution, wherever it runs."""
        event = Event(kind, payload.get("taskRunId") if payload else None, data=payload or {})
        if execution_id in self.live or self.repo.owner(execution_id) in (None, self.worker_id):
            self.post(execution_id, event)
        else:
            self.repo.add_event(execution_id, kind, payload)

    def _poll_commands(self) -> None:
        self._heartbeat()
        for event_id, execution_id, kind, payload in self.repo.pending_events():
            owner = self.repo.owner(execution_id)
            if execution_id not in self.live and owner not in (None, self.worker_id) and _alive(owner, self.repo):
                continue
            self.db.execute("DELETE FROM events WHERE id = ?", (event_id,))
            if execution_id not in self.live:
                ex = self.repo.load_execution(execution_id)
                if ex is None:
                    continue
                if not ex.terminal:
                    self.recover(execution_id)
            self.post(execution_id, Event(kind, payload.get("taskRunId"), data=payload))

    def _register_worker(self) -> None:
        self.db.execute("INSERT OR REPLACE INTO workers (id, host, pid, started_at, last_seen) VALUES (?, ?, ?, ?, ?)",
                        (self.worker_id, socket.gethostname(), os.getpid(), time.time(), time.time()))

    def _heartbeat(self) -> None:
        now = time.time()
        if now - self.__dict__.get("_last_beat", 0) > 2:
            self.__dict__["_last_beat"] = now
            self.db.execute("UPDATE workers SET last_seen = ? WHERE id = ?", (now, self.worker_id))

    def close(self) -> None:
        self._flush_logs()
        try:
            self.db.execute("DELETE FROM workers WHERE id = ?", (self.worker_id,))
        except Exception:
            pass
        self.db.close()

    # --- logs, metrics, listeners ---------------------------------------------------------
    def log(self, execution_id: str, tr: Any, attempt: int | None, level: str, message: str, ts: float) -> None:
        self._pending_logs.append((execution_id, tr.id if tr else None, tr.task_id if tr else None, attempt,
                                   level, message, ts))
        self._emit("log", (execution_id, tr.task_id if tr else None, level, message, ts))

    def _flush_logs(self) -> None:
        if not self._pending_logs:
            return
        logs, self._pending_logs = self._pending_logs, []
        with self.db.transaction() as conn:
            conn.executemany("INSERT INTO logs (execution_id, task_run_id, task_id, attempt, level, message, ts) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", logs)

    def record_metrics(self, execution_id: str, tr_id: str, metrics: list[tuple]) -> None:
        self.repo.save_metrics([(execution_id, tr_id, name, kind, value, dumps(tags), ts)
                                for name, kind, value, tags, ts in metrics])

    def _emit(self, kind: str, payload: Any) -> None:
        for listener in self.listeners:
            listener(kind, payload)

    def _offload_outputs(self, tr: Any, text: str) -> str:
        ex = self.live.get(tr.execution_id)
        namespace, flow_id = (ex.namespace, ex.flow_id) if ex else ("_", "_")
        uri = self.storage.task_uri(namespace, flow_id, tr.execution_id, tr.task_id, tr.id, f"outputs-{tr.attempt}.json")
        self.storage.put(uri, text.encode())
        return uri

    def secrets_of(self, execution_id: str) -> set[str]:
        ex = self.live.get(execution_id)
        return ex.secrets if ex is not None else set()

    # --- expressions ----------------------------------------------------------------------
    def _variables(self, flow: Any, ex: Execution, tr: Any, plan: Any) -> dict[str, Any]:
        functions = ex.__dict__.get("_functions")
        if functions is None:
            functions = ex.__dict__["_functions"] = self._functions(ex)
        return build_variables(flow, ex, tr, plan, functions)

    def _functions(self, ex: Execution) -> dict[str, Callable[..., Any]]:
        def secret(name: str) -> str:
            value = read_secret(name)
            ex.secrets.add(value)
            return value

        def kv(key: str, namespace: str | None = None, errorOnMissing: bool = True) -> Any:
            value = self.repo.kv_get(namespace or ex.namespace, key)
            if value is None and errorOnMissing:
                raise KeyError(f"kv key `{key}` not found in namespace `{namespace or ex.namespace}`")
            return value

        def read(uri: str) -> str:
            return self.storage.read_text(uri, ex.namespace)

        def render(template: Any) -> Any:
            variables = self._variables(self.flow_of(ex), ex, None, self.executor.plan(self.flow_of(ex)))
            return self.renderer.render(template, variables)

        return {"secret": secret, "kv": kv, "read": read, "render": render}


def _alive(owner: str | None, repo: Repository) -> bool:
    """Whether the process that owns an execution still runs (its heartbeat is fresh)."""
    if not owner:
        return False
    row = repo.db.one("SELECT host, pid, last_seen FROM workers WHERE id = ?", (owner,))
    if row is None:
        return False
    host, pid, last_seen = row
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return time.time() - last_seen < 10
