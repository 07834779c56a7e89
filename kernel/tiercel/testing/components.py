"""Drive one task or trigger the way the kernel does, from a plugin's own tests.

Plugins test against this public surface, never the engine's internals:

- :func:`run_context` gives a :class:`tiercel.RunContext` for calling ``task.run(ctx)`` directly;
- :class:`TriggerHarness` polls or listens to a flow's trigger and delivers its events as the
  server does (the execution is created, then the event acknowledged, once per dedupe key);
- :func:`read_file` reads a ``tiercel://`` file a run left in a home; :func:`execution_logs` and
  :func:`execution_metrics` what an execution logged and measured.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from tiercel.api import RunContext, Trigger, TriggerEvent


class _Home:
    """A runtime over a home folder (a fresh temporary one when None)."""

    def __init__(self, home: str | Path | None, registry: Any = None) -> None:
        from tiercel.engine.runtime import Runtime

        self.home = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix="tiercel-test-"))
        self.rt = Runtime(self.home, registry=registry)

    def close(self) -> None:
        self.rt.close()


@contextlib.contextmanager
def run_context(namespace: str = "company.team", flow_id: str = "test", task_id: str = "task",
                home: str | Path | None = None, variables: dict[str, Any] | None = None,
                registry: Any = None) -> Iterator[RunContext]:
    """A run context like the worker builds for one attempt of *task_id*.

    Its log lines are kept in ``ctx.logs`` as ``(level, message)``; files it stores land in
    *home* (a temporary folder by default) and read back with ``ctx.open_file(uri)``.
    """
    from tiercel.engine.context import TaskRunContext

    store = _Home(home, registry)
    logs: list[tuple[str, str]] = []
    ctx = TaskRunContext(host=store.rt, namespace=namespace, flow_id=flow_id, execution_id="test-execution",
                         task_run_id="test-task-run", task_id=task_id, attempt=1,
                         variables={"flow": {"id": flow_id, "namespace": namespace}, **(variables or {})},
                         secrets=set(), emit_log=lambda level, message, ts: logs.append((level, message)))
    ctx.logs = logs  # type: ignore[attr-defined]
    try:
        yield ctx
    finally:
        ctx.cleanup()
        store.close()


def render_component(component: Any, variables: dict[str, Any], registry: Any = None) -> Any:
    """The component with every dynamic property rendered and validated, as the worker does before run()."""
    from tiercel.engine.worker import render_task
    from tiercel.expr import Renderer

    return render_task(component, Renderer(registry=registry), variables)


def read_file(uri: str, home: str | Path, namespace: str | None = None) -> bytes:
    """The content of a ``tiercel://`` file stored in *home* (by a flow run there); with *namespace*,
    refused when the file is not that namespace's, as a task of that namespace would be."""
    store = _Home(home)
    try:
        with store.rt.storage.open(uri, namespace) as stream:
            return stream.read()
    finally:
        store.close()


def write_file(uri: str, data: bytes, home: str | Path) -> None:
    """Store *data* at a ``tiercel://`` URI in *home* (a namespace file, an input a test prepares)."""
    store = _Home(home)
    try:
        store.rt.storage.put(uri, data)
    finally:
        store.close()


def execution_logs(home: str | Path, execution_id: str, task_id: str | None = None) -> list[dict[str, Any]]:
    """The log lines an execution in *home* wrote (as the API gives them: level, message, taskId…)."""
    from tiercel.backend import Stores

    stores = Stores.open(Path(home) / "tiercel.db")
    try:
        return stores.logs.query(execution_id, task_id=task_id)
    finally:
        stores.close()


def execution_metrics(home: str | Path, execution_id: str) -> list[dict[str, Any]]:
    """The metrics an execution in *home* recorded (name, type, value, tags, taskRunId)."""
    from tiercel.backend import Stores

    stores = Stores.open(Path(home) / "tiercel.db")
    try:
        return stores.metrics.query(execution_id)
    finally:
        stores.close()


