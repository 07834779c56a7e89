"""Entry point of tiercel-git: clone, push, and the repository as the source of truth for flows and namespace files."""

from __future__ import annotations

from collections.abc import Callable

from tiercel import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_git.gitops import PushFlows, PushNamespaceFiles, SyncNamespaceFiles
    from tiercel_git.tasks import Clone, Push, SyncFlows

    for task in (Clone, Push, SyncFlows, SyncNamespaceFiles, PushNamespaceFiles, PushFlows):
        register(task)
