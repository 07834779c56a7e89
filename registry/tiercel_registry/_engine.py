"""The kernel as the checks drive it, through its public test surface (``tiercel.testing``): a
registry that knows the component, flows run in a private home with their logs captured, and a
run context for runners."""

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

from tiercel.api import Runner, SecretProvider, Storage, Task, Trigger

KIND_BASES = (("task", Task), ("trigger", Trigger), ("runner", Runner), ("storage", Storage),
              ("secret", SecretProvider))


def kind_of(cls: type) -> str:
    for kind, base in KIND_BASES:
        if isinstance(cls, type) and issubclass(cls, base):
            return kind
    raise TypeError(f"{cls!r} is not a Tiercel component (subclass tiercel.Task, Trigger, Runner, Storage or SecretProvider)")


_registries: dict[type, Any] = {}


def registry_for(cls: type, replace: type | None = None) -> Any:
    """The installed plugins' registry, with *cls* in it (registered under a probe plugin when not installed).

    *replace* registers that class under *cls*'s type instead (a probe subclass).
    """
    from tiercel.plugins import get_registry

    if replace is None:
        installed = get_registry().find(cls.type)
        if installed is not None and installed.cls is cls:
            return get_registry()
        if cls in _registries:
            return _registries[cls]
    try:
        registry = get_registry().with_component(replace or cls, "tiercel-registry-probe", replace=True)
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None
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


def run(text: str, registry: Any, inputs: dict[str, Any] | None = None, timeout: float = 60,
        kill_when: Callable[[], Any] | None = None) -> Outcome:
    """Run the flow *text* to its end; with *kill_when* (an awaitable factory), kill it once that resolves."""
    from tiercel.flow import load_flow
    from tiercel.testing import run_flow

    declared = {spec.id for spec in load_flow(text, registry=registry).inputs or []}
    capture = _Capture()
    root = logging.getLogger()
    logs: list[tuple[str | None, str, str]] = []
    home = Path(tempfile.mkdtemp(prefix="tiercel-conformance-"))
    root.addHandler(capture)
    try:
        execution = run_flow(text, {k: v for k, v in (inputs or {}).items() if k in declared}, home=home,
                             timeout=timeout, registry=registry, logs=logs, kill_when=kill_when)
    except TimeoutError:
        raise TimeoutError(f"the flow did not end within {timeout:g} s") from None
    finally:
        root.removeHandler(capture)
        shutil.rmtree(home, ignore_errors=True)
    return Outcome(execution, [message for _, _, message in logs], capture.lines)


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


@contextlib.contextmanager
def run_context(registry: Any, task_id: str = "probe") -> Iterator[Any]:
    """A task run context like the worker builds, its logs kept in ``ctx.lines`` as (level, message)."""
    from tiercel.testing import run_context as context

    home = Path(tempfile.mkdtemp(prefix="tiercel-conformance-"))
    try:
        with context(namespace="conformance", flow_id="probe", task_id=task_id, home=home, registry=registry) as ctx:
            ctx.lines = ctx.logs  # type: ignore[attr-defined]
            yield ctx
    finally:
        shutil.rmtree(home, ignore_errors=True)
