"""Entry point of the Redis plugin: registers its tasks and triggers (nothing heavy imported here)."""

from __future__ import annotations

from collections.abc import Callable

from tiercel.hookspecs import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_redis import tasks

    for cls in (tasks.Set, tasks.Get, tasks.Delete, tasks.ListPush, tasks.ListPop, tasks.Publish, tasks.StreamAdd):
        register(cls)


@hookimpl
def register_triggers(register: Callable[[type], None]) -> None:
    from tiercel_redis.triggers import RealtimeTrigger, Trigger

    register(Trigger)
    register(RealtimeTrigger)
