"""Every hook of the kernel. The docstrings here are the hook reference (docs/plugins/hooks.md).

Contribution hooks take a ``register`` callback and call it once per component class:
the kernel validates the class, records which distribution gave it and rejects a type
that another distribution already claimed. Their return value is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tiercel.api import Runner, Storage, Task, Trigger

PROJECT = "tiercel"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- contributions: called once, when the kernel loads plugins --------------------------

@hookspec
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    """Contribute task types.

    Called once when plugins load. Call ``register(TaskClass)`` for each task; the class
    must subclass ``tiercel.Task`` and set ``type``. The return value is ignored.
    """


@hookspec
def register_triggers(register: Callable[[type[Trigger]], None]) -> None:
    """Contribute trigger types.

    Called once when plugins load. Call ``register(TriggerClass)`` for each trigger; the
    class must subclass ``tiercel.PollingTrigger`` or ``tiercel.RealtimeTrigger`` (or
    ``tiercel.Trigger`` for kernel-driven ones) and set ``type``. The return value is ignored.
    """


@hookspec
def register_runners(register: Callable[[type[Runner]], None]) -> None:
    """Contribute task runners (where script commands run).

    Called once when plugins load. Call ``register(RunnerClass)`` for each runner; the class
    must subclass ``tiercel.Runner`` and set ``type``. The return value is ignored.
    """


@hookspec
def register_storages(register: Callable[[type[Storage]], None]) -> None:
    """Contribute internal-storage backends.

    Called once when plugins load. Call ``register(StorageClass)`` for each backend; the
    class must subclass ``tiercel.Storage`` and set ``type``. The return value is ignored.
    """
