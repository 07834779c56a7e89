"""The core plugin: Tiercel's built-in tasks, triggers, process runner, local storage and secret providers.

Registered through the same hooks as any other plugin (entry point ``core``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tiercel.hookspecs import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel.core import execution, files, flowable, kv, namespace, tasks

    for cls in (*files.TASKS, tasks.Assert, tasks.TemplatedTask, tasks.Toggle, tasks.Exit, tasks.SetVariables, tasks.UnsetVariables, tasks.FetchLogs, tasks.PurgeLogs,
                tasks.Log, tasks.Return, tasks.OutputValues, tasks.Sleep, tasks.Fail, tasks.Labels, tasks.Resume,
                flowable.Loop, flowable.Sequential, flowable.Parallel, flowable.If, flowable.Switch, flowable.ForEach,
                flowable.EachParallel, flowable.AllowFailure, flowable.Dag, flowable.WaitFor,
                flowable.WorkingDirectory, flowable.Pause, flowable.Subflow, flowable.ForEachItem,
                kv.Set, kv.Get, kv.GetKeys, kv.Delete, kv.PurgeKV,
                namespace.UploadFiles, namespace.DownloadFiles, namespace.DeleteFiles,
                *execution.TASKS):
        register(cls)
    from tiercel.core import purge

    register(purge.PurgeExecutions)


@hookimpl
def register_triggers(register: Callable[[type], None]) -> None:
    from tiercel.core import triggers

    for cls in (triggers.Schedule, triggers.Flow, triggers.Webhook):
        register(cls)


@hookimpl
def register_runners(register: Callable[[type], None]) -> None:
    from tiercel.core.runner import Process

    register(Process)


@hookimpl
def register_storages(register: Callable[[type], None]) -> None:
    from tiercel.core.storage import Local

    register(Local)


@hookimpl
def register_secret_providers(register: Callable[[type], None]) -> None:
    from tiercel.core.secrets import EnvSecrets, FileSecrets, StoredSecrets

    for cls in (EnvSecrets, FileSecrets, StoredSecrets):
        register(cls)


@hookimpl(trylast=True)
def resolve_storage(uri: str, home: Path) -> Any:
    """``local`` (the default) or ``file:///path``: the local storage, under the home by default."""
    from tiercel.core.storage import Local

    if uri in ("", "local"):
        return Local(basePath=str(home / "storage"))
    if uri.startswith("file://"):
        return Local(basePath=uri.removeprefix("file://").split("?", 1)[0])
    return None
