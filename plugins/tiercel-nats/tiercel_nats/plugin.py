"""Entry point of the NATS plugin: registers its tasks and triggers (nats-py is imported only when used)."""

from __future__ import annotations

from collections.abc import Callable

from tiercel.hookspecs import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_nats import tasks

    for cls in (tasks.Publish, tasks.Consume, tasks.Request, tasks.KvGet, tasks.KvPut, tasks.KvDelete):
        register(cls)


@hookimpl
def register_triggers(register: Callable[[type], None]) -> None:
    from tiercel_nats.triggers import RealtimeTrigger, Trigger

    register(Trigger)
    register(RealtimeTrigger)
