"""Task checks: examples run, secrets stay masked, timeout and kill really stop the work."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import threading
import time
from typing import Any

from tiercel_registry._engine import registry_for, run
from tiercel_registry.checks import SECRET_NAME, SECRET_VALUE, STOP_GRACE, CheckFailed, CheckSkipped, Options, fail
from tiercel_registry.checks.common import _dump, _Example, _examples, _names, _occurrences, _static


def _runnable(cls: type, options: Options) -> tuple[list[_Example], list[str]]:
    valid, _, skipped = _examples(cls)
    runnable = [ex for ex in valid if list(_occurrences(ex.data, _names(cls)))
                and (ex.runs or options.example_inputs is not None)]
    skipped += [f"example {ex.index} ({ex.title}) is marked run=False (needs a service)"
                for ex in valid if not ex.runs and options.example_inputs is None]
    return runnable, skipped


_NEEDS_SERVICE = ("every example needs a service: give the conformance class an `example_inputs` fixture "
                  "that starts it and returns the flow inputs pointing at it")


def check_examples_run(cls: type, options: Options) -> None:
    runnable, skipped = _runnable(cls, options)
    if not runnable:
        raise CheckSkipped(_NEEDS_SERVICE + (f" ({'; '.join(skipped)})" if skipped else ""))
    problems = []
    registry = registry_for(cls)
    for ex in runnable:
        try:
            outcome = run(ex.text, registry, options.example_inputs)
        except Exception as exc:
            problems.append(f"example {ex.index} ({ex.title}) did not run: {type(exc).__name__}: {exc}")
            continue
        if outcome.state not in ("SUCCESS", "WARNING"):
            detail = "; ".join(outcome.errors()) or "no task reported an error"
            problems.append(f"example {ex.index} ({ex.title}) ended {outcome.state}: {detail}")
    fail(problems)


def _free_text(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "string" and not ({"enum", "const", "pattern", "format"} & set(schema)):
        return True
    return any(_free_text(s) for s in schema.get("anyOf", []) if isinstance(s, dict))


def _text_list(schema: dict[str, Any]) -> bool:
    choices = [schema, *[s for s in schema.get("anyOf", []) if isinstance(s, dict)]]
    return any(c.get("type") == "array" and _free_text(c.get("items", {})) for c in choices)


def check_secrets(cls: type, options: Options) -> None:
    """Put a secret in every free-text property of a runnable example; it must not leak anywhere."""
    runnable, skipped = _runnable(cls, options)
    if not runnable:
        raise CheckSkipped(_NEEDS_SERVICE)
    props = cls.model_json_schema(mode="validation").get("properties", {})
    expression = "{{ secret('" + SECRET_NAME + "') }}"
    for ex in runnable:
        injected = []
        for node in _occurrences(ex.data, _names(cls)):
            for key, value in node.items():
                schema = props.get(key, {})
                if _static(cls, key) or key == "description":
                    continue
                if isinstance(value, str) and _free_text(schema):
                    node[key] = expression
                    injected.append(key)
                elif isinstance(value, list) and value and isinstance(value[0], str) and _text_list(schema):
                    node[key] = [expression, *value[1:]]
                    injected.append(key)
        if injected:
            break
    else:
        raise CheckSkipped("no example sets a free-text property to carry a secret")
    env_key = f"TIERCEL_SECRET_{SECRET_NAME}"
    previous = os.environ.get(env_key)
    os.environ[env_key] = SECRET_VALUE
    try:
        outcome = run(_dump(ex.data), registry_for(cls), options.example_inputs)
    finally:
        if previous is None:
            os.environ.pop(env_key, None)
        else:
            os.environ[env_key] = previous
    leaks = []
    shown = [outcome.execution.get("outputs"), [(tr.get("outputs"), tr.get("error")) for tr in outcome.execution["taskRuns"]]]
    if SECRET_VALUE in json.dumps(shown, default=str):
        leaks.append("the execution's outputs or errors")
    if any(SECRET_VALUE in line for line in outcome.logs):
        leaks.append("the execution's logs")
    if any(SECRET_VALUE in line for line in outcome.process_logs):
        leaks.append("the process log (a logger other than ctx.logger)")
    if leaks:
        raise CheckFailed(f"{cls.type}: a secret given in `{', '.join(injected)}` (example {ex.index}) appears in "
                          f"{' and '.join(leaks)}; log only through ctx.logger and return outputs from run(), where "
                          f"the engine masks secrets, and never log or return a transformed secret")


class _Signals:
    def __init__(self) -> None:
        self.started = threading.Event()
        self.stopped = threading.Event()


def _probe_class(cls: type, signals: _Signals) -> type:
    """A subclass of *cls* whose run() says when it really starts and really stops."""
    original = cls.run
    if inspect.iscoroutinefunction(original):
        async def probe_run(self: Any, ctx: Any) -> Any:
            signals.started.set()
            try:
                return await original(self, ctx)
            finally:
                signals.stopped.set()
    else:
        def probe_run(self: Any, ctx: Any) -> Any:
            signals.started.set()
            try:
                return original(self, ctx)
            finally:
                signals.stopped.set()
    return type(cls.__name__, (cls,), {"run": probe_run, "__module__": cls.__module__, "__doc__": cls.__doc__})


def _long_run_flow(cls: type, options: Options, timeout: str | None) -> tuple[str, _Signals, Any]:
    from tiercel.api import FlowableTask

    if issubclass(cls, FlowableTask):
        raise CheckSkipped("a flowable task never runs on a worker: the executor times out and kills its children")
    if options.long_run is None:
        raise CheckSkipped("declare `long_run`: properties that make the task run until cancelled "
                           "(e.g. long_run = {\"duration\": \"PT1H\"}), to check timeout and kill")
    signals = _Signals()
    task = {"id": "probe", "type": cls.type, **({"timeout": timeout} if timeout else {}), **options.long_run}
    text = _dump({"id": "conformance_long_run", "namespace": "conformance", "tasks": [task]})
    return text, signals, registry_for(cls, replace=_probe_class(cls, signals))


def _stopped(cls: type, signals: _Signals, what: str) -> None:
    if not signals.started.is_set():
        raise CheckFailed(f"{cls.type}: run() never started before {what}")
    if not signals.stopped.wait(STOP_GRACE):
        raise CheckFailed(f"{cls.type}: run() kept running {STOP_GRACE:g} s after {what}: a coroutine must let "
                          f"asyncio.CancelledError through (clean up in `finally`), and blocking code in a plain "
                          f"run() must poll ctx.cancelled and return")


def _threads_left(before: set[threading.Thread]) -> list[str]:
    """Names of the non-daemon threads started since *before* that are still running after STOP_GRACE."""
    deadline = time.monotonic() + STOP_GRACE
    for thread in [t for t in threading.enumerate() if t not in before and not t.daemon]:
        thread.join(max(0.0, deadline - time.monotonic()))
    return sorted(t.name for t in threading.enumerate() if t not in before and not t.daemon and t.is_alive())


def _no_threads_left(cls: type, before: set[threading.Thread], what: str) -> None:
    left = _threads_left(before)
    if left:
        raise CheckFailed(f"{cls.type}: run() returned, but {len(left)} thread(s) it started still work "
                          f"{STOP_GRACE:g} s after {what}: stop the work itself (interrupt the query, close the "
                          f"connection), not only the coroutine; a busy thread also keeps the process from exiting")


def check_timeout(cls: type, options: Options) -> None:
    text, signals, registry = _long_run_flow(cls, options, "PT0.5S")
    before = set(threading.enumerate())
    started = time.monotonic()
    outcome = run(text, registry, timeout=30)
    error = " ".join(outcome.errors())
    if signals.stopped.is_set() and outcome.state == "SUCCESS":
        raise CheckSkipped(f"long_run {options.long_run!r} does not make run() last: it ended at once")
    if outcome.state != "FAILED" or "timed out" not in error:
        raise CheckFailed(f"{cls.type}: with `timeout: PT0.5S` the task ended {outcome.state} "
                          f"({error or 'no error'}), expected FAILED with a timeout")
    _stopped(cls, signals, "its timeout")
    if time.monotonic() - started > 20:
        raise CheckFailed(f"{cls.type}: the timeout took {time.monotonic() - started:.0f} s to cut the run")
    _no_threads_left(cls, before, "its timeout")


def check_kill(cls: type, options: Options) -> None:
    text, signals, registry = _long_run_flow(cls, options, None)
    before = set(threading.enumerate())
    outcome = run(text, registry, timeout=30, kill_when=lambda: asyncio.to_thread(signals.started.wait, 20))
    if outcome.state == "SUCCESS" and signals.stopped.is_set():
        raise CheckSkipped(f"long_run {options.long_run!r} does not make run() last: it ended at once")
    if outcome.state != "KILLED":
        raise CheckFailed(f"{cls.type}: killed while running, the execution ended {outcome.state} "
                          f"({' '.join(outcome.errors()) or 'no error'}), expected KILLED")
    _stopped(cls, signals, "the kill")
    _no_threads_left(cls, before, "the kill")
