"""Deployed flows with their revisions, and the source of every flow an execution ran."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from tiercel.backend.db import Database


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:32]


class FlowStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save_source(self, source: str, path: str | None = None) -> str:
        """Keep a flow's source (once per content); returns its hash, which executions refer to."""
        digest = source_hash(source)
        self.db.execute("INSERT INTO flow_sources (hash, source, path) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING",
                        (digest, source, path))
        return digest

    def source(self, digest: str) -> tuple[str, str | None] | None:
        row = self.db.one("SELECT source, path FROM flow_sources WHERE hash = ?", (digest,))
        return (row[0], row[1]) if row else None

    def deploy(self, namespace: str, flow_id: str, source: str) -> tuple[int, bool]:
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

    def delete(self, namespace: str, flow_id: str) -> bool:
        latest = self.get(namespace, flow_id)
        if latest is None:
            return False
        self.db.execute("INSERT INTO flows (namespace, id, revision, hash, deleted, created_at) VALUES (?, ?, ?, ?, 1, ?)",
                        (namespace, flow_id, latest["revision"] + 1, latest["hash"], time.time()))
        return True

    def get(self, namespace: str, flow_id: str, revision: int | None = None) -> dict[str, Any] | None:
        """The latest (or given) revision of a deployed flow, None when absent or deleted."""
        sql = ("SELECT f.revision, f.hash, f.deleted, s.source, f.created_at FROM flows f "
               "JOIN flow_sources s ON s.hash = f.hash WHERE f.namespace = ? AND f.id = ?")
        if revision is None:
            row = self.db.one(sql + " ORDER BY f.revision DESC LIMIT 1", (namespace, flow_id))
            if row is None or row[2]:
                return None
        else:
            row = self.db.one(sql + " AND f.revision = ?", (namespace, flow_id, revision))
            if row is None:
                return None
        return {"namespace": namespace, "id": flow_id, "revision": row[0], "hash": row[1],
                "source": row[3], "updated": row[4]}

    def list(self, namespace: str | None = None, query: str | None = None) -> list[dict[str, Any]]:
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

    def signature(self) -> tuple[Any, ...]:
        """Changes whenever a flow is deployed, updated or deleted (the flows table only grows)."""
        return tuple(self.db.one("SELECT COUNT(*), MAX(created_at) FROM flows") or ())
