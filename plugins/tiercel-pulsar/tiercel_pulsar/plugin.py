"""Entry point of the Pulsar plugin: registers its tasks and triggers (nothing heavy imported here)."""

from __future__ import annotations

from collections.abc import Callable

from tiercel.hookspecs import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_pulsar.tasks import Consume, Produce

    register(Produce)
    register(Consume)


@hookimpl
def register_triggers(register: Callable[[type], None]) -> None:
    from tiercel_pulsar.triggers import RealtimeTrigger, Trigger

    register(Trigger)
    register(RealtimeTrigger)
