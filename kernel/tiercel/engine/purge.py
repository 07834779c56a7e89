"""Retention: delete ended executions with their task runs, logs, metrics and files.

Used by ``tiercel executions purge --older-than P30D`` and the ``core.execution.PurgeExecutions``
task (Kestra's property and output names). Executions that have not ended are never touched.
"""

from __future__ import annotations

from typing import Any

from tiercel.engine.storage import namespace_path


def purge_executions(stores: Any, storage: Any, end: float, start: float | None = None, namespace: str | None = None,
                     flow_id: str | None = None, execution_id: str | None = None, states: list[str] | None = None,
                     purge_execution: bool = True, purge_log: bool = True, purge_metric: bool = True,
                     purge_storage: bool = True) -> dict[str, int]:
    """Purge in batches; return ``executionsCount``, ``logsCount``, ``metricsCount`` and ``storagesCount``."""
    totals = {"executionsCount": 0, "logsCount": 0, "metricsCount": 0, "storagesCount": 0}
    done: set[str] = set()
    while True:
        rows, counts = stores.executions.purge(
            end, start, namespace, flow_id, execution_id, states, executions=purge_execution, logs=purge_log,
            metrics=purge_metric, limit=1000 if purge_execution else 10**9)
        rows = [r for r in rows if r[2] not in done]
        for key, value in counts.items():
            totals[key] += value
        if purge_storage:
            for ns, flow, ex_id in rows:
                prefix = f"{namespace_path(ns)}/{flow}/executions/{ex_id}"
                for path in storage.backend.list(prefix):
                    if storage.backend.delete(path):
                        totals["storagesCount"] += 1
        done |= {r[2] for r in rows}
        if not rows or not purge_execution:
            return totals
