"""The one path from any trigger to an execution, and the delivery contract of plugin triggers.

Schedules, flow triggers, webhooks and plugin triggers all start executions through
:func:`start_execution`: the trigger's ``inputs`` rendered against its variables, validated
against the flow's inputs, and a FAILED execution saying why when they do not fit (the
problem shows where users look, not only in a log). A dedupe key makes it happen once.

Plugin triggers only produce :class:`tiercel.TriggerEvent` objects; :func:`deliver` commits
the execution first and only then awaits ``event.ack``, so a crash between the two
redelivers the event and the dedupe key stops a second execution. ``event.nack`` is awaited
when the execution could not be stored.
"""

from __future__ import annotations

import inspect
import logging
import time
from typing import Any

from tiercel.api import Trigger, TriggerEvent
from tiercel.engine.context import TaskRunContext
from tiercel.engine.secrets import ExpressionFunction
from tiercel.flow.model import Flow
from tiercel.model import Execution, State

log = logging.getLogger("tiercel.triggers")


def dedupe_key(flow: Flow, trigger: Trigger, key: str | None) -> str | None:
    return None if key is None else f"{flow.namespace}/{flow.id}/{trigger.id}/{key}"


def start_execution(rt: Any, flow: Flow, trigger: Trigger, variables: dict[str, Any], key: str | None = None,
                    inputs: dict[str, Any] | None = None, labels: dict[str, str] | None = None,
                    revision: int | None = None, execution_id: str | None = None,
                    extra: dict[str, Any] | None = None) -> Execution | None:
    """Create and submit the execution a trigger asks for; None when *key* already produced one.

    *extra* variables are visible to the trigger's ``inputs`` only (a Flow trigger's upstream ``outputs``).

    Raises only when the execution cannot be stored (the database is down, say).
    """
    from tiercel.flow.inputs import resolve_inputs

    error = None
    try:
        raw = dict(trigger.inputs or {})
        if raw:
            raw = rt.renderer.render(raw, {"trigger": variables, "flow": {"id": flow.id, "namespace": flow.namespace},
                                           "vars": flow.variables or {}, **(extra or {})})
        raw.update(inputs or {})
        values = resolve_inputs(flow, raw)
    except Exception as exc:  # InputError, or an expression in `inputs` that cannot render
        values, error = dict(inputs or {}), f"trigger `{trigger.id}`: invalid inputs: {exc}"
    ex = rt.new_execution(flow, values, labels=labels,
                          trigger={"id": trigger.id, "type": type(trigger).type, "variables": variables},
                          revision=revision, dedupe_key=dedupe_key(flow, trigger, key), execution_id=execution_id)
    if error:
        ex.state, ex.error, ex.ended_at = State.FAILED, error, time.time()
        log.error("%s.%s: %s", flow.namespace, flow.id, error)
    return ex if rt.submit(ex) else None


async def deliver(rt: Any, flow: Flow, trigger: Trigger, event: TriggerEvent, revision: int | None = None) -> Execution | None:
    """Create the execution for *event* (once per dedupe key), then ack it.

    Returns the new execution, or None when the key had already produced one (the event is
    acknowledged all the same: it was delivered before).
    """
    try:
        ex = start_execution(rt, flow, trigger, event.variables, key=event.key, inputs=event.inputs,
                             labels=event.labels, revision=revision)
    except BaseException:
        await _call(event.nack)
        raise
    await _call(event.ack)
    return ex


async def _call(callback: Any) -> None:
    if callback is None:
        return
    result = callback()
    if inspect.isawaitable(result):
        await result


def trigger_context(rt: Any, flow: Flow, trigger: Trigger) -> TaskRunContext:
    """The run context of a polling or realtime trigger; its ``state`` persists across polls."""
    state = rt.stores.triggers.state(flow.namespace, flow.id, trigger.id)
    secrets: set[str] = set()

    def emit(level: str, message: str, ts: float) -> None:
        log.log(logging.ERROR if level == "ERROR" else logging.WARNING if level == "WARN" else logging.INFO,
                "%s.%s/%s: %s", flow.namespace, flow.id, trigger.id, message)

    variables: dict[str, Any] = {"flow": {"id": flow.id, "namespace": flow.namespace}, "vars": flow.variables or {},
                                 "trigger": {}}
    ctx = TaskRunContext(host=rt, namespace=flow.namespace, flow_id=flow.id, execution_id=None, task_run_id=None,
                         task_id=trigger.id, attempt=0, variables=variables, secrets=secrets, emit_log=emit,
                         log_level=trigger.logLevel, trigger_state=state)
    variables["secret"] = ExpressionFunction("secret", ctx.secret)  # a trigger's properties may read secrets
    return ctx


def prepare_trigger(rt: Any, flow: Flow, trigger: Trigger) -> tuple[TaskRunContext, Any]:
    """The run context of *trigger* and the trigger with its properties rendered: what poll()/listen() get."""
    from tiercel.engine.worker import render_task

    ctx = trigger_context(rt, flow, trigger)
    return ctx, render_task(trigger, rt.renderer, ctx.variables)


def save_trigger_state(rt: Any, flow: Flow, trigger: Trigger, state: dict[str, Any]) -> None:
    """Persist a polling trigger's small state dict (last seen id, hash…)."""
    rt.stores.triggers.save_state(flow.namespace, flow.id, trigger.id, state, type(trigger).type)
