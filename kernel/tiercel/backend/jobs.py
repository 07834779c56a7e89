"""The job queue between executors and workers, and the results coming back.

Both directions are an outbox: an executor inserts a step's jobs in the transaction that
saves the step; a worker deletes its job and writes its result in one transaction, and only
while it still holds the job's lease (a reaped attempt's late result is discarded). The
executor deletes a result in the transaction that applies it. ``jobs`` and ``results`` hold
live rows only.

Claims take the oldest queued jobs of one queue, as many as the worker has free slots:
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (claimers never wait on each other), a
``BEGIN IMMEDIATE`` transaction on SQLite (one writer at a time, a few milliseconds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tiercel.backend.db import Database
from tiercel.model import dumps, loads

DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class ClaimedJob:
    task_run_id: str
    attempt: int
    execution_id: str
    queue: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class ResultRow:
    task_run_id: str
    attempt: int
    execution_id: str
    state: str
    outputs: Any
    error: str | None
    started_at: float | None
    ended_at: float | None
    worker: str | None


def _dialect(db: Any) -> str:
    return str(getattr(db, "dialect", "sqlite"))


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- executor side -------------------------------------------------------------------
    def enqueue(self, rows: list[tuple[str, int, str, str, dict[str, Any]]]) -> None:
        """Insert jobs (task run id, attempt, execution id, queue, payload); joins the caller's transaction."""
        if not rows:
            return
        now = time.time()
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO jobs (task_run_id, attempt, execution_id, queue, payload, state, created_at) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?) ON CONFLICT DO NOTHING",
                [(tr, attempt, ex, queue, dumps(payload), now) for tr, attempt, ex, queue, payload in rows])

    def unowned_created(self, limit: int = 64) -> list[str]:
        """New executions a process without the executor duty left for an executor to take, oldest first."""
        return [r[0] for r in self.db.query(
            "SELECT id FROM executions WHERE owner IS NULL AND state = 'CREATED' ORDER BY created_at LIMIT ?",
            (limit,))]

    def cancel(self, task_run_id: str) -> str | None:
        """Cancel a task run's job: 'deleted' when it was not claimed yet, 'signalled' when a worker runs it."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT attempt, state FROM jobs WHERE task_run_id = ? ORDER BY attempt DESC",
                               (task_run_id,)).fetchone()
            if row is None:
                return None
            if row[1] == "queued":
                conn.execute("DELETE FROM jobs WHERE task_run_id = ? AND attempt = ?", (task_run_id, row[0]))
                return "deleted"
            conn.execute("UPDATE jobs SET state = 'cancel' WHERE task_run_id = ? AND attempt = ?",
                         (task_run_id, row[0]))
            return "signalled"

    def in_flight(self, execution_id: str) -> set[tuple[str, int]]:
        """(task run, attempt) of the execution with a job or an unapplied result: not lost."""
        rows = self.db.query("SELECT task_run_id, attempt FROM jobs WHERE execution_id = ? "
                             "UNION SELECT task_run_id, attempt FROM results WHERE execution_id = ?",
                             (execution_id, execution_id))
        return {(r[0], r[1]) for r in rows}

    def results_for(self, owner: str, limit: int = 512) -> list[ResultRow]:
        """Unapplied results of executions *owner* runs, oldest first."""
        rows = self.db.query(
            "SELECT r.task_run_id, r.attempt, r.execution_id, r.state, r.outputs, r.error, r.started_at, r.ended_at, "
            "r.worker FROM results r JOIN executions e ON e.id = r.execution_id WHERE e.owner = ? "
            "ORDER BY r.created_at LIMIT ?", (owner, limit))
        return [ResultRow(r[0], r[1], r[2], r[3], loads(r[4]), r[5], r[6], r[7], r[8]) for r in rows]

    def applied(self, keys: list[tuple[str, int]]) -> None:
        """Delete applied results; call inside the transaction that saves what they changed."""
        if keys:
            with self.db.transaction() as conn:
                conn.executemany("DELETE FROM results WHERE task_run_id = ? AND attempt = ?", keys)

    def forget(self, execution_id: str) -> None:
        """An execution ended: nothing of it is waited for any more (a late LOST, a job a kill left behind)."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM jobs WHERE execution_id = ? AND state = 'queued'", (execution_id,))
            conn.execute("DELETE FROM results WHERE execution_id = ?", (execution_id,))

    def reap(self) -> list[tuple[str, str, int]]:
        """Jobs whose lease expired (their worker died or hung) become LOST results: (execution, task run, attempt)."""
        now = time.time()
        skip = " FOR UPDATE SKIP LOCKED" if _dialect(self.db) == "postgresql" else ""
        reaped = []
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT task_run_id, attempt, execution_id, worker FROM jobs "
                "WHERE state <> 'queued' AND lease_until < ?" + skip, (now,)).fetchall()
            for tr, attempt, ex, worker in rows:
                if not conn.execute("DELETE FROM jobs WHERE task_run_id = ? AND attempt = ? AND worker = ?",
                                    (tr, attempt, worker)).rowcount:
                    continue  # completed (or reaped) meanwhile
                reaped.append((ex, tr, attempt))
                conn.execute(
                    "INSERT INTO results (task_run_id, attempt, execution_id, state, error, started_at, ended_at, "
                    "worker, created_at) VALUES (?, ?, ?, 'LOST', ?, NULL, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (tr, attempt, ex, f"worker {worker} stopped heartbeating (its lease expired)", now, worker, now))
        return reaped

    # --- worker side ---------------------------------------------------------------------
    def claim(self, worker: str, queue: str, limit: int, lease: float) -> list[ClaimedJob]:
        """Take up to *limit* of the oldest queued jobs of *queue* for *worker*, leased for *lease* seconds."""
        if limit <= 0:
            return []
        now = time.time()
        if _dialect(self.db) == "postgresql":
            rows = self.db.query(
                "UPDATE jobs j SET state = 'running', worker = ?, claimed_at = ?, lease_until = ? FROM ("
                "SELECT task_run_id, attempt FROM jobs WHERE queue = ? AND state = 'queued' ORDER BY created_at "
                "LIMIT ? FOR UPDATE SKIP LOCKED) c WHERE j.task_run_id = c.task_run_id AND j.attempt = c.attempt "
                "RETURNING j.task_run_id, j.attempt, j.execution_id, j.queue, j.payload",
                (worker, now, now + lease, queue, limit))
            return [ClaimedJob(r[0], r[1], r[2], r[3], loads(r[4]) or {}) for r in rows]
        if self.db.one("SELECT 1 FROM jobs WHERE queue = ? AND state = 'queued' LIMIT 1", (queue,)) is None:
            return []  # the common idle case costs a read, not a write lock
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT task_run_id, attempt, execution_id, queue, payload FROM jobs "
                "WHERE queue = ? AND state = 'queued' ORDER BY created_at LIMIT ?", (queue, limit)).fetchall()
            conn.executemany(
                "UPDATE jobs SET state = 'running', worker = ?, claimed_at = ?, lease_until = ? "
                "WHERE task_run_id = ? AND attempt = ?", [(worker, now, now + lease, r[0], r[1]) for r in rows])
        return [ClaimedJob(r[0], r[1], r[2], r[3], loads(r[4]) or {}) for r in rows]

    def extend(self, worker: str, lease: float) -> list[tuple[str, int]]:
        """Extend the leases of *worker*'s jobs; returns the (task run, attempt) it is asked to cancel."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE jobs SET lease_until = ? WHERE worker = ?", (time.time() + lease, worker))
            rows = conn.execute("SELECT task_run_id, attempt FROM jobs WHERE worker = ? AND state = 'cancel'",
                                (worker,)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def complete(self, worker: str, result: ResultRow) -> bool:
        """Delete the job and write its result, in one transaction; False when the lease was lost (stale)."""
        with self.db.transaction() as conn:
            gone = conn.execute("DELETE FROM jobs WHERE task_run_id = ? AND attempt = ? AND worker = ?",
                                (result.task_run_id, result.attempt, worker)).rowcount
            if not gone:
                return False
            conn.execute(
                "INSERT INTO results (task_run_id, attempt, execution_id, state, outputs, error, started_at, "
                "ended_at, worker, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (result.task_run_id, result.attempt, result.execution_id, result.state, dumps(result.outputs),
                 result.error, result.started_at, result.ended_at, worker, time.time()))
        return True

    def release(self, worker: str) -> int:
        """A worker stopping cleanly: its jobs go back to the queue at once (those it runs are cancelled first)."""
        return self.db.execute("UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL, claimed_at = NULL "
                               "WHERE worker = ?", (worker,))

    # --- cluster status ------------------------------------------------------------------
    def depth(self) -> list[dict[str, Any]]:
        """Per queue: jobs waiting, jobs running, and how long the oldest waiting one has waited."""
        now = time.time()
        rows = self.db.query(
            "SELECT queue, SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN state <> 'queued' THEN 1 ELSE 0 END), "
            "MIN(CASE WHEN state = 'queued' THEN created_at END) FROM jobs GROUP BY queue ORDER BY queue")
        return [{"queue": r[0], "waiting": int(r[1] or 0), "running": int(r[2] or 0),
                 "oldestWaitingSeconds": round(now - r[3], 3) if r[3] is not None else None} for r in rows]
