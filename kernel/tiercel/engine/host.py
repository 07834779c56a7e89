"""The narrow interfaces the worker and the run context get from their process (never the runtime)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tiercel.engine.secrets import SecretChain
    from tiercel.engine.storage import InternalStorage
    from tiercel.expr import Renderer
    from tiercel.model import TaskRun
    from tiercel.plugins import Registry


class RunHost(Protocol):
    """What a task's or trigger's run context needs from the process it runs in."""

    home: Path
    registry: Registry
    renderer: Renderer
    storage: InternalStorage
    #: The secret providers, asked in order by ``secret()``.
    secrets: SecretChain
    #: The key/value store (``tiercel.backend.kv.KVStore``).
    kv: Any

    def track_resources(self, task_run_id: str, attempt: int, resources: dict[str, Any]) -> None:
        """Persist what a running attempt started outside the worker (``RunContext.track``)."""
        ...


class WorkerHost(RunHost, Protocol):
    """What the worker needs besides: where logs, metrics and secrets of an execution go."""

    def log(self, execution_id: str, tr: TaskRun | None, attempt: int | None, level: str, message: str,
            ts: float) -> None:
        ...

    def record_metrics(self, execution_id: str, task_run_id: str, metrics: list[tuple[Any, ...]]) -> None:
        ...

    def secrets_of(self, execution_id: str) -> set[str]:
        """The secret values to mask in this execution's logs and outputs (shared, it grows as secrets are read)."""
        ...
