"""Every query of the engine, CLI and API: one place for the SQL.

A step of the executor is saved in one transaction: the execution row, the task runs it
changed, their attempts (written RUNNING at dispatch, so a crash shows what was in flight)
and the logs. That keeps each step atomic and durable.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from typing import Any

from tiercel.backend.db import Database
from tiercel.engine.model import Attempt, Execution, TaskRun, dumps, loads

_EXEC_COLS = ("id, namespace, flow_id, flow_revision, flow_hash, state, inputs, outputs, labels, trigger, "
              "parent_id, parent_task_run_id, original_id, dedupe_key, error, created_at, started_at, ended_at")


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:32]


#: Outputs larger than this (serialized) are kept in internal storage; the row holds a reference.
INLINE_OUTPUTS_LIMIT = 256 * 1024


class Repository:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: ``offload(task_run, json_text) -> uri`` and ``resolve(uri) -> json_text``, set by the runtime.
        self.offload: Any = None
        self.resolve: Any = None

    def _outputs_column(self, tr: TaskRun) -> str | None:
        text = dumps(tr.outputs)
        if text is not None and len(text) > INLINE_OUTPUTS_LIMIT and self.offload is not None:
            return dumps({"$ref": self.offload(tr, text)})
        return text

    def _outputs_value(self, text: str | None) -> Any:
        value = loads(text)
        if isinstance(value, dict) and len(value) == 1 and "$ref" in value and self.resolve is not None:
            return json.loads(self.resolve(value["$ref"]))
        return value

    # --- flows ------------------------------------------------------------------------
    def save_source(self, source: str, path: str | None = None) -> str:
        digest = source_hash(source)
        with self.db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO flow_sources (hash, source, path) VALUES (?, ?, ?)",
                         (digest, source, path))
        return digest

    def source(self, digest: str) -> tuple[str, str | None] | None:
        row = self.db.one("SELECT source, path FROM flow_sources WHERE hash = ?", (digest,))
        return (row[0], row[1]) if row else None

    def deploy_flow(self, namespace: str, flow_id: str, source: str) -> tuple[int, bool]:
        """Store *source* as the flow's latest revision; returns (revision, changed)."""
        digest = self.save_source(source)
        with self.db.transaction() as conn:
            row = conn.execute("SELECT revision, hash, deleted FROM flows WHERE namespace = ? AND id = ? "
                               "ORDER BY revision DESC LIMIT 1", (namespace, flow_id)).fetchone()
            if row is not None and row[1] == digest and not row[2]:
                return row[0], False
            revision = (row[0] + 1) if row else 1
            conn.execute("INSERT INTO flows (namespace, id, revision, hash, deleted, created_at) VALUES (?, ?, ?, ?, 0, ?)",
                         (namespace, flow_id, revision, digest, time.time()))
        return revision, True

    def delete_flow(self, namespace: str, flow_id: str) -> bool:
        latest = self.flow(namespace, flow_id)
        if latest is None:
            return False
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO flows (namespace, id, revision, hash, deleted, created_at) VALUES (?, ?, ?, ?, 1, ?)",
                         (namespace, flow_id, latest["revision"] + 1, latest["hash"], time.time()))
        return True

    def flow(self, namespace: str, flow_id: str, revision: int | None = None) -> dict[str, Any] | None:
        """The latest (or given) revision of a deployed flow, None when absent or deleted."""
        if revision is None:
            row = self.db.one("SELECT f.revision, f.hash, f.deleted, s.source, f.created_at FROM flows f "
                              "JOIN flow_sources s ON s.hash = f.hash WHERE f.namespace = ? AND f.id = ? "
                              "ORDER BY f.revision DESC LIMIT 1", (namespace, flow_id))
            if row is None or row[2]:
                return None
        else:
            row = self.db.one("SELECT f.revision, f.hash, f.deleted, s.source, f.created_at FROM flows f "
                              "JOIN flow_sources s ON s.hash = f.hash WHERE f.namespace = ? AND f.id = ? "
                              "AND f.revision = ?", (namespace, flow_id, revision))
            if row is None:
                return None
        return {"namespace": namespace, "id": flow_id, "revision": row[0], "hash": row[1],
                "source": row[3], "updated": row[4]}

    def flows(self, namespace: str | None = None, query: str | None = None) -> list[dict[str, Any]]:
        """Latest revision of every deployed, non-deleted flow (optionally under a namespace)."""
        sql = ("SELECT f.namespace, f.id, f.revision, f.hash, s.source, f.created_at FROM flows f "
               "JOIN flow_sources s ON s.hash = f.hash "
               "JOIN (SELECT namespace, id, MAX(revision) AS r FROM flows GROUP BY namespace, id) m "
               "ON m.namespace = f.namespace AND m.id = f.id AND m.r = f.revision WHERE f.deleted = 0")
        params: list[Any] = []
        if namespace:
            sql += " AND (f.namespace = ? OR f.namespace LIKE ?)"
            params += [namespace, namespace + ".%"]
        if query:
            sql += " AND (f.id LIKE ? OR f.namespace LIKE ?)"
            params += [f"%{query}%", f"%{query}%"]
        sql += " ORDER BY f.namespace, f.id"
        return [{"namespace": r[0], "id": r[1], "revision": r[2], "hash": r[3], "source": r[4], "updated": r[5]}
                for r in self.db.query(sql, params)]

    def revisions(self, namespace: str, flow_id: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT f.revision, f.hash, f.deleted, s.source, f.created_at FROM flows f JOIN flow_sources s "
                             "ON s.hash = f.hash WHERE f.namespace = ? AND f.id = ? ORDER BY f.revision",
                             (namespace, flow_id))
        return [{"revision": r[0], "hash": r[1], "deleted": bool(r[2]), "source": r[3], "updated": r[4]} for r in rows]

    # --- executions -------------------------------------------------------------------
    def create_execution(self, ex: Execution, owner: str | None = None) -> bool:
        """Insert a new execution (owned by *owner*); False when its dedupe key already exists (a duplicate event)."""
        with self.db.transaction() as conn:
            if ex.dedupe_key is not None:
                if conn.execute("SELECT 1 FROM executions WHERE dedupe_key = ?", (ex.dedupe_key,)).fetchone():
                    return False
            conn.execute(f"INSERT INTO executions ({_EXEC_COLS}, owner, updated_at) VALUES ({', '.join('?' * 20)})",
                         (*_exec_row(ex), owner, time.time()))
        ex.new = ex.dirty = False
        return True

    def save(self, ex: Execution, logs: Iterable[tuple] = ()) -> None:
        """Persist one executor step atomically."""
        now = time.time()
        new_trs, changed_trs, attempts = [], [], []
        touched = list(ex.changed.values())
        for tr in touched:
            if tr.dirty:
                row = (tr.state, tr.attempt, self._outputs_column(tr), dumps(tr.data) if tr.data else None, tr.error,
                       tr.started_at, tr.ended_at)
                if tr.new:
                    new_trs.append((tr.id, tr.execution_id, tr.parent_id, tr.task_id, tr.value, tr.iteration,
                                    tr.created_at, tr.seq, *row))
                else:
                    changed_trs.append((*row, tr.id))
                for a in tr.attempts:
                    if a.new:
                        attempts.append((tr.id, a.attempt, tr.execution_id, a.state, a.worker, a.error,
                                         a.started_at, a.ended_at))
        with self.db.transaction() as conn:
            if ex.new:
                conn.execute(f"INSERT INTO executions ({_EXEC_COLS}, updated_at) VALUES ({', '.join('?' * 19)})",
                             (*_exec_row(ex), now))
            elif ex.dirty:
                conn.execute("UPDATE executions SET state = ?, outputs = ?, labels = ?, error = ?, started_at = ?, "
                             "ended_at = ?, updated_at = ? WHERE id = ?",
                             (ex.state, dumps(ex.outputs), dumps(ex.labels), ex.error, ex.started_at, ex.ended_at,
                              now, ex.id))
            if new_trs:
                conn.executemany("INSERT INTO task_runs (id, execution_id, parent_id, task_id, value, iteration, "
                                 "created_at, seq, state, attempt, outputs, data, error, started_at, ended_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", new_trs)
            if changed_trs:
                conn.executemany("UPDATE task_runs SET state = ?, attempt = ?, outputs = ?, data = ?, error = ?, "
                                 "started_at = ?, ended_at = ? WHERE id = ?", changed_trs)
            if attempts:  # resources are the worker's (track_resources): an upsert leaves them alone
                conn.executemany("INSERT INTO attempts (task_run_id, attempt, execution_id, state, worker, error, "
                                 "started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                                 "ON CONFLICT (task_run_id, attempt) DO UPDATE SET state = excluded.state, "
                                 "worker = excluded.worker, error = excluded.error, started_at = excluded.started_at, "
                                 "ended_at = excluded.ended_at", attempts)
            if ex.forgotten:
                conn.executemany("DELETE FROM task_runs WHERE id = ?", [(i,) for i in ex.forgotten])
                conn.executemany("DELETE FROM attempts WHERE task_run_id = ?", [(i,) for i in ex.forgotten])
            logs = list(logs)
            if logs:
                conn.executemany("INSERT INTO logs (execution_id, task_run_id, task_id, attempt, level, message, ts) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", logs)
        ex.forgotten.clear()
        ex.new = ex.dirty = False
        ex.changed.clear()
        for tr in touched:
            tr.new = tr._dirty = False
            for a in tr.attempts:
                a.new = False

    def track_resources(self, task_run_id: str, attempt: int, resources: dict[str, Any]) -> None:
        """Record at once what a running attempt started outside its worker (a crash must not lose it)."""
        self.db.execute("UPDATE attempts SET resources = ? WHERE task_run_id = ? AND attempt = ?",
                        (dumps(resources) if resources else None, task_run_id, attempt))

    def load_execution(self, execution_id: str) -> Execution | None:
        row = self.db.one(f"SELECT {_EXEC_COLS} FROM executions WHERE id = ?", (execution_id,))
        if row is None:
            return None
        ex = _exec_from_row(row)
        attempts: dict[str, list[Attempt]] = {}
        for a in self.db.query("SELECT task_run_id, attempt, state, worker, error, started_at, ended_at, resources "
                               "FROM attempts WHERE execution_id = ? ORDER BY task_run_id, attempt", (execution_id,)):
            attempts.setdefault(a[0], []).append(Attempt(a[1], a[2], a[5], a[6], a[4], a[3], loads(a[7]), new=False))
        for r in self.db.query("SELECT id, parent_id, task_id, value, iteration, state, attempt, outputs, data, error, "
                               "created_at, started_at, ended_at, seq FROM task_runs WHERE execution_id = ? ORDER BY seq",
                               (execution_id,)):
            tr = TaskRun(id=r[0], execution_id=execution_id, parent_id=r[1], task_id=r[2], value=r[3], iteration=r[4],
                         state=r[5], attempt=r[6], outputs=self._outputs_value(r[7]), data=loads(r[8]) or {}, error=r[9],
                         created_at=r[10], started_at=r[11], ended_at=r[12], seq=r[13],
                         attempts=attempts.get(r[0], []), new=False, dirty=False)
            ex.add(tr)
            if tr.state in ("SUCCESS", "WARNING"):
                ex.record_outputs(tr)
        ex.__dict__["_seq"] = max((t.seq for t in ex.task_runs.values()), default=-1) + 1
        return ex

    def execution_json(self, execution_id: str) -> dict[str, Any] | None:
        ex = self.load_execution(execution_id)
        return ex.to_json() if ex else None

    def search_executions(self, namespace: str | None = None, flow_id: str | None = None,
                          states: list[str] | None = None, labels: dict[str, str] | None = None,
                          start: float | None = None, end: float | None = None,
                          page: int = 1, size: int = 25) -> tuple[list[dict[str, Any]], int]:
        where, params = ["1 = 1"], []
        if namespace:
            where.append("(namespace = ? OR namespace LIKE ?)")
            params += [namespace, namespace + ".%"]
        if flow_id:
            where.append("flow_id = ?")
            params.append(flow_id)
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params += states
        if start is not None:
            where.append("created_at >= ?")
            params.append(start)
        if end is not None:
            where.append("created_at <= ?")
            params.append(end)
        for key, value in (labels or {}).items():
            where.append("json_extract(labels, ?) = ?")
            params += [f'$."{key}"', value]
        clause = " AND ".join(where)
        total = self.db.one(f"SELECT COUNT(*) FROM executions WHERE {clause}", params)[0]
        rows = self.db.query(f"SELECT {_EXEC_COLS} FROM executions WHERE {clause} ORDER BY created_at DESC "
                             f"LIMIT ? OFFSET ?", [*params, size, max(page - 1, 0) * size])
        return [_exec_from_row(r).to_json() for r in rows], total

    def count_running(self, namespace: str, flow_id: str, exclude: str | None = None) -> int:
        row = self.db.one("SELECT COUNT(*) FROM executions WHERE namespace = ? AND flow_id = ? AND state IN "
                          "('CREATED', 'RUNNING', 'PAUSED', 'KILLING', 'RETRYING', 'RESTARTED') AND id != ?",
                          (namespace, flow_id, exclude or ""))
        return row[0]

    def oldest_queued(self, namespace: str, flow_id: str) -> str | None:
        row = self.db.one("SELECT id FROM executions WHERE namespace = ? AND flow_id = ? AND state = 'QUEUED' "
                          "ORDER BY created_at, rowid LIMIT 1", (namespace, flow_id))
        return row[0] if row else None

    def unfinished(self) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT id FROM executions WHERE state NOT IN ('SUCCESS', 'WARNING', 'FAILED', 'KILLED', 'CANCELLED') "
            "ORDER BY created_at")]

    def set_owner(self, execution_id: str, owner: str | None) -> None:
        self.db.execute("UPDATE executions SET owner = ? WHERE id = ?", (owner, execution_id))

    def owner(self, execution_id: str) -> str | None:
        row = self.db.one("SELECT owner FROM executions WHERE id = ?", (execution_id,))
        return row[0] if row else None

    # --- events (commands from other processes: kill, resume, restart) ---------------
    def add_event(self, execution_id: str, kind: str, payload: dict[str, Any] | None = None) -> None:
        self.db.execute("INSERT INTO events (execution_id, kind, payload, created_at) VALUES (?, ?, ?, ?)",
                        (execution_id, kind, dumps(payload or {}), time.time()))

    def pending_events(self, execution_ids: Iterable[str] | None = None) -> list[tuple[int, str, str, dict]]:
        rows = self.db.query("SELECT id, execution_id, kind, payload FROM events ORDER BY id")
        wanted = set(execution_ids) if execution_ids is not None else None
        return [(r[0], r[1], r[2], loads(r[3]) or {}) for r in rows if wanted is None or r[1] in wanted]

    # --- logs and metrics ---------------------------------------------------------------
    def logs(self, execution_id: str, after: int = 0, task_id: str | None = None,
             min_level: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, task_run_id, task_id, attempt, level, message, ts FROM logs WHERE execution_id = ? AND id > ?"
        params: list[Any] = [execution_id, after]
        if task_id:
            sql += " AND task_id = ?"
            params.append(task_id)
        rows = self.db.query(sql + " ORDER BY id", params)
        order = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
        floor = order.index(min_level) if min_level in order else 0
        return [{"id": r[0], "taskRunId": r[1], "taskId": r[2], "attemptNumber": r[3], "level": r[4],
                 "message": r[5], "timestamp": r[6]} for r in rows if order.index(r[4]) >= floor]

    def save_metrics(self, rows: list[tuple]) -> None:
        with self.db.transaction() as conn:
            conn.executemany("INSERT INTO metrics (execution_id, task_run_id, name, type, value, tags, ts) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def metrics(self, execution_id: str) -> list[dict[str, Any]]:
        return [{"taskRunId": r[0], "name": r[1], "type": r[2], "value": r[3], "tags": loads(r[4]), "timestamp": r[5]}
                for r in self.db.query("SELECT task_run_id, name, type, value, tags, ts FROM metrics "
                                       "WHERE execution_id = ? ORDER BY id", (execution_id,))]

    # --- key/value store --------------------------------------------------------------
    def kv_get(self, namespace: str, key: str) -> Any:
        row = self.db.one("SELECT value, expires_at FROM kv WHERE namespace = ? AND key = ?", (namespace, key))
        if row is None or (row[1] is not None and row[1] < time.time()):
            return None
        return json.loads(row[0])

    def kv_set(self, namespace: str, key: str, value: Any, ttl: float | None = None) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv (namespace, key, value, expires_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                        (namespace, key, dumps(value), time.time() + ttl if ttl else None, time.time()))


def _exec_row(ex: Execution) -> tuple:
    return (ex.id, ex.namespace, ex.flow_id, ex.flow_revision, ex.flow_hash, ex.state, dumps(ex.inputs),
            dumps(ex.outputs), dumps(ex.labels), dumps(ex.trigger), ex.parent_id, ex.parent_task_run_id,
            ex.original_id, ex.dedupe_key, ex.error, ex.created_at, ex.started_at, ex.ended_at)


def _exec_from_row(r: tuple) -> Execution:
    return Execution(id=r[0], namespace=r[1], flow_id=r[2], flow_revision=r[3], flow_hash=r[4], state=r[5],
                     inputs=loads(r[6]) or {}, outputs=loads(r[7]) or {}, labels=loads(r[8]) or {},
                     trigger=loads(r[9]), parent_id=r[10], parent_task_run_id=r[11], original_id=r[12],
                     dedupe_key=r[13], error=r[14], created_at=r[15], started_at=r[16], ended_at=r[17],
                     new=False, dirty=False)