class TriggerHarness:
    """One trigger of a flow, in a private home, driven the way the server drives it.

    ``await h.poll_once()`` polls a polling trigger once (its ``ctx.state`` persists between
    polls); ``h.listen()`` iterates a realtime trigger's events; ``await h.deliver(event)``
    creates the execution (None when the event's key already made one) and only then
    acknowledges the event; ``await h.run(event)`` also runs that execution to its end here.
    ``h.executions()`` lists what was created. Use it as a context
    manager, or call ``close()``.
    """

    def __init__(self, flow: str, home: str | Path | None = None, trigger_id: str | None = None,
                 registry: Any = None) -> None:
        from tiercel.engine.delivery import prepare_trigger
        from tiercel.flow import load_flow

        self._store = _Home(home, registry)
        self.home = self._store.home
        self.flow = load_flow(flow, registry=self._store.rt.registry)
        triggers = [t for t in self.flow.triggers if trigger_id is None or t.id == trigger_id]
        if not triggers:
            raise ValueError(f"flow `{self.flow.id}` has no trigger" + (f" `{trigger_id}`" if trigger_id else ""))
        self._declared: Trigger = triggers[0]
        self.ctx, self.trigger = prepare_trigger(self._store.rt, self.flow, self._declared)
        self._refuse: str | None = None

    def __enter__(self) -> TriggerHarness:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._store.close()

    async def poll_once(self) -> TriggerEvent | None:
        """One poll, as the scheduler makes it; the trigger's state is saved afterwards."""
        from tiercel.engine.delivery import save_trigger_state

        event = await self.trigger.poll(self.ctx)
        save_trigger_state(self._store.rt, self.flow, self._declared, self.ctx.state)
        return event

    def restart(self) -> None:
        """A new run context with the persisted state, as after a server restart."""
        from tiercel.engine.delivery import prepare_trigger

        self.ctx, self.trigger = prepare_trigger(self._store.rt, self.flow, self._declared)

    def listen(self) -> AsyncIterator[TriggerEvent]:
        """The realtime trigger's event stream (close it with ``await stream.aclose()``)."""
        return self.trigger.listen(self.ctx)

    async def events(self, count: int, timeout: float = 20) -> tuple[list[TriggerEvent], AsyncIterator[TriggerEvent]]:
        """The first *count* events of a realtime trigger, and the still-open stream."""
        import asyncio

        stream = self.listen()
        events: list[TriggerEvent] = []
        deadline = time.monotonic() + timeout
        while len(events) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                await stream.aclose()
                raise TimeoutError(f"{len(events)} of {count} events in {timeout:g} s")
            events.append(await asyncio.wait_for(stream.__anext__(), left))
        return events, stream

    async def deliver(self, event: TriggerEvent) -> dict[str, Any] | None:
        """Create the event's execution, then ack it; None when its key had already made one."""
        from tiercel.engine.delivery import deliver

        rt = self._store.rt
        if self._refuse is not None:
            message = self._refuse
            original = rt.submit

            def refuse(ex: Any) -> bool:
                raise RuntimeError(message)

            rt.submit = refuse
            try:
                await deliver(rt, self.flow, self._declared, event)
            finally:
                rt.submit = original
            return None
        ex = await deliver(rt, self.flow, self._declared, event)
        return None if ex is None else rt.stores.executions.json(ex.id)

    async def run(self, event: TriggerEvent, timeout: float = 60) -> dict[str, Any] | None:
        """Deliver *event* and run its execution to the end here; its JSON (None when deduplicated)."""
        import asyncio

        from tiercel.engine.delivery import deliver

        rt = self._store.rt
        stop = asyncio.Event()
        loop = asyncio.create_task(rt.serve(stop, poll_interval=0.05))
        try:
            ex = await deliver(rt, self.flow, self._declared, event)
            if ex is None:
                return None
            await asyncio.wait_for(rt.wait(ex.id), timeout)
            return rt.stores.executions.json(ex.id)
        finally:
            stop.set()
            rt.wake()
            await loop

    @contextlib.contextmanager
    def store_down(self, message: str = "injected failure: the database is down") -> Iterator[None]:
        """While inside, creating an execution fails (deliver raises RuntimeError and nacks the event)."""
        self._refuse = message
        try:
            yield
        finally:
            self._refuse = None

    def executions(self) -> list[dict[str, Any]]:
        """Executions created so far, oldest first: ``trigger`` (id, type, variables) and ``dedupeKey``."""
        return self._store.rt.stores.executions.triggers_of(self.flow.id, self.flow.namespace)

    def open_file(self, uri: str) -> BinaryIO:
        return self._store.rt.storage.open(uri, self.flow.namespace)


def put_secret(home: str | Path, namespace: str, name: str, value: str) -> None:
    """Store secret *name* of *namespace* in *home*'s encrypted store, as ``tiercel secrets set`` does
    (``TIERCEL_SECRET_KEY`` must be set)."""
    from tiercel.backend import Stores
    from tiercel.core.secrets import seal, secret_key

    key = secret_key()
    if key is None:
        raise RuntimeError("put_secret needs TIERCEL_SECRET_KEY (tiercel secrets new-key)")
    stores = Stores.open(Path(home) / "tiercel.db")
    try:
        stores.secrets.put(namespace, name, seal(key, namespace, name, value))
    finally:
        stores.close()
