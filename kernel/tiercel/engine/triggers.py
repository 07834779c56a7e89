"""The runtime of plugin triggers: a polling loop per PollingTrigger, a listener per RealtimeTrigger.

One supervised asyncio task runs for every deployed, enabled plugin trigger; it starts when
the flow is deployed and stops when the flow is deleted or updated (a new revision starts a
new task) or the trigger is disabled. Every event goes through
:func:`tiercel.engine.delivery.deliver`: the execution is created durably (deduplicated on
the event key) before the event is acknowledged. A failing trigger logs one clear error
(repeated at most once a minute) and retries with exponential backoff, alone: the other
triggers never notice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from tiercel.api import PollingTrigger, RealtimeTrigger
from tiercel.engine.delivery import deliver, prepare_trigger, save_trigger_state
from tiercel.engine.scheduler import Deployed, FlowIndex, trigger_disabled

log = logging.getLogger("tiercel.triggers")

#: Backoff after consecutive failures: 1 s, 2 s, 4 s… up to this many seconds.
MAX_BACKOFF = 300.0
#: The same error is logged again at most this often (seconds).
LOG_EVERY = 60.0


@dataclass
class Health:
    """What the API shows about a running plugin trigger."""

    started_at: float = field(default_factory=time.time)
    last_poll_at: float | None = None
    last_event_at: float | None = None
    executions: int = 0
    failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    _logged: tuple[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"running": True, "startedAt": self.started_at, "lastPollAt": self.last_poll_at,
                "lastEventAt": self.last_event_at, "executions": self.executions,
                "consecutiveFailures": self.failures, "lastError": self.last_error, "lastErrorAt": self.last_error_at}


def backoff(failures: int) -> float:
    return min(MAX_BACKOFF, 2.0 ** max(0, failures - 1))


class TriggerRunner:
    """Keeps one task per deployed plugin trigger in step with the flows table."""

    def __init__(self, rt: Any, index: FlowIndex | None = None, sync_every: float = 1.0) -> None:
        self.rt = rt
        self.index = index or FlowIndex(rt)
        self.sync_every = sync_every
        self.tasks: dict[tuple[str, str, str], tuple[str, asyncio.Task[None]]] = {}
        self.health: dict[tuple[str, str, str], Health] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self.sync()
                except Exception:
                    log.exception("trigger sync failed; retrying")
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.sync_every)
                except TimeoutError:
                    pass
        finally:
            await self.stop_all()

    def sync(self) -> None:
        """Start tasks for new or changed triggers, stop those of deleted, changed or disabled ones."""
        self.index.refresh()
        disabled = self.index.store.disabled_keys()
        wanted: dict[tuple[str, str, str], tuple[Deployed, Any]] = {}
        for d in self.index.all():
            for trigger in d.flow.triggers:
                if not isinstance(trigger, (PollingTrigger, RealtimeTrigger)):
                    continue
                key = (d.namespace, d.id, trigger.id)
                if not trigger_disabled(d, trigger, {"disabled": key in disabled}):
                    wanted[key] = (d, trigger)
        for key, (digest, task) in list(self.tasks.items()):
            if key not in wanted or wanted[key][0].hash != digest or task.done():
                task.cancel()
                del self.tasks[key]
                if key not in wanted:
                    self.health.pop(key, None)
        for key, (d, trigger) in wanted.items():
            if key not in self.tasks:
                self.health[key] = Health()
                loop = self._poll if isinstance(trigger, PollingTrigger) else self._listen
                self.tasks[key] = (d.hash, asyncio.get_running_loop().create_task(self._supervise(d, trigger, loop)))

    async def stop_all(self) -> None:
        tasks = [task for _, task in self.tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()

    # --- supervision --------------------------------------------------------------------
    async def _supervise(self, d: Deployed, trigger: Any, body: Any) -> None:
        key = (d.namespace, d.id, trigger.id)
        health = self.health.setdefault(key, Health())
        while True:
            try:
                await body(d, trigger, health)
                health.failures = 0  # a listener that ended normally is simply restarted
                await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                health.failures += 1
                delay = backoff(health.failures)
                self._report(key, health, exc, delay)
                self._notify_error(d, trigger, health, delay)
                await asyncio.sleep(delay)

    def _report(self, key: tuple[str, str, str], health: Health, exc: BaseException, delay: float) -> None:
        message = f"{type(exc).__name__}: {exc}" if not str(exc).startswith(type(exc).__name__) else str(exc)
        health.last_error, health.last_error_at = message, time.time()
        last = health._logged
        if last is None or last[0] != message or time.time() - last[1] >= LOG_EVERY:
            log.error("trigger %s.%s/%s failed (%d in a row), retrying in %.0f s: %s", *key, health.failures, delay,
                      message)
            health._logged = (message, time.time())

    def _notify_error(self, d: Deployed, trigger: Any, health: Health, delay: float) -> None:
        registry = self.rt.registry
        if registry.implements("on_trigger_error"):
            try:
                registry.hook.on_trigger_error(namespace=d.namespace, flow_id=d.id, trigger_id=trigger.id,
                                               trigger_type=type(trigger).type, error=health.last_error or "",
                                               failures=health.failures, retry_in=delay)
            except Exception:
                log.exception("a plugin's on_trigger_error failed")

    def _context(self, d: Deployed, trigger: Any) -> tuple[Any, Any]:
        """The run context, and the trigger with its properties rendered (the component rule)."""
        return prepare_trigger(self.rt, d.flow, trigger)

    async def _deliver(self, d: Deployed, trigger: Any, event: Any, health: Health) -> None:
        ex = await deliver(self.rt, d.flow, trigger, event, revision=d.revision)
        health.last_event_at = time.time()
        if ex is not None:
            health.executions += 1
        registry = self.rt.registry
        if registry.implements("on_trigger_event"):
            count = (event.variables or {}).get("count") if isinstance(event.variables, dict) else None
            try:
                registry.hook.on_trigger_event(namespace=d.namespace, flow_id=d.id, trigger_id=trigger.id,
                                               trigger_type=type(trigger).type, execution_id=ex.id if ex else None,
                                               count=count if isinstance(count, int) and count > 0 else 1)
            except Exception:
                log.exception("a plugin's on_trigger_event failed")

    async def _poll(self, d: Deployed, trigger: PollingTrigger, health: Health) -> None:
        while True:
            ctx, rendered = self._context(d, trigger)
            before = dict(ctx.state)
            event = await rendered.poll(ctx)
            health.last_poll_at = time.time()
            if ctx.state != before:  # durable before the execution: a replay after a crash reads the same batch
                save_trigger_state(self.rt, d.flow, trigger, ctx.state)
                before = dict(ctx.state)
            if event is not None:
                await self._deliver(d, trigger, event, health)
            if ctx.state != before:
                save_trigger_state(self.rt, d.flow, trigger, ctx.state)
            health.failures = 0
            await asyncio.sleep(max(0.01, rendered.interval.total_seconds()))

    async def _listen(self, d: Deployed, trigger: RealtimeTrigger, health: Health) -> None:
        ctx, rendered = self._context(d, trigger)
        stream = rendered.listen(ctx)
        try:
            async for event in stream:
                await self._deliver(d, trigger, event, health)
                health.failures = 0
                if ctx.state:
                    save_trigger_state(self.rt, d.flow, trigger, ctx.state)
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
