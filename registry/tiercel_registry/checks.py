"""The conformance checks: one function per check, shared by the pytest classes and the grader.

A check raises :class:`CheckFailed` with a message for the plugin's author (what is wrong,
and what to do), or :class:`CheckSkipped` when it does not apply or lacks a fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import io
import json
import os
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tiercel_registry._engine import kind_of, registry_for, run, run_context, run_loop, runtime

#: The probe secret injected into properties; it must never show up in logs or outputs.
SECRET_NAME = "REGISTRY_PROBE"
SECRET_VALUE = "tcl-probe-s3cr3t-9Xq2ZvB7"
UNKNOWN = "notAProperty"
#: How long a cancelled or timed-out run may take to actually stop.
STOP_GRACE = 5.0


class CheckFailed(AssertionError):
    """The component breaks the contract; the message says how to fix it."""


class CheckSkipped(Exception):
    """The check does not apply, or needs a fixture the conformance class did not give."""


def pid_alive(pid: int) -> bool:
    """Whether process *pid* runs on this host (a zombie awaiting its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rfind(")") + 2:].split()[0] not in ("Z", "X")
    return True


@dataclass
class Options:
    """What a conformance class tells the checks (each is a fixture of the same name)."""

    #: Inputs for the example flows; when given, examples marked ``run=False`` (needing a service) run too.
    example_inputs: dict[str, Any] | None = None
    #: Properties that make a task run until cancelled (enables the timeout and kill checks).
    long_run: dict[str, Any] | None = None
    #: Properties to build the component with (runner, storage) or to set on the example's trigger.
    properties: dict[str, Any] = field(default_factory=dict)
    #: Makes the trigger's source produce one new event (sync or async callable).
    emit: Callable[[], Any] | None = None
    #: Whether a process id is still alive (runners on another host override it).
    alive: Callable[[int], bool] = pid_alive
    #: Size of the streamed file, and the most memory storage may use meanwhile.
    large_file_size: int = 64 << 20
    max_memory: int = 16 << 20


COMMON = ("schema", "documented", "examples_validate", "unknown_property")
CHECKS: dict[str, tuple[str, ...]] = {
    "task": (*COMMON, "expressions", "secrets", "examples_run", "timeout", "kill"),
    "trigger": (*COMMON, "expressions", "event_key", "dedupe", "commit_after_create", "realtime_stops"),
    "runner": (*COMMON, "exit_code", "env", "files", "log_streaming", "timeout", "kill"),
    "storage": (*COMMON, "roundtrip", "large_file", "escape_refused"),
}
#: What each check verifies, as shown in reports.
DESCRIPTIONS = {
    "schema": "the JSON Schema of its properties is valid",
    "documented": "a docstring on the component and a description on every property",
    "examples_validate": "at least one example flow, and every example validates",
    "unknown_property": "an unknown property is rejected with a message naming it",
    "expressions": "every property accepts an expression and renders to the literal value",
    "secrets": "a secret used in its properties never appears in logs or outputs",
    "examples_run": "its example flows run to SUCCESS",
    "timeout": "`timeout` cuts a long run, and the run stops",
    "kill": "a kill cancels a running run cleanly",
    "event_key": "events carry a deduplication key",
    "dedupe": "the same event delivered twice starts one execution",
    "commit_after_create": "the source position is committed only after the execution exists",
    "realtime_stops": "a realtime listener stops when cancelled",
    "exit_code": "exit codes are reported",
    "env": "environment variables reach the commands",
    "files": "input files reach the commands and output files come back",
    "log_streaming": "output lines stream while the command runs",
    "roundtrip": "put, open, exists, size, list and delete round-trip",
    "large_file": "a large file streams both ways in bounded memory",
    "escape_refused": "paths escaping the storage are refused",
}


def checks_for(cls: type) -> tuple[str, ...]:
    return CHECKS[kind_of(cls)]


def run_check(check: str, cls: type, options: Options | None = None) -> None:
    """Run one check on *cls*; raise CheckFailed or CheckSkipped, return when it passes."""
    if check not in checks_for(cls):
        raise CheckSkipped(f"`{check}` does not apply to a {kind_of(cls)}")
    fn = globals().get(f"check_{check}_{kind_of(cls)}") or globals()[f"check_{check}"]
    fn(cls, options or Options())


