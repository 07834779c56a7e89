"""The embedded database: SQLite in WAL mode through the stdlib driver.

SQLAlchemy defines the schema and Alembic migrates it, but the hot path uses ``sqlite3``
directly: importing SQLAlchemy alone costs ~0.2 s, more than a whole 1-task run may take.
WAL with ``synchronous=NORMAL`` survives a killed process (not a power cut) at a fraction
of the cost of a full fsync per step.

The stores write dialect-neutral SQL (``?`` placeholders, ``ON CONFLICT``) and ask the
database for the few things that differ between SQLite and PostgreSQL
(``tiercel.backend.postgres``): :meth:`Database.lock`, :meth:`Database.json_field` and
:attr:`Database.insert_order`.
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

from tiercel.backend import SCHEMA_HEAD, SchemaMismatch, mask_url


class Database:
    """One SQLite connection guarded by a lock; writes go through :meth:`transaction`."""

    dialect = "sqlite"
    #: An expression that orders rows of a table as they were inserted (a tie-breaker after a date).
    insert_order = "rowid"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
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
            check_revision(version[0] if version else None, self.url)

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

    def lock(self, *key: Any) -> None:
        """Serialize the current transaction with every other one that locks *key* (in any process).

        SQLite's ``BEGIN IMMEDIATE`` already holds the database's write lock, so there is nothing to do;
        PostgreSQL takes a transaction-scoped advisory lock.
        """

    def json_field(self, column: str, key: str) -> tuple[str, list[Any]]:
        """SQL (with its parameters) for the text value of *key* in the JSON object held by *column*."""
        return f"json_extract({column}, ?)", [f'$."{key}"']

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


def revisions() -> list[str]:
    """The revisions this code knows, oldest first (from the migrations' file names, without importing Alembic)."""
    folder = Path(__file__).parent / "migrations" / "versions"
    return sorted(p.name.split("_", 1)[0] for p in folder.glob("[0-9]*_*.py"))


def check_revision(current: str | None, url: str) -> None:
    """Refuse a database whose schema is not the one this code expects (behind or ahead)."""
    if current == SCHEMA_HEAD:
        return
    where = mask_url(url)
    if current in revisions():
        raise SchemaMismatch(
            f"the database {where} has schema revision {current}, this Tiercel needs {SCHEMA_HEAD}: "
            f"run `tiercel db upgrade --db {where}` (stop the other Tiercel processes first)", current)
    raise SchemaMismatch(
        f"the database {where} has schema revision {current or 'none'}, newer than this Tiercel knows "
        f"(its head is {SCHEMA_HEAD}): upgrade Tiercel on this host, or run it against another database", current)


def alembic_url(url: str) -> str:
    """*url* as SQLAlchemy names it (psycopg 3 for PostgreSQL)."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _alembic(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", alembic_url(url).replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at *url* to *revision* (the head by default) with Alembic."""
    from alembic import command

    command.upgrade(_alembic(url), revision)


def current_revision(url: str) -> str | None:
    """The schema revision the database at *url* is at (None: not created yet)."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(alembic_url(url))
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
            return row[0] if row else None
    finally:
        engine.dispose()


def now() -> float:
    return time.time()
