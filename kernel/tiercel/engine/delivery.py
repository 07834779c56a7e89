"""The trigger delivery contract: an event becomes an execution durably, then it is acknowledged.

Plugin triggers only produce :class:`tiercel.TriggerEvent` objects; this module turns one
into an execution. The execution row (with a unique dedupe key derived from the event) is
committed first; only then is ``event.ack`` awaited, so a crash between the two redelivers
the event and the dedupe key stops a second execution. ``event.nack`` is awaited when the
execution could not be created.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from typing import Any

from tiercel.api import TriggerEvent
from tiercel.engine.context import TaskRunContext
from tiercel.engine.model import Execution

log = logging.getLogger("tiercel.triggers")


def dedupe_key(flow: Any, trigger: Any, key: str | None) -> str | None:
    return None if key is None else f"{flow.namespace}/{flow.id}/{trigger.id}/{key}"


async def deliver(rt: Any, flow: Any, trigger: Any, event: TriggerEvent, revision: int | None = None) -> Execution | None:
    """Create the execution for *event* (once per dedupe key), then ack it.

    Returns the new execution, or None when the key had already produced one (the event is
    acknowledged all the same: it was delivered before).
    """
    from tiercel.flow.inputs import resolve_inputs

    try:
        raw = dict(trigger.inputs or {})
        if raw:
            raw = rt.renderer.render(raw, {"trigger": event.variables, "flow": {"id": flow.id, "namespace": flow.namespace}})
        raw.update(event.inputs or {})
        ex = rt.new_execution(flow, resolve_inputs(flow, raw), labels=event.labels,
                              trigger={"id": trigger.id, "type": type(trigger).type, "variables": event.variables},
                              revision=revision, dedupe_key=dedupe_key(flow, trigger, event.key))
        created = rt.submit(ex)
    except BaseException:
        await _call(event.nack)
        raise
    await _call(event.ack)
    return ex if created else None


async def _call(callback: Any) -> None:
    if callback is None:
        return
    result = callback()
    if inspect.isawaitable(result):
        await result


def trigger_context(rt: Any, flow: Any, trigger: Any) -> TaskRunContext:
    """The run context of a polling or realtime trigger; its ``state`` persists across polls."""
    row = rt.db.one("SELECT state FROM triggers WHERE namespace = ? AND flow_id = ? AND trigger_id = ?",
                    (flow.namespace, flow.id, trigger.id))
    state = json.loads(row[0]) if row and row[0] else {}
    secrets: set[str] = set()

    def emit(level: str, message: str, ts: float) -> None:
        log.log(logging.ERROR if level == "ERROR" else logging.WARNING if level == "WARN" else logging.INFO,
                "%s.%s/%s: %s", flow.namespace, flow.id, trigger.id, message)

    variables = {"flow": {"id": flow.id, "namespace": flow.namespace}, "vars": getattr(flow, "variables", None) or {},
                 "trigger": {}, "secret": lambda name: ctx.secret(name)}
    ctx = TaskRunContext(runtime=rt, namespace=flow.namespace, flow_id=flow.id, execution_id=None, task_run_id=None,
                         task_id=trigger.id, attempt=0, variables=variables, secrets=secrets, emit_log=emit,
                         log_level=getattr(trigger, "logLevel", None), trigger_state=state)
    return ctx


def prepare_trigger(rt: Any, flow: Any, trigger: Any) -> tuple[TaskRunContext, Any]:
    """The run context of *trigger* and the trigger with its properties rendered: what poll()/listen() get."""
    from tiercel.engine.worker import render_task

    ctx = trigger_context(rt, flow, trigger)
    return ctx, render_task(trigger, rt.renderer, ctx.variables)


def save_trigger_state(rt: Any, flow: Any, trigger: Any, state: dict[str, Any]) -> None:
    """Persist a polling trigger's small state dict (last seen id, hash…)."""
    rt.db.execute("INSERT INTO triggers (namespace, flow_id, trigger_id, type, state, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (namespace, flow_id, trigger_id) DO UPDATE SET state = excluded.state, "
                  "updated_at = excluded.updated_at",
                  (flow.namespace, flow.id, trigger.id, type(trigger).type, json.dumps(state), time.time()))