def _fail(problems: list[str]) -> None:
    if problems:
        raise CheckFailed("\n".join(problems))


# --- examples ----------------------------------------------------------------------------

def _names(cls: type) -> set[str]:
    return {cls.type, *cls.aliases}


def _occurrences(node: Any, names: set[str]) -> Iterator[dict[str, Any]]:
    """Every mapping whose ``type`` is one of *names*, anywhere in a parsed flow."""
    if isinstance(node, dict):
        if node.get("type") in names:
            yield node
        for value in node.values():
            yield from _occurrences(value, names)
    elif isinstance(node, list):
        for value in node:
            yield from _occurrences(value, names)


def _missing_plugins(exc: Exception) -> list[str]:
    """Distributions an example needs but are not installed (``unknown task type `scripts.Shell```)."""
    from tiercel.plugins import get_registry

    errors = getattr(exc, "errors", [])
    needed = []
    for error in errors:
        message = getattr(error, "message", "")
        if " type `" not in message or "unknown" not in message:
            return []
        type_name = message.split("`")[1]
        dist = f"tiercel-{type_name.split('.')[0]}"
        if dist in get_registry().plugins:
            return []
        needed.append(dist)
    return sorted(set(needed))


@dataclass
class _Example:
    index: int
    title: str
    text: str
    runs: bool
    data: Any


def _examples(cls: type, registry: Any = None) -> tuple[list[_Example], list[str], list[str]]:
    """(valid examples, problems, skipped reasons) of *cls*."""
    from tiercel.flow import FlowValidationError, load_flow

    registry = registry or registry_for(cls)
    valid, problems, skipped = [], [], []
    for i, example in enumerate(cls.examples, 1):
        name = f"example {i} ({example.title})"
        try:
            load_flow(example.flow, f"{cls.type} {name}", registry=registry)
        except FlowValidationError as exc:
            missing = _missing_plugins(exc)
            if missing:
                skipped.append(f"{name} needs {', '.join(missing)} (not installed)")
            else:
                problems.append(f"{name} does not validate:\n{exc}")
            continue
        valid.append(_Example(i, example.title, example.flow, example.run, yaml.safe_load(example.flow)))
    return valid, problems, skipped


def _using(cls: type, examples: list[_Example]) -> list[tuple[_Example, dict[str, Any]]]:
    return [(ex, node) for ex in examples for node in _occurrences(ex.data, _names(cls))]


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# --- every component ---------------------------------------------------------------------

def check_schema(cls: type, options: Options) -> None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        schema = cls.model_json_schema(mode="validation")
        json.dumps(schema)
    except Exception as exc:
        raise CheckFailed(f"{cls.type}: its JSON Schema cannot be generated ({type(exc).__name__}: {exc}); "
                          f"give every field a type pydantic can describe") from None
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise CheckFailed(f"{cls.type}: its JSON Schema is invalid: {exc.message} (at {'/'.join(map(str, exc.path))})") from None


def _undocumented(schema: dict[str, Any]) -> Iterator[str]:
    for name, prop in sorted(schema.get("properties", {}).items()):
        if not (isinstance(prop, dict) and str(prop.get("description", "")).strip()):
            yield name
    for def_name, sub in sorted(schema.get("$defs", {}).items()):
        for name in _undocumented({"properties": sub.get("properties", {})}):
            yield f"{def_name}.{name}"


def check_documented(cls: type, options: Options) -> None:
    problems = []
    if not (cls.__dict__.get("__doc__") or "").strip():
        problems.append(f"{cls.type}: the class {cls.__name__} has no docstring; its first line is the component's "
                        f"summary in `tiercel plugins list` and the reference")
    try:
        schema = cls.model_json_schema(mode="validation")
    except Exception:
        schema = {}
    for name in _undocumented(schema):
        problems.append(f"{cls.type}: property `{name}` has no description; add Field(description=\"...\")")
    _fail(problems)


def check_examples_validate(cls: type, options: Options) -> None:
    if not cls.examples:
        raise CheckFailed(f"{cls.type} has no examples: add `examples = [Example(\"title\", FLOW_YAML)]` to the class, "
                          f"a complete flow using it (`tiercel plugins info` and the reference show it; the registry runs it)")
    valid, problems, skipped = _examples(cls)
    if kind_of(cls) in ("task", "trigger"):
        for ex in valid:
            if not list(_occurrences(ex.data, _names(cls))):
                problems.append(f"example {ex.index} ({ex.title}) does not use {cls.type}")
    _fail(problems)
    if not valid:
        raise CheckSkipped("; ".join(skipped))


