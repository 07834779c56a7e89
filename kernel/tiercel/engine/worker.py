"""The worker: renders a runnable task, runs it with its timeout, and reports the result."""

from __future__ import annotations

import asyncio
import inspect
import time
import traceback
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from tiercel.api import TaskError, contains_expression
from tiercel.engine.context import TaskRunContext, mask
from tiercel.engine.executor import Job, Result
from tiercel.engine.host import WorkerHost
from tiercel.flow.model import CORRELATION_LABEL
from tiercel.model import State, iso_of
from tiercel.observability import tracing


class RenderError(Exception):
    """A property could not be rendered or its rendered value is invalid."""


def render_task(task: Any, renderer: Any, variables: dict[str, Any]) -> Any:
    """The task with every dynamic property rendered and validated against its model."""
    cls = type(task)
    data: dict[str, Any] = {}
    changed = False
    for name in cls.model_fields:
        value = getattr(task, name)
        if name not in cls.static_fields and contains_expression(value):
            try:
                value = _plain(renderer.render(value, variables))
            except Exception as exc:
                raise RenderError(f"task `{task.id}`: property `{_yaml_name(cls, name)}`: {exc}") from None
            changed = True
        data[name] = value
    if not changed:
        return task
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise RenderError(f"task `{task.id}`: " + "; ".join(_problems(cls, task, exc))) from None


