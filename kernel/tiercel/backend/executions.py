"""Executions, their task runs and attempts: created, saved one step at a time, loaded, searched.

A step of the executor is saved in one transaction: the execution row, the task runs it
changed, their attempts (written RUNNING at dispatch, so a crash shows what was in flight)
and the logs. That keeps each step atomic and durable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from tiercel.backend.db import Database
from tiercel.model import ACTIVE, SUCCEEDED, Attempt, Execution, State, TaskRun, dumps, iso, loads

_COLS = ("id, namespace, flow_id, flow_revision, flow_hash, state, inputs, outputs, labels, trigger, "
         "parent_id, parent_task_run_id, original_id, dedupe_key, error, created_at, started_at, ended_at")
_ACTIVE = "(" + ", ".join(f"'{s}'" for s in sorted(ACTIVE)) + ")"
_RUNNING = "(" + ", ".join(f"'{s}'" for s in sorted(ACTIVE - {State.QUEUED})) + ")"

#: Outputs larger than this (serialized) are kept in internal storage; the row holds a reference.
INLINE_OUTPUTS_LIMIT = 256 * 1024


class ExecutionStore:
    """Every read and write of executions, task runs and attempts."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: ``offload(task_run, json_text) -> uri`` and ``resolve(uri) -> json_text``: large outputs in storage.
        self.offload: Callable[[TaskRun, str], str] | None = None
        self.resolve: Callable[[str], str] | None = None
        #: ``seal(text) -> token`` and ``unseal(token) -> text``: SECRET inputs are stored sealed, never in clear.
        self.seal: Callable[[str], str] | None = None
        self.unseal: Callable[[str], str] | None = None

    def _row(self, ex: Execution) -> tuple[Any, ...]:
        inputs = ex.inputs
        if ex.secret_inputs:
            if self.seal is None:
                raise RuntimeError("an execution with SECRET inputs needs ExecutionStore.seal")
            inputs = {k: {"$sealed": self.seal(dumps(v) or "null")} if k in ex.secret_inputs else v
                      for k, v in inputs.items()}
        return _row(ex, inputs)

    def _execution(self, r: tuple[Any, ...]) -> Execution:
        ex = _execution(r)
        for k, v in ex.inputs.items():
            if isinstance(v, dict) and len(v) == 1 and "$sealed" in v:
                ex.secret_inputs.add(k)
                try:
                    ex.inputs[k] = loads(self.unseal(v["$sealed"])) if self.unseal else v
                except Exception:  # another key: the input stays sealed (shown as ******)
                    continue
                ex.secrets.add(str(ex.inputs[k]))
        return ex

    # --- writing ----------------------------------------------------------------------
    def create(self, ex: Execution, owner: str | None = None) -> bool:
        """Insert a new execution (owned by *owner*); False when its dedupe key already exists (a duplicate event)."""
        with self.db.transaction() as conn:
            if ex.dedupe_key is not None:
                if conn.execute("SELECT 1 FROM executions WHERE dedupe_key = ?", (ex.dedupe_key,)).fetchone():
                    return False
                # two processes may insert the same key at once: the unique index keeps one
                inserted = conn.execute(f"INSERT INTO executions ({_COLS}, owner, updated_at) VALUES "
                                        f"({', '.join('?' * 20)}) ON CONFLICT DO NOTHING",
                                        (*self._row(ex), owner, time.time())).rowcount
                if inserted != 1:
                    return False
            else:
                conn.execute(f"INSERT INTO executions ({_COLS}, owner, updated_at) VALUES ({', '.join('?' * 20)})",
                             (*self._row(ex), owner, time.time()))
        ex.new = ex.dirty = False
        return True

    def save(self, ex: Execution, logs: Iterable[tuple[Any, ...]] = ()) -> None:
        """Persist one executor step atomically (with the log lines written meanwhile)."""
        now = time.time()
        new_trs, changed_trs, attempts = [], [], []
        touched = list(ex.changed.values())
        for tr in touched:
            if not tr.dirty:
                continue
            row = (tr.state, tr.attempt, self._outputs_column(tr), dumps(tr.data_json()), tr.error, tr.started_at,
                   tr.ended_at)
            if tr.new:
                new_trs.append((tr.id, tr.execution_id, tr.parent_id, tr.task_id, tr.value, tr.iteration,
                                tr.created_at, tr.seq, *row))
            else:
                changed_trs.append((*row, tr.id))
            attempts += [(tr.id, a.attempt, tr.execution_id, a.state, a.worker, a.error, a.started_at, a.ended_at)
                         for a in tr.attempts if a.new]
        with self.db.transaction() as conn:
            if ex.new:
                conn.execute(f"INSERT INTO executions ({_COLS}, updated_at) VALUES ({', '.join('?' * 19)})",
                             (*self._row(ex), now))
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
            if attempts:  # resources are the worker's (track_resources): the upsert leaves them alone
                conn.executemany("INSERT INTO attempts (task_run_id, attempt, execution_id, state, worker, error, "
                                 "started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                                 "ON CONFLICT (task_run_id, attempt) DO UPDATE SET state = excluded.state, "
                                 "worker = excluded.worker, error = excluded.error, started_at = excluded.started_at, "
                                 "ended_at = excluded.ended_at", attempts)
            if ex.forgotten:
                conn.executemany("DELETE FROM task_runs WHERE id = ?", [(i,) for i in ex.forgotten])
                conn.executemany("DELETE FROM attempts WHERE task_run_id = ?", [(i,) for i in ex.forgotten])
            rows = list(logs)
            if rows:
                conn.executemany("INSERT INTO logs (execution_id, task_run_id, task_id, attempt, level, message, ts) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        ex.forgotten.clear()
        ex.new = ex.dirty = False
        ex.changed.clear()
        for tr in touched:
            tr.new = tr.dirty = False
            for a in tr.attempts:
                a.new = False

    def track_resources(self, task_run_id: str, attempt: int, resources: dict[str, Any]) -> None:
        """Record at once what a running attempt started outside its worker (a crash must not lose it)."""
        self.db.execute("UPDATE attempts SET resources = ? WHERE task_run_id = ? AND attempt = ?",
                        (dumps(resources) if resources else None, task_run_id, attempt))

    def promote(self, execution_id: str) -> bool:
        """A QUEUED execution may start: CREATED. False when it was no longer queued."""
        return self.db.execute("UPDATE executions SET state = 'CREATED' WHERE id = ? AND state = 'QUEUED'",
                               (execution_id,)) == 1

    # --- reading ----------------------------------------------------------------------
    def load(self, execution_id: str) -> Execution | None:
        row = self.db.one(f"SELECT {_COLS} FROM executions WHERE id = ?", (execution_id,))
        if row is None:
            return None
        ex = self._execution(row)
        attempts: dict[str, list[Attempt]] = {}
        for a in self.db.query("SELECT task_run_id, attempt, state, worker, error, started_at, ended_at, resources "
                               "FROM attempts WHERE execution_id = ? ORDER BY task_run_id, attempt", (execution_id,)):
            attempts.setdefault(a[0], []).append(Attempt(a[1], State(a[2]), a[5], a[6], a[4], a[3], loads(a[7]),
                                                         new=False))
        for r in self.db.query("SELECT id, parent_id, task_id, value, iteration, state, attempt, outputs, data, error, "
                               "created_at, started_at, ended_at, seq FROM task_runs WHERE execution_id = ? ORDER BY seq",
                               (execution_id,)):
            meta, progress = TaskRun.split_data(loads(r[8]))
            tr = TaskRun(id=r[0], execution_id=execution_id, parent_id=r[1], task_id=r[2], value=r[3], iteration=r[4],
                         state=State(r[5]), attempt=r[6], outputs=self._outputs_value(r[7]), meta=meta,
                         progress=progress, error=r[9], created_at=r[10], started_at=r[11], ended_at=r[12], seq=r[13],
                         attempts=attempts.get(r[0], []), new=False, dirty=False)
            ex.add(tr)
            if tr.state in SUCCEEDED:
                ex.record_outputs(tr)
        return ex

    def json(self, execution_id: str) -> dict[str, Any] | None:
        """The execution as the API and ``tiercel run --json`` show it (Kestra's field names)."""
        ex = self.load(execution_id)
        return ex.to_json() if ex else None

    def state(self, execution_id: str) -> State | None:
        """Only the state of an execution (cheap: no task runs loaded)."""
        row = self.db.one("SELECT state FROM executions WHERE id = ?", (execution_id,))
        return State(row[0]) if row else None

    def id_for_dedupe_key(self, key: str) -> str | None:
        row = self.db.one("SELECT id FROM executions WHERE dedupe_key = ?", (key,))
        return row[0] if row else None

    def search(self, namespace: str | None = None, flow_id: str | None = None, states: list[str] | None = None,
               labels: dict[str, str] | None = None, start: float | None = None, end: float | None = None,
               page: int = 1, size: int = 25, scopes: list[str] | None = None) -> tuple[list[dict[str, Any]], int]:
        """A page of executions and the total; *scopes* (namespace prefixes, None for all) bounds what is seen."""
        where, params = ["1 = 1"], []
        if scopes is not None:
            where.append("(" + " OR ".join(["(namespace = ? OR substr(namespace, 1, ?) = ?)"] * len(scopes) or ["1 = 0"]) + ")")
            for prefix in scopes:
                params += [prefix, len(prefix) + 1, prefix + "."]
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
            field, field_params = self.db.json_field("labels", key)
            where.append(f"{field} = ?")
            params += [*field_params, value]
        clause = " AND ".join(where)
        total = self.db.one(f"SELECT COUNT(*) FROM executions WHERE {clause}", params)[0]
        rows = self.db.query(f"SELECT {_COLS} FROM executions WHERE {clause} ORDER BY created_at DESC "
                             f"LIMIT ? OFFSET ?", [*params, size, max(page - 1, 0) * size])
        return [self._execution(r).to_json() for r in rows], total

    def triggers_of(self, flow_id: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """The ``trigger`` column and dedupe key of a flow's executions, oldest first (what tests and checks read)."""
        sql = 'SELECT id, "trigger", dedupe_key FROM executions WHERE flow_id = ?'
        params: list[Any] = [flow_id]
        if namespace is not None:
            sql += " AND namespace = ?"
            params.append(namespace)
        return [{"id": r[0], "trigger": loads(r[1]), "dedupeKey": r[2]}
                for r in self.db.query(sql + f" ORDER BY created_at, {self.db.insert_order}", params)]

    def count_running(self, namespace: str, flow_id: str) -> int:
        """Executions of the flow that hold a concurrency slot (started and not ended)."""
        return self.db.one(f"SELECT COUNT(*) FROM executions WHERE namespace = ? AND flow_id = ? AND state IN {_RUNNING}",
                           (namespace, flow_id))[0]

    def count_active(self, namespace: str, flow_id: str) -> int:
        """Executions of the flow not yet ended (queued ones included)."""
        return self.db.one(f"SELECT COUNT(*) FROM executions WHERE namespace = ? AND flow_id = ? AND state IN {_ACTIVE}",
                           (namespace, flow_id))[0]

    def oldest_queued(self, namespace: str, flow_id: str) -> str | None:
        row = self.db.one("SELECT id FROM executions WHERE namespace = ? AND flow_id = ? AND state = 'QUEUED' "
                          f"ORDER BY created_at, {self.db.insert_order} LIMIT 1", (namespace, flow_id))
        return row[0] if row else None

    def latest_per_flow(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """The newest execution of each flow (under *namespace* when given): id, state and dates."""
        where, params = "", []
        if namespace:
            where, params = "WHERE namespace = ? OR namespace LIKE ?", [namespace, namespace + ".%"]
        rows = self.db.query(
            f"SELECT e.namespace, e.flow_id, e.id, e.state, e.created_at, e.ended_at FROM executions e JOIN "
            f"(SELECT namespace, flow_id, MAX(created_at) AS latest FROM executions {where} GROUP BY namespace, flow_id) m "
            f"ON m.namespace = e.namespace AND m.flow_id = e.flow_id AND m.latest = e.created_at", params)
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for r in rows:  # two executions created in the same instant: either is the latest
            seen[(r[0], r[1])] = {"namespace": r[0], "flowId": r[1], "id": r[2], "state": r[3],
                                  "startDate": iso(r[4]), "endDate": iso(r[5])}
        return list(seen.values())

    def unfinished(self, owners: Iterable[str | None] | None = None) -> list[tuple[str, str | None, str, str, str]]:
        """(id, owner, state, namespace, flow_id) of executions not ended, oldest first (only of *owners* if given)."""
        rows = self.db.query(f"SELECT id, owner, state, namespace, flow_id FROM executions WHERE state IN {_ACTIVE} "
                             f"ORDER BY created_at, {self.db.insert_order}")
        wanted = set(owners) if owners is not None else None
        return [tuple(r) for r in rows if wanted is None or r[1] in wanted]  # type: ignore[misc]

    # --- ownership: which process runs an execution -----------------------------------------
    def owner(self, execution_id: str) -> str | None:
        row = self.db.one("SELECT owner FROM executions WHERE id = ?", (execution_id,))
        return row[0] if row else None

    def owners(self) -> list[str]:
        """Processes that own an unfinished execution."""
        return [r[0] for r in self.db.query(
            f"SELECT DISTINCT owner FROM executions WHERE owner IS NOT NULL AND state IN {_ACTIVE}")]

    def set_owner(self, execution_id: str, owner: str | None) -> None:
        self.db.execute("UPDATE executions SET owner = ? WHERE id = ?", (owner, execution_id))

    def take_over(self, execution_id: str, old_owner: str | None, new_owner: str) -> bool:
        """Become the owner of an orphaned execution, unless another process just did."""
        if old_owner is None:
            return self.db.execute("UPDATE executions SET owner = ? WHERE id = ? AND owner IS NULL",
                                   (new_owner, execution_id)) == 1
        return self.db.execute("UPDATE executions SET owner = ? WHERE id = ? AND owner = ?",
                               (new_owner, execution_id, old_owner)) == 1

    def release(self, owner: str) -> None:
        """Leave this process's unfinished executions to whichever process starts next."""
        self.db.execute(f"UPDATE executions SET owner = NULL WHERE owner = ? AND state IN {_ACTIVE}", (owner,))

    # --- large outputs ----------------------------------------------------------------
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


def _row(ex: Execution, inputs: dict[str, Any]) -> tuple[Any, ...]:
    return (ex.id, ex.namespace, ex.flow_id, ex.flow_revision, ex.flow_hash, ex.state, dumps(inputs),
            dumps(ex.outputs), dumps(ex.labels), dumps(ex.trigger), ex.parent_id, ex.parent_task_run_id,
            ex.original_id, ex.dedupe_key, ex.error, ex.created_at, ex.started_at, ex.ended_at)


def _execution(r: tuple[Any, ...]) -> Execution:
    return Execution(id=r[0], namespace=r[1], flow_id=r[2], flow_revision=r[3], flow_hash=r[4], state=State(r[5]),
                     inputs=loads(r[6]) or {}, outputs=loads(r[7]) or {}, labels=loads(r[8]) or {},
                     trigger=loads(r[9]), parent_id=r[10], parent_task_run_id=r[11], original_id=r[12],
                     dedupe_key=r[13], error=r[14], created_at=r[15], started_at=r[16], ended_at=r[17],
                     new=False, dirty=False)