def check_unknown_property(cls: type, options: Options) -> None:
    from pydantic import ValidationError
    from tiercel.flow import FlowValidationError, load_flow

    hint = ("keep `extra=\"forbid\"` (the tiercel.Component default), so that a misspelled property is an "
            "error rather than silently ignored")
    using = _using(cls, _examples(cls)[0]) if kind_of(cls) in ("task", "trigger") else []
    if using:
        ex, node = using[0]
        node[UNKNOWN] = 1
        try:
            load_flow(_dump(ex.data), registry=registry_for(cls))
        except FlowValidationError as exc:
            message = str(exc)
        else:
            raise CheckFailed(f"{cls.type}: a flow setting the unknown property `{UNKNOWN}` validated; {hint}")
        finally:
            del node[UNKNOWN]
    else:
        try:
            cls.model_validate({**options.properties, UNKNOWN: 1})
        except ValidationError as exc:
            message = str(exc)
        else:
            raise CheckFailed(f"{cls.type}: the unknown property `{UNKNOWN}` was accepted; {hint}")
    if UNKNOWN not in message:
        raise CheckFailed(f"{cls.type}: the unknown property `{UNKNOWN}` was rejected, but the message does not name it:\n"
                          f"{message}")


def _static(cls: type, key: str) -> bool:
    if key in ("id", "type") or key in cls.static_fields:
        return True
    for name, info in cls.model_fields.items():
        aliases = {info.alias} | set(getattr(info.validation_alias, "choices", None) or [info.validation_alias])
        if key in aliases:
            return name in cls.static_fields
    return False


def check_expressions(cls: type, options: Options) -> None:
    """Each literal property of each example, replaced by an expression, renders back to the same value."""
    from tiercel.api import contains_expression
    from tiercel.engine.worker import render_task
    from tiercel.expr import Renderer
    from tiercel.flow import FlowValidationError, load_flow

    registry = registry_for(cls)
    renderer = Renderer()
    problems: list[str] = []
    probed = 0
    for ex, node in _using(cls, _examples(cls, registry)[0]):
        if "id" not in node:
            continue
        keep = dict(node)
        # Properties that are expressions already need the run's variables: leave them out.
        for k, v in keep.items():
            if not _static(cls, k) and contains_expression(v):
                del node[k]
        keys = [k for k in node if not _static(cls, k)]
        try:
            original = _instance(load_flow(_dump(ex.data), registry=registry), node["id"]) if keys else None
        except FlowValidationError:
            original = None  # a required property was an expression: nothing literal to compare with
        if original is None:
            node.clear()
            node.update(keep)
            continue
        literal = {k: node[k] for k in keys}
        for k in keys:
            node[k] = "{{ probe[%s] }}" % json.dumps(k)
        try:
            try:
                probe_flow = load_flow(_dump(ex.data), registry=registry)
            except FlowValidationError as exc:
                problems.append(f"example {ex.index}: `{node['id']}` refuses expressions at deploy time:\n{exc}\n"
                                f"a property must accept `{{{{ … }}}}` where a typed value is expected")
                continue
            try:
                rendered = render_task(_instance(probe_flow, node["id"]), renderer, {"probe": literal})
            except Exception as exc:
                problems.append(f"example {ex.index}: rendering `{node['id']}` failed: {exc}")
                continue
            probed += 1
            want, got = original.model_dump(), rendered.model_dump()
            for name in sorted(want):
                if want[name] != got.get(name):
                    problems.append(f"example {ex.index}: property `{name}` of `{node['id']}` given as an expression "
                                    f"rendered to {got.get(name)!r}, expected {want[name]!r}")
        finally:
            node.clear()
            node.update(keep)
    _fail(problems)
    if not probed:
        raise CheckSkipped("no example sets a literal (non-static) property to probe")


def _instance(flow: Any, component_id: str) -> Any:
    for trigger in flow.triggers or []:
        if trigger.id == component_id:
            return trigger
    return flow.task(component_id)


# --- tasks -------------------------------------------------------------------------------

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
    _fail(problems)


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
    expression = "{{ secret('%s') }}" % SECRET_NAME
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


