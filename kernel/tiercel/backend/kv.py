"""The key/value store: JSON values per namespace, with an optional expiry."""

from __future__ import annotations

import json
import time
from typing import Any

from tiercel.backend.db import Database
from tiercel.model import dumps


class KVStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, namespace: str, key: str) -> Any:
        row = self.db.one("SELECT value, expires_at FROM kv WHERE namespace = ? AND key = ?", (namespace, key))
        if row is None or (row[1] is not None and row[1] < time.time()):
            return None
        return json.loads(row[0])

    def set(self, namespace: str, key: str, value: Any, ttl: float | None = None) -> None:
        self.db.execute("INSERT INTO kv (namespace, key, value, expires_at, updated_at) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
                        "expires_at = excluded.expires_at, updated_at = excluded.updated_at",
                        (namespace, key, dumps(value), time.time() + ttl if ttl else None, time.time()))
