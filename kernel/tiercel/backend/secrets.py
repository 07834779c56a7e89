"""The secret store's rows: sealed (encrypted) values per namespace. Sealing is the caller's job."""

from __future__ import annotations

import time

from tiercel.backend.db import Database


class SecretStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, namespace: str, name: str) -> bytes | None:
        row = self.db.one("SELECT sealed FROM secrets WHERE namespace = ? AND name = ?", (namespace, name))
        return bytes(row[0]) if row else None

    def put(self, namespace: str, name: str, sealed: bytes) -> None:
        self.db.execute(
            "INSERT INTO secrets (namespace, name, sealed, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (namespace, name) DO UPDATE SET sealed = excluded.sealed, "
            "updated_at = excluded.updated_at",
            (namespace, name, sealed, time.time()),
        )

    def delete(self, namespace: str, name: str) -> bool:
        return self.db.execute("DELETE FROM secrets WHERE namespace = ? AND name = ?", (namespace, name)) > 0

    def names(self, namespace: str | None = None) -> list[tuple[str, str, float]]:
        """(namespace, name, updated_at) of the stored secrets, of one namespace or all."""
        if namespace is None:
            rows = self.db.query("SELECT namespace, name, updated_at FROM secrets ORDER BY namespace, name")
        else:
            rows = self.db.query(
                "SELECT namespace, name, updated_at FROM secrets WHERE namespace = ? ORDER BY name", (namespace,)
            )
        return [(r[0], r[1], r[2]) for r in rows]
