"""Trigger checks: event keys, dedupe, commit only after the execution exists, realtime stop."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable
from typing import Any

from tiercel_registry._engine import registry_for, run_loop
from tiercel_registry.checks import STOP_GRACE, CheckFailed, CheckSkipped, Options, fail
from tiercel_registry.checks.common import _dump, _examples, _using


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _trigger_setup(cls: type, options: Options, wanted: type | tuple[type, ...]) -> tuple[str, str]:
    """(flow YAML, trigger id) from the first example using *cls*, with ``properties`` applied."""
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
    return _dump(ex.data), node["id"]


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
    """Run ``body(harness)`` with the trigger in a TriggerHarness (a private home, delivery as the server does)."""
    import shutil
    import tempfile

    from tiercel.api import PollingTrigger
    from tiercel.testing import TriggerHarness

    text, trigger_id = _trigger_setup(cls, options, wanted or PollingTrigger)  # type: ignore[arg-type]
    home = tempfile.mkdtemp(prefix="tiercel-conformance-")
    try:
        with TriggerHarness(text, home, trigger_id, registry=registry_for(cls)) as harness:
            run_loop(asyncio.wait_for(body(harness), 60))
    finally:
        shutil.rmtree(home, ignore_errors=True)


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

    async def wrapped(harness: Any) -> None:
        async with _Source(cls, harness.trigger, harness.ctx, options) as source:
            await body(harness, source)

    _with_trigger(cls, options, wrapped, (PollingTrigger, RealtimeTrigger))


def check_event_key(cls: type, options: Options) -> None:
    async def body(harness: Any, source: _Source) -> None:
        fail([p for p in [_key_problem(cls, await source.first())] if p])

    _with_source(cls, options, body)


def check_dedupe(cls: type, options: Options) -> None:
    async def body(harness: Any, source: _Source) -> None:
        event = await source.first()
        if _key_problem(cls, event):
            raise CheckSkipped("its events have no deduplication key (see event_key)")
        first = await harness.deliver(event)
        second = await harness.deliver(event)
        count = len(harness.executions())
        if first is None or second is not None or count != 1:
            raise CheckFailed(f"{cls.type}: the same event delivered twice made {count} executions, expected 1")

    _with_source(cls, options, body)


def check_commit_after_create(cls: type, options: Options) -> None:
    async def body(harness: Any, source: _Source) -> None:
        event = await source.first()
        key = event.key
        calls = _Recorded(event)
        with harness.store_down("injected failure: the execution could not be stored"), \
                contextlib.suppress(RuntimeError):
            await harness.deliver(event)
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
        created = await harness.deliver(again)
        count = len(harness.executions())
        if created is None or count != 1 or calls.acks != 1:
            raise CheckFailed(f"{cls.type}: the redelivered event made {count} executions and {calls.acks} acks, "
                              f"expected 1 and 1")

    _with_source(cls, options, body)


def check_realtime_stops(cls: type, options: Options) -> None:
    from tiercel.api import RealtimeTrigger

    async def body(harness: Any) -> None:
        source = _Source(cls, harness.trigger, harness.ctx, options)
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
