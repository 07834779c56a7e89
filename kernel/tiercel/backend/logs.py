"""Log lines and metrics of executions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tiercel.backend.db import Database
from tiercel.model import loads

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")


class LogStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Insert (execution_id, task_run_id, task_id, attempt, level, message, ts) rows in one transaction."""
        rows = list(rows)
        if rows:
            with self.db.transaction() as conn:
                conn.executemany("INSERT INTO logs (execution_id, task_run_id, task_id, attempt, level, message, ts) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def purge(self, end: float, start: float | None = None, namespace: str | None = None, flow_id: str | None = None,
              execution_id: str | None = None, levels: list[str] | None = None) -> int:
        """Delete log lines written in [start, end] (of a namespace and its children, a flow, an execution,
        some levels); return how many."""
        where, params = ["ts <= ?"], [end]
        if start is not None:
            where.append("ts >= ?")
            params.append(start)
        if execution_id:
            where.append("execution_id = ?")
            params.append(execution_id)
        if namespace or flow_id:
            sub, sub_params = [], []
            if namespace:
                sub.append("(namespace = ? OR namespace LIKE ?)")
                sub_params += [namespace, namespace + ".%"]
            if flow_id:
                sub.append("flow_id = ?")
                sub_params.append(flow_id)
            where.append(f"execution_id IN (SELECT id FROM executions WHERE {' AND '.join(sub)})")
            params += sub_params
        if levels:
            where.append(f"level IN ({', '.join('?' * len(levels))})")
            params += levels
        return self.db.execute(f"DELETE FROM logs WHERE {' AND '.join(where)}", params)

    def query(self, execution_id: str, after: int = 0, task_id: str | None = None,
              min_level: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, task_run_id, task_id, attempt, level, message, ts FROM logs WHERE execution_id = ? AND id > ?"
        params: list[Any] = [execution_id, after]
        if task_id:
            sql += " AND task_id = ?"
            params.append(task_id)
        floor = LEVELS.index(min_level) if min_level in LEVELS else 0
        if floor:
            sql += f" AND level IN ({', '.join('?' * len(LEVELS[floor:]))})"
            params += LEVELS[floor:]
        return [{"id": r[0], "taskRunId": r[1], "taskId": r[2], "attemptNumber": r[3], "level": r[4],
                 "message": r[5], "timestamp": r[6]} for r in self.db.query(sql + " ORDER BY id", params)]


class MetricStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert (execution_id, task_run_id, name, type, value, tags_json, ts) rows."""
        with self.db.transaction() as conn:
            conn.executemany("INSERT INTO metrics (execution_id, task_run_id, name, type, value, tags, ts) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def query(self, execution_id: str) -> list[dict[str, Any]]:
        return [{"taskRunId": r[0], "name": r[1], "type": r[2], "value": r[3], "tags": loads(r[4]), "timestamp": r[5]}
                for r in self.db.query("SELECT task_run_id, name, type, value, tags, ts FROM metrics "
                                       "WHERE execution_id = ? ORDER BY id", (execution_id,))]

    def attach(self, execution: dict[str, Any]) -> dict[str, Any]:
        """Put each task run's metrics (``ctx.metric``, a script's ``::{"metrics":[...]}::``) into the
        execution's JSON, as ``taskRuns[].metrics``: ``[{name, type, value, tags, timestamp}]``."""
        by_run: dict[str, list[dict[str, Any]]] = {}
        for m in self.query(execution["id"]):
            by_run.setdefault(m.pop("taskRunId"), []).append(m)
        for tr in execution.get("taskRuns") or []:
            if tr.get("id") in by_run:
                tr["metrics"] = by_run[tr["id"]]
        return execution