def check_timeout_task(cls: type, options: Options) -> None:
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


def check_kill_task(cls: type, options: Options) -> None:
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


# --- triggers ----------------------------------------------------------------------------

async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _trigger_setup(cls: type, options: Options, wanted: type | tuple[type, ...]) -> tuple[Any, Any]:
    """(flow, trigger instance) from the first example using *cls*, with ``properties`` applied."""
    from tiercel.flow import load_flow

    if not issubclass(cls, wanted):
        from tiercel.api import PollingTrigger, RealtimeTrigger

        if not issubclass(cls, (PollingTrigger, RealtimeTrigger)):
            raise CheckSkipped("driven by the kernel (neither a PollingTrigger nor a RealtimeTrigger)")
        raise CheckSkipped(f"not a {wanted.__name__}")
    using = [(ex, node) for ex, node in _using(cls, _examples(cls)[0]) if "id" in node]
    if not using:
        raise CheckFailed(f"{cls.type}: no valid example declares this trigger (see examples_validate)")
    ex, node = using[0]
    node.update(options.properties)
    flow = load_flow(_dump(ex.data), registry=registry_for(cls))
    return flow, _instance(flow, node["id"])


class _Recorded:
    """An event's ack and nack, wrapped to count calls."""

    def __init__(self, event: Any) -> None:
        self.acks = self.nacks = 0
        ack, nack = event.ack, event.nack

        async def on_ack() -> None:
            self.acks += 1
            await _maybe(ack() if ack else None)

        async def on_nack() -> None:
            self.nacks += 1
            await _maybe(nack() if nack else None)

        event.ack, event.nack = on_ack, on_nack


async def _next_event(trigger: Any, ctx: Any, emit: Callable[[], Any] | None, attempts: int = 40) -> Any:
    """Poll until an event comes (after emitting one when the first poll finds nothing)."""
    for attempt in range(attempts):
        event = await _maybe(trigger.poll(ctx))
        if event is not None:
            return event
        if attempt == 0 and emit is not None:
            await _maybe(emit())
        elif attempt > 0:
            await asyncio.sleep(0.05)  # the source may need a moment to hand the event out
    return None


def _with_trigger(cls: type, options: Options, body: Callable[..., Any],
                  wanted: type | tuple[type, ...] | None = None) -> None:
    from tiercel.api import PollingTrigger
    from tiercel.engine.delivery import trigger_context
    from tiercel.engine.worker import render_task

    flow, trigger = _trigger_setup(cls, options, wanted or PollingTrigger)  # type: ignore[arg-type]
    with runtime(registry_for(cls)) as rt:
        ctx = trigger_context(rt, flow, trigger)
        trigger = render_task(trigger, rt.renderer, ctx.variables)
        run_loop(asyncio.wait_for(body(rt, flow, trigger, ctx), 60))


class _Source:
    """A trigger's events, polled or listened to, handed to the checks the same way."""

    def __init__(self, cls: type, trigger: Any, ctx: Any, options: Options) -> None:
        from tiercel.api import RealtimeTrigger

        self.cls, self.trigger, self.ctx, self.options = cls, trigger, ctx, options
        self.realtime = isinstance(trigger, RealtimeTrigger)
        self.verb = "listen()" if self.realtime else "poll()"
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> _Source:
        if self.realtime:
            self.task = asyncio.create_task(self._consume())
            for _ in range(20):  # let the listener subscribe
                await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait([self.task], timeout=STOP_GRACE)

    async def _consume(self) -> None:
        async for event in self.trigger.listen(self.ctx):
            await self.queue.put(event)

    async def _get(self, timeout: float) -> Any:
        if self.task is not None and self.task.done() and self.queue.empty():
            error = self.task.exception() if not self.task.cancelled() else None
            raise CheckFailed(f"{self.cls.type}: listen() ended" + (f": {type(error).__name__}: {error}" if error else ""))
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    async def first(self) -> Any:
        """The first event, after making the source produce one (``emit``) when it has none."""
        if not self.realtime:
            event = await _next_event(self.trigger, self.ctx, self.options.emit)
        else:
            event, emits = await self._get(0.2), 0
            while event is None and self.options.emit is not None and emits < 10:
                await _maybe(self.options.emit())
                emits += 1
                event = await self._get(1)
        if event is None:
            if self.options.emit is None:
                raise CheckSkipped(f"{self.verb} gave no event: give the conformance class an `emit` fixture that "
                                   f"makes the source produce one")
            raise CheckFailed(f"{self.cls.type}: {self.verb} gave no event after emit()")
        return event

    async def again(self, key: str | None) -> Any:
        """After a failed delivery: the next event (polling), or the event *key* once more (realtime).

        A failed delivery ends the runtime's ``listen()`` loop, which starts listening anew:
        the event must come back, from the nack or from the uncommitted source position.
        """
        if not self.realtime:
            return await _next_event(self.trigger, self.ctx, None)
        await self.__aexit__()
        leftover = [self.queue.get_nowait() for _ in range(self.queue.qsize())]
        self.queue = asyncio.Queue()
        for event in leftover:
            self.queue.put_nowait(event)
        await self.__aenter__()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while (left := deadline - loop.time()) > 0:
            event = await self._get(left)
            if event is None or event.key == key:
                return event
        return None


