"""Every hook of the kernel. The docstrings here are the hook reference (docs/plugins/hooks.md).

Three shapes, no more:

- ``register_*(register)``: contributions. Called once when plugins load; the hook calls
  ``register(...)`` once per contribution and the kernel validates it, records which
  distribution gave it and rejects a name another distribution already claimed. The return
  value is ignored.
- ``resolve_*``: a single decision. The first non-None result wins (``firstresult``).
- ``on_*``: notifications. Every implementation is called; results are ignored.

Implementations may accept any subset of a hook's parameters (pluggy matches them by name),
so a hook gains parameters without breaking older plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from tiercel.api import Runner, SecretProvider, Storage, Task, Trigger

PROJECT = "tiercel"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- contributions: called once, when the kernel loads plugins --------------------------

@hookspec
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    """Contribute task types.

    Called once when plugins load. Call ``register(TaskClass)`` for each task; the class
    must subclass ``tiercel.Task`` (``tiercel.FlowableTask`` for a task that holds other
    tasks) and set ``type``. The return value is ignored.
    """


@hookspec
def register_triggers(register: Callable[[type[Trigger]], None]) -> None:
    """Contribute trigger types.

    Called once when plugins load. Call ``register(TriggerClass)`` for each trigger; the
    class must subclass a trigger kind (``tiercel.PollingTrigger``, ``RealtimeTrigger``,
    ``ScheduleTrigger``, ``ExecutionTrigger`` or ``WebhookTrigger``: the kernel drives each
    kind the same way, whoever provides it) and set ``type``. The return value is ignored.
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
    class must subclass ``tiercel.Storage`` and set ``type``. Which backend a process uses
    is decided by :func:`resolve_storage`. The return value is ignored.
    """


@hookspec
def register_secret_providers(register: Callable[[type[SecretProvider]], None]) -> None:
    """Contribute secret providers: where ``{{ secret('NAME') }}`` looks values up.

    Called once when plugins load. Call ``register(ProviderClass)`` for each; the class must
    subclass ``tiercel.SecretProvider`` and set ``type``. Which providers a process asks, in
    which order and with which properties, is configured by ``TIERCEL_SECRET_PROVIDERS``
    (default: ``[env, store]``). The return value is ignored.
    """


@hookspec
def register_commands(register: Callable[[click.Command], None]) -> None:
    """Contribute ``tiercel`` subcommands.

    Called once when plugins load. Call ``register(command)`` with a ``click.Command`` (or
    group) for each; its name becomes ``tiercel <name>`` and its help the line shown by
    ``tiercel --help``. The kernel's own command names cannot be taken. The module defining
    the command is imported only when the command runs. The return value is ignored.
    """


@hookspec
def register_expression_functions(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Contribute functions callable in expressions, ``{{ name(...) }}``.

    Called once when plugins load. Call ``register(name, function)`` for each; the
    function receives the rendered arguments and returns a value. It runs inside the
    sandbox's limits and must not do I/O that can block for long. The return value is ignored.
    """


@hookspec
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Contribute expression filters, ``{{ value | name(...) }}``.

    Called once when plugins load. Call ``register(name, function)`` for each; the function
    receives the filtered value first, then the filter's arguments. Built-in filter names
    cannot be taken. The return value is ignored.
    """


# --- decisions: the first non-None answer wins --------------------------------------------

@hookspec(firstresult=True)
def resolve_storage(uri: str, options: dict[str, str], home: Path) -> Storage | None:
    """Return the internal storage a process uses, or None when *uri* is not this plugin's.

    Called once per process when its runtime starts. *uri* is the configured storage
    (``TIERCEL_STORAGE`` or ``--storage``; ``local`` by default, which the core plugin
    answers with a directory under the home), *options* the URI's query parameters
    (``s3://bucket/prefix?region=eu-west-1``) and *home* the process's home directory.
    Stops at the first non-None result; no answer at all is a start-up error naming *uri*.
    """


# --- notifications: every implementation is called, results ignored ------------------------

@hookspec
def on_execution_end(execution: dict[str, Any], execution_id: str, namespace: str, flow_id: str, state: str,
                     created_at: float, ended_at: float | None, parent_task_run_id: str | None, parent_attempt: int,
                     correlation_id: str) -> None:
    """Called in the process that ran an execution, once, when it ends (any terminal state).

    *execution* is the execution as the API shows it (Kestra's field names: ``id``,
    ``namespace``, ``flowId``, ``state``, ``startDate``, ``endDate``, ``duration``,
    ``labels``, ``taskRuns``…), secrets masked. The other arguments repeat what a metric or a
    span needs, as plain values: Unix times, the task run (and its attempt) that started this
    execution as a subflow (None otherwise), and *correlation_id*, the id of the execution at
    the root of the subflow tree. Keep it quick: it runs on the engine's loop; hand slow work
    to a thread or a queue. An exception is logged and otherwise ignored.
    """


@hookspec
def on_execution_created(execution_id: str, namespace: str, flow_id: str, state: str, created_at: float,
                         trigger: dict[str, Any] | None, labels: dict[str, str]) -> None:
    """Called in the process that created an execution, once it is stored.

    *state* is ``CREATED``, or ``QUEUED`` (or a terminal state) when the flow's concurrency
    limit decided; *created_at* is a Unix time; *trigger* is what started it (``id``, ``type``,
    ``variables`` such as a schedule's ``date``), None when started by hand or the API. Called
    with keywords only, on the engine's loop: keep it quick. An exception is logged and otherwise ignored.
    """


@hookspec
def on_task_run_end(execution_id: str, namespace: str, flow_id: str, task_id: str, task_type: str,
                    task_run_id: str, parent_task_run_id: str | None, parent_attempt: int, state: str,
                    attempts: list[dict[str, Any]], started_at: float | None, ended_at: float | None,
                    correlation_id: str) -> None:
    """Called in the process that runs an execution when one of its task runs ends (any terminal state).

    Runnable and flowable task runs alike; *task_type* is the type as written in the flow
    (``core.Log``, ``scripts.Shell``). *attempts* lists every attempt, oldest first, as
    ``{"attempt", "state", "startedAt", "endedAt", "error"}`` (Unix times; a retried task has several);
    *parent_task_run_id* is the flowable holding it (None at the top level) and *parent_attempt*
    that flowable's current attempt; *correlation_id*
    is the id of the execution at the root of a subflow tree (the execution itself otherwise).
    Called with keywords only, on the engine's loop, for every task run: keep it very quick
    (count, append, hand over to a thread). An exception is logged and otherwise ignored.
    """


@hookspec
def on_trigger_event(namespace: str, flow_id: str, trigger_id: str, trigger_type: str, execution_id: str | None,
                     count: int) -> None:
    """Called when a polling or realtime trigger delivered an event (one execution, or none when deduplicated).

    *count* is how many messages the event carries (a batch of records counts each),
    *execution_id* the execution it started (None when its dedupe key had already started one).
    An exception is logged and otherwise ignored.
    """


@hookspec
def on_trigger_error(namespace: str, flow_id: str, trigger_id: str, trigger_type: str, error: str, failures: int,
                     retry_in: float) -> None:
    """Called when a polling or realtime trigger failed and is backing off.

    *failures* counts the failures in a row, *retry_in* the seconds before the next try.
    An exception is logged and otherwise ignored.
    """
