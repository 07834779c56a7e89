"""Entry point of the Kafka plugin: registers its tasks and triggers (nothing heavy imported here)."""

from __future__ import annotations

from collections.abc import Callable

from tiercel.hookspecs import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_kafka.tasks import Consume, Produce

    register(Produce)
    register(Consume)


@hookimpl
def register_triggers(register: Callable[[type], None]) -> None:
    from tiercel_kafka.triggers import RealtimeTrigger, Trigger

    register(Trigger)
    register(RealtimeTrigger)