def _key_problem(cls: type, event: Any) -> str | None:
    if not (isinstance(event.key, str) and event.key):
        return (f"{cls.type}: an event has no deduplication key (got {event.key!r}); set TriggerEvent(key=...) to "
                f"something unique to the event at its source (message id, offset, file name and mtime)")
    return None


def _with_source(cls: type, options: Options, body: Callable[..., Any]) -> None:
    from tiercel.api import PollingTrigger, RealtimeTrigger

    async def wrapped(rt: Any, flow: Any, trigger: Any, ctx: Any) -> None:
        async with _Source(cls, trigger, ctx, options) as source:
            await body(rt, flow, trigger, source)

    _with_trigger(cls, options, wrapped, (PollingTrigger, RealtimeTrigger))


def check_event_key(cls: type, options: Options) -> None:
    async def body(rt: Any, flow: Any, trigger: Any, source: _Source) -> None:
        _fail([p for p in [_key_problem(cls, await source.first())] if p])

    _with_source(cls, options, body)


def check_dedupe(cls: type, options: Options) -> None:
    from tiercel.engine.delivery import deliver

    async def body(rt: Any, flow: Any, trigger: Any, source: _Source) -> None:
        event = await source.first()
        if _key_problem(cls, event):
            raise CheckSkipped("its events have no deduplication key (see event_key)")
        first = await deliver(rt, flow, trigger, event)
        second = await deliver(rt, flow, trigger, event)
        count = rt.db.one("SELECT count(*) FROM executions WHERE flow_id = ?", (flow.id,))[0]
        if first is None or second is not None or count != 1:
            raise CheckFailed(f"{cls.type}: the same event delivered twice made {count} executions, expected 1")

    _with_source(cls, options, body)


def check_commit_after_create(cls: type, options: Options) -> None:
    from tiercel.engine.delivery import deliver

    async def body(rt: Any, flow: Any, trigger: Any, source: _Source) -> None:
        event = await source.first()
        key = event.key
        calls = _Recorded(event)
        submit = rt.submit

        def failing_submit(ex: Any) -> bool:
            raise RuntimeError("injected failure: the execution could not be stored")

        rt.submit = failing_submit
        try:
            with contextlib.suppress(RuntimeError):
                await deliver(rt, flow, trigger, event)
        finally:
            rt.submit = submit
        if calls.acks:
            raise CheckFailed(f"{cls.type}: ack was called although the execution was not created")
        again = await source.again(key)
        if again is None or again.key != key:
            found = "no event" if again is None else f"event `{again.key}`"
            raise CheckFailed(f"{cls.type}: after a failed delivery (nack), {source.verb} gave {found} instead of "
                              f"event `{key}` again: the event was lost. Commit the source position in event.ack "
                              f"(called once the execution exists), never before; make event.nack hand the event "
                              f"out again")
        calls = _Recorded(again)
        created = await deliver(rt, flow, trigger, again)
        count = rt.db.one("SELECT count(*) FROM executions WHERE flow_id = ?", (flow.id,))[0]
        if created is None or count != 1 or calls.acks != 1:
            raise CheckFailed(f"{cls.type}: the redelivered event made {count} executions and {calls.acks} acks, "
                              f"expected 1 and 1")

    _with_source(cls, options, body)


