"""Entry point of tiercel-git: git.Clone, git.Push and git.SyncFlows."""

from __future__ import annotations

from collections.abc import Callable

from tiercel import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_git.tasks import Clone, Push, SyncFlows

    for task in (Clone, Push, SyncFlows):
        register(task)