def _problems(cls: Any, task: Any, exc: ValidationError) -> list[str]:
    """Rendered values a task's model refuses, worded as `tiercel validate` words them: the property, what it
    expects, what it got, and the expression it was rendered from."""
    from tiercel.flow.loader import _describe, _expected

    grouped: dict[str, list[dict[str, Any]]] = {}
    for err in exc.errors(include_url=False):
        prop = _yaml_name(cls, str(err["loc"][0])) if err["loc"] else "?"
        grouped.setdefault(prop, []).append(dict(err))
    problems = []
    for prop, errs in grouped.items():
        name = next((n for n in cls.model_fields if _yaml_name(cls, n) == prop), prop)
        source = getattr(task, name, None)
        origin = f" (rendered from `{source}`)" if isinstance(source, str) and contains_expression(source) else ""
        sub = ".".join(str(p) for p in errs[0]["loc"][1:] if not isinstance(p, str) or p[:1].islower())
        where = f"`{prop}{'.' + sub if sub else ''}`"
        words = [w for w in dict.fromkeys(_expected(e) for e in errs) if w]
        if words:
            problems.append(f"property {where}: expected {' or '.join(words)}, got {_describe(errs[0]['input'])}{origin}")
        else:
            msg = errs[0]["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
            problems.append(f"property {where}: {msg}, got {_describe(errs[0]['input'])}{origin}")
    return problems


def _plain(value: Any) -> Any:
    """Rendered values as flow properties hold them: dates and times as ISO-8601 text."""
    if isinstance(value, (datetime, date)):
        return iso_of(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _yaml_name(cls: Any, name: str) -> str:
    field = cls.model_fields.get(name)
    return (field.alias if field is not None and field.alias else name)



class Worker:
    """Runs jobs as asyncio tasks, at most ``slots`` at a time; each job ends in exactly one result."""

    def __init__(self, host: WorkerHost, slots: int = 64) -> None:
        self.host = host
        self.capacity = slots
        self.tracing = tracing.enabled()  # decided once: TRACEPARENT for each attempt when on
        self.slots = asyncio.Semaphore(slots)
        self.running: dict[str, asyncio.Task[None]] = {}

    def submit(self, job: Job, done: Callable[[str, Result], None]) -> None:
        task = asyncio.get_running_loop().create_task(self._run(job, done))
        self.running[job.task_run.id] = task

        def cancelled_before_start(t: asyncio.Task[None]) -> None:
            # A kill that lands before _run's first step never enters its try: report KILLED here.
            if t.cancelled():
                self.running.pop(job.task_run.id, None)
                done(job.execution_id, killed(job))

        task.add_done_callback(cancelled_before_start)

    def cancel(self, task_run_id: str) -> bool:
        task = self.running.get(task_run_id)
        if task is None:
            return False
        task.cancel()
        return True

    async def _run(self, job: Job, done: Callable[[str, Result], None]) -> None:
        try:
            async with self.slots:
                result = await self.execute(job)
        except asyncio.CancelledError:
            result = killed(job)
        finally:
            self.running.pop(job.task_run.id, None)
        done(job.execution_id, result)

    async def execute(self, job: Job) -> Result:
        host = self.host
        tr = job.task_run
        ex_secrets = host.secrets_of(job.execution_id)
        ctx = TaskRunContext(
            host=host, namespace=job.variables["flow"]["namespace"], flow_id=job.variables["flow"]["id"],
            execution_id=job.execution_id, task_run_id=tr.id, task_id=tr.task_id, attempt=job.attempt,
            variables=job.variables, secrets=ex_secrets,
            emit_log=lambda level, msg, ts: host.log(job.execution_id, tr, job.attempt, level, msg, ts),
            log_level=job.task.logLevel, workdir=job.workdir, attempts=tr.attempts)
        if self.tracing:
            labels = job.variables.get("labels") or {}
            ctx.traceparent = tracing.traceparent(labels.get(CORRELATION_LABEL) or job.execution_id, tr.id, job.attempt)
        started = time.time()
        state, outputs, error = State.SUCCESS, None, None
        try:
            if all(host.renderer.is_cheap(getattr(job.task, name)) for name in type(job.task).model_fields):
                task = render_task(job.task, host.renderer, job.variables)
            else:  # a template may take a while: never on the event loop
                task = await asyncio.to_thread(render_task, job.task, host.renderer, job.variables)
            cache = task_cache(host, job, task)
            cached = cache.load() if cache is not None else None
            if cached is not None:
                ctx.logger.info(f"taskCache: outputs of {cached['createdAt']} reused")
                return Result(tr.id, job.attempt, State(cached["state"]), cached["outputs"], None, started, time.time())
            timeout = task.timeout.total_seconds() if task.timeout else None
            try:
                result = await asyncio.wait_for(_call(task.run, ctx), timeout)
            except TimeoutError:
                ctx._cancelled = True
                raise TaskError(f"timed out after {_fmt(timeout)}") from None
            outputs = mask(_as_outputs(result), ex_secrets)
            if ctx.warned:
                state = State.WARNING
            if cache is not None:
                cache.save(state, outputs)
        except asyncio.CancelledError:
            ctx._cancelled = True
            ctx.logger.warning("killed")
            raise
        except (TaskError, RenderError) as exc:
            state, error = State.FAILED, mask(str(exc), ex_secrets)
            ctx.logger.error(error)
        except Exception as exc:
            state, error = State.FAILED, mask(f"{type(exc).__name__}: {exc}", ex_secrets)
            ctx.logger.error(error)
            ctx.logger.debug(mask("".join(traceback.format_exception(exc)), ex_secrets))
        finally:
            ctx.cleanup()
            if ctx.metrics:
                host.record_metrics(job.execution_id, tr.id, ctx.metrics)
        return Result(tr.id, job.attempt, state, outputs, error, started, time.time())


class CachedRun:
    """One task's cache entry in internal storage (``<namespace>/<flow>/taskcache/<task>/<key>.json``)."""

    def __init__(self, host: WorkerHost, uri: str, ttl: float | None) -> None:
        self.host, self.uri, self.ttl = host, uri, ttl

    def load(self) -> dict[str, Any] | None:
        import json

        try:
            if not self.host.storage.exists(self.uri):
                return None
            entry: dict[str, Any] = json.loads(self.host.storage.read_text(self.uri))
        except (OSError, ValueError):
            return None
        if self.ttl is not None and time.time() - float(entry.get("at", 0)) > self.ttl:
            return None
        return entry

    def save(self, state: State, outputs: dict[str, Any] | None) -> None:
        import json

        now = time.time()
        entry = {"state": str(state), "outputs": outputs, "at": now,
                 "createdAt": iso_of(datetime.fromtimestamp(now).astimezone())}
        try:
            self.host.storage.put(self.uri, json.dumps(entry, default=str).encode())
        except OSError:
            pass  # a cache that cannot be written only costs a later run


def task_cache(host: WorkerHost, job: Job, task: Any) -> CachedRun | None:
    """The cache entry of a task with ``taskCache: {enabled: true}``, else None: keyed as Kestra keys it,
    by the flow, the task as written, the loop value and the execution's inputs."""
    import hashlib
    import json

    from tiercel.engine.storage import SCHEME, namespace_path

    settings = getattr(task, "taskCache", None)
    if settings is None or not settings.enabled:
        return None
    flow = job.variables["flow"]
    body = job.task.model_dump(mode="json", exclude={"taskCache"})  # as written: its expressions, not their values
    key = [body, job.task_run.value, job.variables.get("inputs")]
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    uri = f"{SCHEME}{namespace_path(flow['namespace'])}/{flow['id']}/taskcache/{task.id}/{digest[:32]}.json"
    return CachedRun(host, uri, settings.ttl.total_seconds() if settings.ttl is not None else None)


def killed(job: Job) -> Result:
    """The result of an attempt cancelled by a kill."""
    now = time.time()
    return Result(job.task_run.id, job.attempt, State.KILLED, None, "killed", now, now)


async def _call(fn: Callable[..., Any], ctx: Any) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn(ctx)
    return await asyncio.to_thread(fn, ctx)


def _as_outputs(result: Any) -> dict[str, Any] | None:
    if result is None:
        return None
    if hasattr(result, "model_dump"):
        dumped: dict[str, Any] = result.model_dump(mode="json", by_alias=True)
        return dumped
    if isinstance(result, dict):
        return result
    raise TaskError(f"run() must return a dict of outputs or None, got {type(result).__name__}")


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds:g} s"