def check_realtime_stops(cls: type, options: Options) -> None:
    from tiercel.api import RealtimeTrigger

    async def body(rt: Any, flow: Any, trigger: Any, ctx: Any) -> None:
        source = _Source(cls, trigger, ctx, options)
        await source.__aenter__()
        if options.emit is not None:
            try:
                await source.first()
            except BaseException:
                await source.__aexit__()
                raise
        task = source.task
        await source.__aexit__()
        if not task.done():
            raise CheckFailed(f"{cls.type}: listen() did not stop within {STOP_GRACE:g} s of being cancelled; let "
                              f"asyncio.CancelledError through and close the connection in `finally`")
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            raise CheckFailed(f"{cls.type}: listen() failed: {type(error).__name__}: {error}")

    _with_trigger(cls, options, body, RealtimeTrigger)


# --- runners -----------------------------------------------------------------------------

def _runner(cls: type, options: Options) -> Any:
    from pydantic import ValidationError

    try:
        return cls.model_validate(options.properties)
    except ValidationError as exc:
        raise CheckSkipped(f"cannot build the runner from `properties` {options.properties!r}: give the conformance "
                           f"class a `properties` fixture ({exc.error_count()} errors)") from None


def _run_job(cls: type, options: Options, body: Callable[..., Any]) -> None:
    runner = _runner(cls, options)
    with runtime(registry_for(cls)) as rt:
        ctx = run_context(rt)
        try:
            run_loop(asyncio.wait_for(body(runner, ctx), 120))
        except TimeoutError:
            raise CheckFailed(f"{cls.type}: the job did not end within 120 s") from None
        finally:
            ctx.cleanup()


def _job(commands: list[str], **kw: Any) -> Any:
    from tiercel.api import ScriptJob

    return ScriptJob(commands=[["sh", "-c", c] for c in commands], **kw)


def check_exit_code(cls: type, options: Options) -> None:
    async def body(runner: Any, ctx: Any) -> None:
        codes = [(await runner.run(ctx, _job([c]))).exit_code for c in ("exit 0", "exit 3")]
        if codes != [0, 3]:
            raise CheckFailed(f"{cls.type}: commands exiting 0 and 3 reported exit codes {codes}")

    _run_job(cls, options, body)


def check_env(cls: type, options: Options) -> None:
    lines: list[str] = []

    async def body(runner: Any, ctx: Any) -> None:
        await runner.run(ctx, _job(['printf "%s\\n" "$TIERCEL_PROBE"'], env={"TIERCEL_PROBE": "a value, with spaces"},
                                   on_stdout=lines.append))
        if "a value, with spaces" not in lines:
            raise CheckFailed(f"{cls.type}: env TIERCEL_PROBE did not reach the command (it printed {lines!r})")

    _run_job(cls, options, body)


def check_files(cls: type, options: Options) -> None:
    binary = bytes(range(256)) * 4

    async def body(runner: Any, ctx: Any) -> None:
        job = _job(["cat in.txt > out.txt && mkdir -p res && cp sub/data.bin res/copy.bin"],
                   input_files={"in.txt": b"hello\n", "sub/data.bin": binary}, output_files=["out.txt", "res/*.bin"])
        result = await runner.run(ctx, job)
        if result.exit_code != 0:
            raise CheckFailed(f"{cls.type}: input files did not reach the command (exit {result.exit_code}: "
                              f"{result.stderr_tail.strip()}); write job.input_files into the working directory")
        got = {name: Path(path).read_bytes() for name, path in result.output_files.items()}
        want = {"out.txt": b"hello\n", "res/copy.bin": binary}
        missing = sorted(name for name in want if got.get(name) != want[name])
        if missing:
            raise CheckFailed(f"{cls.type}: output files {missing} did not come back intact (got {sorted(got)}); "
                              f"return the files matching job.output_files, keyed by relative path")

    _run_job(cls, options, body)


