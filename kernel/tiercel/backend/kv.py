"""The key/value store: typed JSON values per namespace, with an optional expiry.

Each write is one statement, so concurrent writers of a key never lose a write that reported
success: the last one wins, and ``overwrite=False`` lets exactly one of them create the key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from tiercel.backend.db import Database
from tiercel.model import dumps


@dataclass
class KVEntry:
    key: str
    value: Any
    type: str
    expires_at: float | None
    updated_at: float


class KVStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def entry(self, namespace: str, key: str) -> KVEntry | None:
        """The live entry of *key* (None when missing or expired)."""
        row = self.db.one("SELECT key, value, type, expires_at, updated_at FROM kv WHERE namespace = ? AND key = ? "
                          "AND (expires_at IS NULL OR expires_at >= ?)", (namespace, key, time.time()))
        return None if row is None else KVEntry(row[0], json.loads(row[1]), row[2] or "JSON", row[3], row[4])

    def get(self, namespace: str, key: str) -> Any:
        found = self.entry(namespace, key)
        return None if found is None else found.value

    def set(self, namespace: str, key: str, value: Any, ttl: float | None = None, type: str = "JSON",
            overwrite: bool = True) -> bool:
        """Store *value*; with ``overwrite=False``, False (and nothing written) when a live value exists."""
        now = time.time()
        params = (namespace, key, dumps(value), type, now + ttl if ttl else None, now)
        if overwrite:
            self.db.execute("INSERT INTO kv (namespace, key, value, type, expires_at, updated_at) "
                            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE SET "
                            "value = excluded.value, type = excluded.type, expires_at = excluded.expires_at, "
                            "updated_at = excluded.updated_at", params)
            return True
        return self.db.execute("INSERT INTO kv (namespace, key, value, type, expires_at, updated_at) "
                               "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE SET "
                               "value = excluded.value, type = excluded.type, expires_at = excluded.expires_at, "
                               "updated_at = excluded.updated_at WHERE kv.expires_at IS NOT NULL "
                               "AND kv.expires_at < excluded.updated_at", params) > 0

    def entries(self, namespace: str, prefix: str = "") -> list[KVEntry]:
        """Live entries of *namespace* whose key starts with *prefix*, sorted by key."""
        rows = self.db.query("SELECT key, value, type, expires_at, updated_at FROM kv WHERE namespace = ? "
                             "AND substr(key, 1, ?) = ? AND (expires_at IS NULL OR expires_at >= ?) ORDER BY key",
                             (namespace, len(prefix), prefix, time.time()))
        return [KVEntry(r[0], json.loads(r[1]), r[2] or "JSON", r[3], r[4]) for r in rows]

    def delete(self, namespace: str, key: str) -> bool:
        return self.db.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key)) > 0

    def all_keys(self, namespace: str, expired_only: bool = False) -> list[str]:
        """Every key of *namespace*, expired ones included (only those with *expired_only*)."""
        if expired_only:
            rows = self.db.query("SELECT key FROM kv WHERE namespace = ? AND expires_at IS NOT NULL AND expires_at < ? "
                                 "ORDER BY key", (namespace, time.time()))
        else:
            rows = self.db.query("SELECT key FROM kv WHERE namespace = ? ORDER BY key", (namespace,))
        return [r[0] for r in rows]

    def purge(self, namespace: str, expired_only: bool = True, prefix: str = "") -> int:
        """Delete the expired keys of *namespace* (every key under *prefix* without *expired_only*)."""
        if expired_only:
            return self.db.execute("DELETE FROM kv WHERE namespace = ? AND substr(key, 1, ?) = ? "
                                   "AND expires_at IS NOT NULL AND expires_at < ?",
                                   (namespace, len(prefix), prefix, time.time()))
        return self.db.execute("DELETE FROM kv WHERE namespace = ? AND substr(key, 1, ?) = ?",
                               (namespace, len(prefix), prefix))
