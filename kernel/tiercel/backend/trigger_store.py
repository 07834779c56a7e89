"""Trigger rows (next date, last fire, enabled, state) and schedule ticks: the scheduler's store.

A schedule tick is claimed by inserting ``(namespace, flow_id, trigger_id, key)`` into
``trigger_ticks`` (its primary key) inside the transaction that creates the execution:
whichever scheduler inserts first fires it, the others see the row and move on. There
is no lock to expire or unlock.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tiercel.backend.db import Database


class TriggerStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- trigger rows -----------------------------------------------------------------
    def get(self, namespace: str, flow_id: str, trigger_id: str) -> dict[str, Any] | None:
        row = self.db.one("SELECT type, next_at, last_at, last_execution_id, disabled, state, updated_at FROM triggers "
                          "WHERE namespace = ? AND flow_id = ? AND trigger_id = ?", (namespace, flow_id, trigger_id))
        return None if row is None else _row(namespace, flow_id, trigger_id, row)

    def all(self, namespace: str | None = None, flow_id: str | None = None) -> dict[tuple[str, str, str], dict[str, Any]]:
        sql = ("SELECT namespace, flow_id, trigger_id, type, next_at, last_at, last_execution_id, disabled, state, "
               "updated_at FROM triggers WHERE 1 = 1")
        params: list[Any] = []
        if namespace:
            sql += " AND (namespace = ? OR namespace LIKE ?)"
            params += [namespace, namespace + ".%"]
        if flow_id:
            sql += " AND flow_id = ?"
            params.append(flow_id)
        return {(r[0], r[1], r[2]): _row(r[0], r[1], r[2], r[3:]) for r in self.db.query(sql, params)}

    def disabled_keys(self) -> set[tuple[str, str, str]]:
        return {(r[0], r[1], r[2]) for r in self.db.query(
            "SELECT namespace, flow_id, trigger_id FROM triggers WHERE disabled = 1")}

    def upsert(self, namespace: str, flow_id: str, trigger_id: str, type_: str, next_at: float | None,
               state: dict[str, Any] | None) -> None:
        """Create the row, or reset its schedule (next date and state) when it exists."""
        self.db.execute(
            "INSERT INTO triggers (namespace, flow_id, trigger_id, type, next_at, state, disabled, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (namespace, flow_id, trigger_id) DO UPDATE SET "
            "type = excluded.type, next_at = excluded.next_at, state = excluded.state, updated_at = excluded.updated_at",
            (namespace, flow_id, trigger_id, type_, next_at, _dumps(state), time.time()))

    def set_disabled(self, namespace: str, flow_id: str, trigger_id: str, type_: str, disabled: bool) -> None:
        self.db.execute(
            "INSERT INTO triggers (namespace, flow_id, trigger_id, type, disabled, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (namespace, flow_id, trigger_id) DO UPDATE SET disabled = excluded.disabled, "
            "updated_at = excluded.updated_at", (namespace, flow_id, trigger_id, type_, int(disabled), time.time()))

    def save_state(self, namespace: str, flow_id: str, trigger_id: str, state: dict[str, Any],
                   type_: str | None = None) -> None:
        """Replace the trigger's state dict (creating its row when *type_* is given and it has none)."""
        if type_ is None:
            self.db.execute("UPDATE triggers SET state = ?, updated_at = ? WHERE namespace = ? AND flow_id = ? "
                            "AND trigger_id = ?", (_dumps(state), time.time(), namespace, flow_id, trigger_id))
            return
        self.db.execute("INSERT INTO triggers (namespace, flow_id, trigger_id, type, state, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, flow_id, trigger_id) DO UPDATE SET "
                        "state = excluded.state, updated_at = excluded.updated_at",
                        (namespace, flow_id, trigger_id, type_, _dumps(state), time.time()))

    def state(self, namespace: str, flow_id: str, trigger_id: str) -> dict[str, Any]:
        """The state dict a polling trigger keeps across polls (empty when it has none yet)."""
        row = self.db.one("SELECT state FROM triggers WHERE namespace = ? AND flow_id = ? AND trigger_id = ?",
                          (namespace, flow_id, trigger_id))
        return json.loads(row[0]) if row and row[0] else {}

    def advance(self, namespace: str, flow_id: str, trigger_id: str, next_at: float | None,
                fired_at: float | None = None, execution_id: str | None = None) -> None:
        """Move the next date forward (never back) and record the last fire."""
        with self.db.transaction() as conn:
            if next_at is not None:
                conn.execute("UPDATE triggers SET next_at = CASE WHEN COALESCE(next_at, 0) > ? THEN next_at ELSE ? END, "
                             "updated_at = ? WHERE namespace = ? AND flow_id = ? AND trigger_id = ?",
                             (next_at, next_at, time.time(), namespace, flow_id, trigger_id))
            if execution_id is not None:
                conn.execute("UPDATE triggers SET last_at = ?, last_execution_id = ? WHERE namespace = ? "
                             "AND flow_id = ? AND trigger_id = ?", (fired_at, execution_id, namespace, flow_id, trigger_id))

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        self.db.execute("DELETE FROM triggers WHERE namespace = ? AND flow_id = ?", (namespace, flow_id))

    # --- ticks ------------------------------------------------------------------------
    def claim_tick(self, namespace: str, flow_id: str, trigger_id: str, key: str) -> bool:
        """Insert the tick; False when another scheduler (or an earlier run) already did."""
        with self.db.transaction() as conn:
            return conn.execute("INSERT INTO trigger_ticks (namespace, flow_id, trigger_id, key, created_at) "
                                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                (namespace, flow_id, trigger_id, key, time.time())).rowcount == 1

    def set_tick_execution(self, namespace: str, flow_id: str, trigger_id: str, key: str, execution_id: str) -> None:
        self.db.execute("UPDATE trigger_ticks SET execution_id = ? WHERE namespace = ? AND flow_id = ? AND trigger_id = ? "
                        "AND key = ?", (execution_id, namespace, flow_id, trigger_id, key))


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _row(namespace: str, flow_id: str, trigger_id: str, r: tuple) -> dict[str, Any]:
    return {"namespace": namespace, "flowId": flow_id, "triggerId": trigger_id, "type": r[0], "next_at": r[1],
            "last_at": r[2], "last_execution_id": r[3], "disabled": bool(r[4]),
            "state": json.loads(r[5]) if r[5] else {}, "updated_at": r[6]}