class _Lines:
    """A line callback (safe from any thread) whose lines can be awaited."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.seen: dict[str, asyncio.Event] = {}

    def _event(self, line: str) -> asyncio.Event:
        return self.seen.setdefault(line, asyncio.Event())

    def __call__(self, line: str) -> None:
        self.loop.call_soon_threadsafe(lambda: self._event(line.strip()).set())

    async def wait(self, line: str, timeout: float = 10) -> bool:
        try:
            await asyncio.wait_for(self._event(line).wait(), timeout)
            return True
        except TimeoutError:
            return False


def check_log_streaming(cls: type, options: Options) -> None:
    async def body(runner: Any, ctx: Any) -> None:
        loop = asyncio.get_running_loop()
        out, err = _Lines(loop), _Lines(loop)
        job = _job(["echo first; echo oops >&2; sleep 300; echo second"], on_stdout=out, on_stderr=err)
        task = asyncio.create_task(runner.run(ctx, job))
        try:
            if not await out.wait("first"):
                raise CheckFailed(f"{cls.type}: a line printed on stdout did not reach job.on_stdout while the command "
                                  f"ran; stream output line by line as it comes, not at the end")
            if not await err.wait("oops"):
                raise CheckFailed(f"{cls.type}: a line printed on stderr did not reach job.on_stderr while the command ran")
        finally:
            task.cancel()
            await asyncio.wait([task], timeout=STOP_GRACE + 5)

    _run_job(cls, options, body)


_ORPHAN = "sleep 300 & echo $!; wait"


async def _child_gone(cls: type, options: Options, pid: int, what: str) -> None:
    for _ in range(100):
        if not options.alive(pid):
            return
        await asyncio.sleep(0.05)
    raise CheckFailed(f"{cls.type}: a background child (pid {pid}) outlived {what}: kill the commands' whole process "
                      f"group (start_new_session=True, then os.killpg)")


def check_timeout_runner(cls: type, options: Options) -> None:
    async def body(runner: Any, ctx: Any) -> None:
        pids: list[int] = []
        job = _job([_ORPHAN], timeout=0.5, on_stdout=lambda line: pids.append(int(line)) if line.strip().isdigit() else None)
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(runner.run(ctx, job), 20)
        except TimeoutError as exc:
            if time.monotonic() - started >= 19:
                raise CheckFailed(f"{cls.type}: job.timeout=0.5 s did not stop a 300 s command within 20 s") from exc
        except Exception:
            pass  # a timeout reported as an error (TaskError) is right
        else:
            if result.exit_code == 0:
                raise CheckFailed(f"{cls.type}: a command cut by job.timeout reported exit code 0; raise a TaskError "
                                  f"(or report a non-zero exit code)")
        for pid in pids:
            await _child_gone(cls, options, pid, "the timeout")

    _run_job(cls, options, body)


def check_kill_runner(cls: type, options: Options) -> None:
    async def body(runner: Any, ctx: Any) -> None:
        loop = asyncio.get_running_loop()
        pids: list[int] = []
        got_pid = asyncio.Event()

        def on_stdout(line: str) -> None:
            if line.strip().isdigit():
                pids.append(int(line))
                loop.call_soon_threadsafe(got_pid.set)

        task = asyncio.create_task(runner.run(ctx, _job([_ORPHAN], on_stdout=on_stdout)))
        with contextlib.suppress(TimeoutError):  # without streamed output, kill blind (log_streaming says why)
            await asyncio.wait_for(got_pid.wait(), 5)
        if task.done():
            raise CheckFailed(f"{cls.type}: a 300 s command ended at once ({task.result() if not task.exception() else task.exception()!r})")
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=STOP_GRACE + 5)
        if not done:
            raise CheckFailed(f"{cls.type}: run() did not return within {STOP_GRACE + 5:g} s of being cancelled")
        for pid in pids:
            await _child_gone(cls, options, pid, "the kill")

    _run_job(cls, options, body)


# --- storage -----------------------------------------------------------------------------

def _storage(cls: type, options: Options) -> Any:
    from pydantic import ValidationError

    try:
        return cls.model_validate(options.properties)
    except ValidationError as exc:
        raise CheckSkipped(f"cannot build the storage from `properties` {options.properties!r}: give the conformance "
                           f"class a `properties` fixture (e.g. a temporary basePath; {exc.error_count()} errors)") from None


def _read(storage: Any, path: str) -> bytes:
    with storage.open(path) as fh:
        return fh.read()


def check_roundtrip(cls: type, options: Options) -> None:
    s = _storage(cls, options)
    root = "conformance/roundtrip"
    for old in s.list(root):
        s.delete(old)
    problems: list[str] = []

    def expect(what: str, got: Any, want: Any) -> None:
        if got != want:
            problems.append(f"{cls.type}: {what} gave {got!r}, expected {want!r}")

    expect(f"put('{root}/a.txt', 5 bytes)", s.put(f"{root}/a.txt", io.BytesIO(b"hello")), 5)
    expect("open() then read()", _read(s, f"{root}/a.txt"), b"hello")
    expect("exists()", s.exists(f"{root}/a.txt"), True)
    expect("size()", s.size(f"{root}/a.txt"), 5)
    s.put(f"{root}/a.txt", io.BytesIO(b"bye"))
    expect("read() after overwriting", _read(s, f"{root}/a.txt"), b"bye")
    s.put(f"{root}/sub/b.bin", io.BytesIO(b"\x00\x01"))
    expect(f"list('{root}')", s.list(root), [f"{root}/a.txt", f"{root}/sub/b.bin"])
    expect(f"list('{root}/sub')", s.list(f"{root}/sub"), [f"{root}/sub/b.bin"])
    expect("delete() of an existing file", s.delete(f"{root}/a.txt"), True)
    expect("exists() after delete()", s.exists(f"{root}/a.txt"), False)
    expect("delete() of a missing file", s.delete(f"{root}/a.txt"), False)
    expect("list() after delete()", s.list(root), [f"{root}/sub/b.bin"])
    try:
        _read(s, f"{root}/missing.txt")
        problems.append(f"{cls.type}: open() of a missing file did not raise FileNotFoundError")
    except FileNotFoundError:
        pass
    s.delete(f"{root}/sub/b.bin")
    _fail(problems)


class _Generated(io.RawIOBase):
    """*size* deterministic bytes produced on demand: a file that never sits in memory."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.counter = 0
        self.digest = hashlib.sha256()
        self.block = hashlib.sha256(b"tiercel").digest() * 2048  # 64 KiB

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left, len(self.block))
        if n <= 0:
            return 0
        self.counter += 1
        chunk = self.counter.to_bytes(8, "big") + self.block[8:n] if n > 8 else self.block[:n]
        buffer[:n] = chunk
        self.digest.update(chunk)
        self.left -= n
        return n


