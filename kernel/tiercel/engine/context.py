"""The concrete run context handed to tasks and triggers."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from tiercel.api import DEFAULT_RUNNER, RunContext, Runner, TaskError
from tiercel.engine.host import RunHost
from tiercel.engine.secrets import mask

__all__ = ["LogSink", "TaskRunContext", "mask"]

_LEVELS = {"TRACE": 5, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR}


class LogSink(logging.Handler):
    """Collects a run's log records as (level, message, time), secrets masked."""

    def __init__(self, secrets: set[str], emit: Callable[[str, str, float], None]) -> None:
        super().__init__(logging.DEBUG)
        self.secrets = secrets
        self._emit = emit

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format in a plugin's log call must not fail the task
            message = str(record.msg)
        if record.exc_info:
            import traceback

            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        level = {5: "TRACE", logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN",
                 logging.ERROR: "ERROR", logging.CRITICAL: "ERROR"}.get(record.levelno, "INFO")
        self._emit(level, mask(message, self.secrets), record.created)


class TaskRunContext(RunContext):
    """What a task or trigger uses while it runs. Built by the worker (or the trigger runtime)."""

    def __init__(self, *, host: RunHost, namespace: str, flow_id: str, execution_id: str | None,
                 task_run_id: str | None, task_id: str | None, attempt: int, variables: dict[str, Any],
                 secrets: set[str], emit_log: Callable[[str, str, float], None], log_level: str | None = None,
                 workdir: str | None = None, trigger_state: dict[str, Any] | None = None,
                 attempts: list[Any] | None = None) -> None:
        self.host = host
        self.namespace, self.flow_id, self.execution_id = namespace, flow_id, execution_id
        self.task_run_id, self.task_id, self.attempt = task_run_id, task_id, attempt
        self.variables = variables
        self.secrets = secrets
        self.logger = logging.Logger(f"tiercel.{flow_id}.{task_id or 'trigger'}")
        # not setLevel(): it clears the cache of every registered logger, on each task run
        self.logger.level = _LEVELS.get(log_level or "DEBUG", logging.DEBUG)
        self.logger.addHandler(LogSink(secrets, emit_log))
        self.logger.propagate = False
        self._shared_workdir = workdir
        self._workdir: Path | None = None
        self._cancelled = False
        self.warned = False
        self._state = trigger_state if trigger_state is not None else {}
        self.metrics: list[tuple[str, str, float, dict[str, str], float]] = []
        #: The task run's attempts (this one last), whose ``resources`` track()/leftovers use.
        self._attempts = attempts or []

    @property
    def working_dir(self) -> Path:  # type: ignore[override]
        if self._workdir is None:
            if self._shared_workdir:
                self._workdir = self.host.home / "workdirs" / self._shared_workdir
                self._workdir.mkdir(parents=True, exist_ok=True)
            else:
                self._workdir = Path(tempfile.mkdtemp(prefix=f"tiercel-{self.task_id or 'run'}-"))
        return self._workdir

    def cleanup(self) -> None:
        if self._workdir is not None and not self._shared_workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def render(self, value: Any, /, **extra: Any) -> Any:
        variables = {**self.variables, **extra} if extra else self.variables
        return self.host.renderer.render(value, variables)

    def secret(self, name: str) -> str:
        value = self.host.secrets.read(name, self.namespace)
        self.secrets.add(value)
        return value

    def put_file(self, source: Path | BinaryIO | bytes, name: str) -> str:
        uri = self.host.storage.task_uri(self.namespace, self.flow_id, self.execution_id or "triggers",
                                            self.task_id or "trigger", self.task_run_id or str(int(time.time() * 1000)), name)
        self.host.storage.put(uri, source)
        return uri

    def open_file(self, uri: str) -> BinaryIO:
        return self.host.storage.open(uri, self.namespace)

    def delete_file(self, uri: str) -> bool:
        self.host.storage.path_of(uri, self.namespace)  # refuses other namespaces
        return self.host.storage.delete(uri)

    def metric(self, name: str, value: float, type: str = "counter", **tags: str) -> None:
        self.metrics.append((name, type, float(value), tags, time.time()))

    def list_files(self, prefix_uri: str) -> list[str]:
        self.host.storage.path_of(prefix_uri, self.namespace)  # refuses other namespaces
        return self.host.storage.list(prefix_uri)

    def warning(self, message: str) -> None:
        self.warned = True
        self.logger.warning(message)

    @property
    def kv(self) -> Any:
        return self.host.kv

    @property
    def namespace_files(self) -> Any:
        from tiercel.engine.namespace_files import NamespaceFiles

        return NamespaceFiles(self.host.storage)

    @property
    def cache_dir(self) -> Path:
        path = Path(os.environ.get("TIERCEL_CACHE_DIR") or self.host.home / "cache")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def runner(self, spec: dict[str, Any] | None = None) -> Runner:
        spec = dict(spec or {})
        type_name = spec.pop("type", DEFAULT_RUNNER)
        info = self.host.registry.get("runner", type_name)
        if info is None:
            hint = self.host.registry.suggest("runner", type_name)
            raise TaskError(f"unknown task runner `{type_name}`" + (f"; did you mean `{hint}`?" if hint else ""))
        runner: Runner = info.cls.model_validate(spec)  # type: ignore[attr-defined]
        return runner

    def track(self, key: str, value: Any) -> None:
        if not self._attempts:
            return  # a trigger or a test context: nothing outlives it
        current = self._attempts[-1]
        resources = dict(current.resources or {})
        if value is None:
            resources.pop(key, None)
        else:
            resources[key] = value
        current.resources = resources or None
        if self.task_run_id is not None:
            self.host.track_resources(self.task_run_id, current.attempt, resources)

    @property
    def leftovers(self) -> list[dict[str, Any]]:
        return [dict(a.resources) for a in self._attempts[:-1] if a.resources]

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def state(self) -> dict[str, Any]:
        return self._state
