"""The kernel as the checks drive it: a registry that knows the component, flows run in a
private home with their logs captured, and a run context for runners and triggers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiercel.api import Runner, Storage, Task, Trigger

KIND_BASES = (("task", Task), ("trigger", Trigger), ("runner", Runner), ("storage", Storage))


def kind_of(cls: type) -> str:
    for kind, base in KIND_BASES:
        if isinstance(cls, type) and issubclass(cls, base):
            return kind
    raise TypeError(f"{cls!r} is not a Tiercel component (subclass tiercel.Task, Trigger, Runner or Storage)")


_registries: dict[type, Any] = {}


def registry_for(cls: type, replace: type | None = None) -> Any:
    """The installed plugins' registry, with *cls* in it (registered under a probe plugin when not installed).

    *replace* registers that class under *cls*'s type instead (a probe subclass).
    """
    from tiercel.plugins import PluginInfo, get_registry, load_registry

    if replace is None:
        installed = get_registry().find(cls.type)
        if installed is not None and installed.cls is cls:
            return get_registry()
        if cls in _registries:
            return _registries[cls]
    registry = load_registry()
    kind = kind_of(cls)
    existing = registry.get(kind, cls.type)
    if existing is not None:  # take the type over (a dev copy, or a probe subclass)
        for name in (cls.type, *cls.aliases):
            registry._by_kind[kind].pop(name, None)
        registry._canonical[kind].pop(cls.type, None)
    error = registry._add(kind, replace or cls, PluginInfo("tiercel-registry-probe", "0", "probe", cls.__module__))
    if error:
        raise RuntimeError(error)
    if replace is None:
        _registries[cls] = registry
    return registry


@dataclass
class Outcome:
    """An execution run to its end, with everything it wrote anywhere."""

    execution: dict[str, Any]
    logs: list[str] = field(default_factory=list)
    process_logs: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.execution["state"]

    def errors(self) -> list[str]:
        return [f"task `{tr['taskId']}`: {tr['error']}" for tr in self.execution["taskRuns"] if tr.get("error")]


class _Capture(logging.Handler):
    """Log records of the whole process (a plugin logging outside ctx.logger still leaks)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(record.getMessage())


@contextlib.contextmanager
def runtime(registry: Any) -> Iterator[Any]:
    """A Runtime in a fresh home, closed and removed afterwards."""
    from tiercel.engine.runtime import Runtime

    home = Path(tempfile.mkdtemp(prefix="tiercel-conformance-"))
    rt = Runtime(home, registry=registry)
    try:
        yield rt
    finally:
        rt.close()
        shutil.rmtree(home, ignore_errors=True)


def run(text: str, registry: Any, inputs: dict[str, Any] | None = None, timeout: float = 60,
        kill_when: Callable[[], Any] | None = None) -> Outcome:
    """Run the flow *text* to its end; with *kill_when* (an awaitable factory), kill it once that resolves."""
    from tiercel.flow import load_flow
    from tiercel.flow.inputs import resolve_inputs

    flow = load_flow(text, registry=registry)
    declared = {spec.id for spec in flow.inputs or []}
    capture = _Capture()
    root = logging.getLogger()
    with runtime(registry) as rt:
        logs: list[str] = []
        rt.listeners.append(lambda kind, payload: logs.append(payload[3]) if kind == "log" else None)
        ex = rt.new_execution(flow, resolve_inputs(flow, {k: v for k, v in (inputs or {}).items() if k in declared}))

        async def main() -> None:
            stop = asyncio.Event()
            loop_task = asyncio.create_task(rt.serve(stop, poll_interval=0.05))
            killer = None
            if kill_when is not None:
                async def kill() -> None:
                    await kill_when()
                    rt.kill(ex.id)
                killer = asyncio.create_task(kill())
            try:
                rt.submit(ex)
                await asyncio.wait_for(rt.wait(ex.id), timeout)
            finally:
                if killer is not None:
                    killer.cancel()
                stop.set()
                await loop_task

        root.addHandler(capture)
        try:
            run_loop(main())
        except TimeoutError:
            raise TimeoutError(f"the flow did not end within {timeout:g} s") from None
        finally:
            root.removeHandler(capture)
        return Outcome(rt.stores.executions.json(ex.id), logs, capture.lines)


def run_loop(coro: Any) -> Any:
    """Like asyncio.run, without waiting for worker threads a misbehaving blocking run() never ends."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def run_context(rt: Any, task_id: str = "probe") -> Any:
    """A task run context like the worker builds, its logs kept in ``ctx.lines``."""
    from tiercel.engine.context import TaskRunContext

    lines: list[tuple[str, str]] = []
    ctx = TaskRunContext(host=rt, namespace="conformance", flow_id="probe", execution_id="probe",
                         task_run_id="probe", task_id=task_id, attempt=1,
                         variables={"flow": {"id": "probe", "namespace": "conformance"}}, secrets=set(),
                         emit_log=lambda level, message, ts: lines.append((level, message)))
    ctx.lines = lines
    return ctx