def check_large_file(cls: type, options: Options) -> None:
    s = _storage(cls, options)
    path, size = "conformance/large/file.bin", options.large_file_size
    source = _Generated(size)
    tracemalloc.start()
    try:
        written = s.put(path, io.BufferedReader(source, 1 << 16))
        put_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        digest, read = hashlib.sha256(), 0
        with s.open(path) as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                read += len(chunk)
        get_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        with contextlib.suppress(Exception):
            s.delete(path)
    mib = 1 << 20
    problems = []
    if written != size:
        problems.append(f"{cls.type}: put() of a {size // mib} MiB stream returned {written}")
    if read != size or digest.digest() != source.digest.digest():
        problems.append(f"{cls.type}: the {size // mib} MiB file read back differs ({read} bytes)")
    for what, peak in (("put()", put_peak), ("reading it", get_peak)):
        if peak > options.max_memory:
            problems.append(f"{cls.type}: {what} of a {size // mib} MiB file used {peak / mib:.0f} MiB of memory "
                            f"(limit {options.max_memory // mib} MiB); copy in chunks instead of reading it whole")
    _fail(problems)


#: Paths a storage must refuse. Harmless targets: a broken storage may really write there.
ESCAPES = ("../conformance-escape.txt", "a/../../conformance-escape.txt", "/tmp/conformance-escape.txt")


def check_escape_refused(cls: type, options: Options) -> None:
    from tiercel.api import StorageError

    s = _storage(cls, options)
    problems = []
    for path in ESCAPES:
        for op, call in (("put", lambda p: s.put(p, io.BytesIO(b"x"))), ("open", s.open), ("exists", s.exists),
                         ("delete", s.delete)):
            try:
                call(path)
            except StorageError:
                continue
            except Exception as exc:
                problems.append(f"{cls.type}: {op}({path!r}) raised {type(exc).__name__}, expected tiercel.StorageError")
                continue
            problems.append(f"{cls.type}: {op}({path!r}) was accepted; refuse absolute paths and `..` with "
                            f"tiercel.StorageError")
    with contextlib.suppress(OSError):
        os.remove(ESCAPES[-1])
    _fail(problems)
