"""Entry point of the MQTT plugin: registers its tasks and triggers (the MQTT clients are imported only when used)."""

from __future__ import annotations

from collections.abc import Callable

from tiercel.hookspecs import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_mqtt import tasks

    register(tasks.Publish)
    register(tasks.Subscribe)


@hookimpl
def register_triggers(register: Callable[[type], None]) -> None:
    from tiercel_mqtt.triggers import RealtimeTrigger, Trigger

    register(Trigger)
    register(RealtimeTrigger)
