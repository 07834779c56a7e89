"""Entry point of the AMQP plugin: registers its tasks and triggers (aio-pika is imported only when used)."""

from __future__ import annotations

from collections.abc import Callable

from tiercel.hookspecs import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_amqp import tasks

    for cls in (tasks.Publish, tasks.Consume, tasks.DeclareQueue, tasks.DeclareExchange, tasks.QueueBind):
        register(cls)


@hookimpl
def register_triggers(register: Callable[[type], None]) -> None:
    from tiercel_amqp.triggers import RealtimeTrigger, Trigger

    register(Trigger)
    register(RealtimeTrigger)
