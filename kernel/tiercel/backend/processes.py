"""Live processes with their heartbeats, and commands sent to executions another process owns."""

from __future__ import annotations

import time
from typing import Any

from tiercel.backend.db import Database
from tiercel.model import dumps, loads


class ProcessStore:
    """One row per live process (not per job): registered at start, a heartbeat every 2 s, removed at stop."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def register(self, process_id: str, kind: str, host: str, pid: int, version: str) -> None:
        now = time.time()
        self.db.execute("INSERT INTO processes (id, kind, host, pid, version, started_at, last_seen) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen",
                        (process_id, kind, host, pid, version, now, now))

    def heartbeat(self, process_id: str) -> None:
        self.db.execute("UPDATE processes SET last_seen = ? WHERE id = ?", (time.time(), process_id))

    def capacity(self, process_id: str, slots: int, busy: int, queues: list[str] | None = None) -> None:
        """A worker's slots, how many are busy, and the queues it takes jobs from (with its heartbeat)."""
        self.db.execute("UPDATE processes SET last_seen = ?, slots = ?, busy = ?, queues = ? WHERE id = ?",
                        (time.time(), slots, busy, dumps(queues) if queues is not None else None, process_id))

    def remove(self, process_id: str) -> None:
        self.db.execute("DELETE FROM processes WHERE id = ?", (process_id,))

    def get(self, process_id: str) -> tuple[str, int, float] | None:
        """(host, pid, last heartbeat) of a registered process."""
        row = self.db.one("SELECT host, pid, last_seen FROM processes WHERE id = ?", (process_id,))
        return (row[0], row[1], row[2]) if row else None

    def all(self) -> list[dict[str, Any]]:
        return [{"id": r[0], "kind": r[1], "host": r[2], "pid": r[3], "version": r[4], "startedAt": r[5],
                 "lastSeen": r[6], "slots": r[7], "busy": r[8], "queues": loads(r[9])} for r in self.db.query(
                    "SELECT id, kind, host, pid, version, started_at, last_seen, slots, busy, queues FROM processes "
                    "ORDER BY started_at")]


class CommandStore:
    """kill, resume, restart and start sent to an execution owned by another process; deleted once applied."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def send(self, execution_id: str, kind: str, payload: dict[str, Any] | None = None) -> None:
        self.db.execute("INSERT INTO commands (execution_id, kind, payload, created_at) VALUES (?, ?, ?, ?)",
                        (execution_id, kind, dumps(payload or {}), time.time()))

    def pending(self) -> list[tuple[int, str, str, dict[str, Any]]]:
        """(id, execution id, kind, payload) of every command not yet applied, oldest first."""
        return [(r[0], r[1], r[2], loads(r[3]) or {}) for r in self.db.query(
            "SELECT id, execution_id, kind, payload FROM commands ORDER BY id")]

    def delete(self, command_id: int) -> None:
        self.db.execute("DELETE FROM commands WHERE id = ?", (command_id,))
