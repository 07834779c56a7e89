"""The embedded database: SQLite in WAL mode through the stdlib driver.

SQLAlchemy defines the schema and Alembic migrates it, but the hot path uses ``sqlite3``
directly: importing SQLAlchemy alone costs ~0.2 s, more than a whole 1-task run may take.
WAL with ``synchronous=NORMAL`` survives a killed process (not a power cut) at a fraction
of the cost of a full fsync per step.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from tiercel.backend import SCHEMA_HEAD


class Database:
    """One SQLite connection guarded by a lock; writes go through :meth:`transaction`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._lock = threading.RLock()
        self._depth = 0
        self._ensure_schema()

    # --- schema -----------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        with self._lock:
            row = self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='alembic_version'").fetchone()
            if row is None:
                ddl = resources.files("tiercel.backend").joinpath("schema_sqlite.sql").read_text()
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    again = self._conn.execute(
                        "SELECT name FROM sqlite_master WHERE type='table' AND name='alembic_version'").fetchone()
                    if again is None:  # another process may have created it meanwhile
                        for statement in ddl.split(";\n"):
                            if statement.strip():
                                self._conn.execute(statement)
                        self._conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
                        self._conn.execute("INSERT INTO alembic_version VALUES (?)", (SCHEMA_HEAD,))
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                return
            version = self._conn.execute("SELECT version_num FROM alembic_version").fetchone()
            if version is None or version[0] != SCHEMA_HEAD:
                migrate(f"sqlite:///{self.path}")

    # --- access -----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE); nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def migrate(url: str) -> None:
    """Upgrade the database at *url* to the head revision with Alembic."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "head")


def now() -> float:
    return time.time()
