"""Entry point of tiercel-fs: SFTP, FTP and FTPS tasks and triggers."""

from __future__ import annotations

from collections.abc import Callable

from tiercel import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_fs.components import TASKS

    for task in TASKS:
        register(task)


@hookimpl
def register_triggers(register: Callable[[type], None]) -> None:
    from tiercel_fs.components import TRIGGERS

    for trigger in TRIGGERS:
        register(trigger)
