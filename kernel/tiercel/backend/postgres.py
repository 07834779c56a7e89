"""PostgreSQL for the same stores: psycopg 3 with a small connection pool per process.

The stores write one dialect-neutral SQL: ``?`` placeholders are translated to psycopg's
``%s`` once per statement text (and cached), ``executemany`` runs in pipeline mode (one
round trip for a batch), and the few differences go through the seam of
:class:`tiercel.backend.db.Database`: :meth:`lock` is a transaction-scoped advisory lock,
:meth:`json_field` reads ``jsonb``. The schema is the same Alembic schema as SQLite's: a
database without one is migrated on first use under an advisory lock (so processes starting
together create it once); one behind or ahead is refused with the command to run.

Connections: a pool of ``TIERCEL_DB_POOL`` connections (default 4) per process, plus one
short-lived connection at start for the schema check. A transaction holds one connection
for its thread; reads outside a transaction borrow one for the statement (autocommit).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tiercel.backend import mask_url
from tiercel.backend.db import Database, check_revision, migrate

#: Key of the session-level advisory lock held while a fresh database is migrated.
MIGRATION_LOCK = 0x7469657263656C  # "tiercel"

_TOKENS = re.compile(r"'(?:[^']|'')*'|\?|%")
_translated: dict[str, str] = {}


def translate(sql: str) -> str:
    """*sql* with ``?`` placeholders as psycopg's ``%s`` (and ``%`` escaped), string literals left alone."""
    done = _translated.get(sql)
    if done is None:
        def token(m: re.Match[str]) -> str:
            text = m.group(0)
            if text == "?":
                return "%s"
            if text == "%":
                return "%%"
            return text.replace("%", "%%")

        done = _translated[sql] = _TOKENS.sub(token, sql)
    return done


def lock_key(*key: Any) -> int:
    """A signed 64-bit advisory lock key for *key* (the same in every process)."""
    digest = hashlib.blake2b("\x1f".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Connection:
    """A psycopg connection speaking the stores' SQL (what :meth:`Database.transaction` yields)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(translate(sql), tuple(params))

    def executemany(self, sql: str, rows: Any) -> Any:
        rows = [tuple(r) for r in rows]
        if len(rows) == 1:  # a pipeline costs more than it saves for one row
            return self.raw.execute(translate(sql), rows[0])
        cur = self.raw.cursor()
        cur.executemany(translate(sql), rows)  # pipeline mode: one round trip
        return cur


def _configure(conn: Any) -> None:
    from psycopg.adapt import Dumper
    from psycopg.postgres import types

    class BoolAsInt(Dumper):  # flags are INTEGER columns on both dialects
        oid = types["int4"].oid

        def dump(self, obj: Any) -> bytes:
            return b"1" if obj else b"0"

    conn.adapters.register_dumper(bool, BoolAsInt)


class PostgresDatabase(Database):
    """The stores' database on PostgreSQL (``postgresql://user:password@host:port/db``)."""

    dialect = "postgresql"
    insert_order = "id"

    def __init__(self, url: str, pool_size: int | None = None) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        self.url = url
        self.path = None  # type: ignore[assignment]
        self._local = threading.local()
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                self._ensure_schema_on(conn)
        except psycopg.OperationalError as exc:
            raise ConnectionError(f"cannot connect to the database {mask_url(url)}: {mask_url(str(exc)).strip()}") \
                from None
        size = pool_size or int(os.environ.get("TIERCEL_DB_POOL") or 4)
        self._pool = ConnectionPool(url, min_size=1, max_size=max(size, 1), kwargs={"autocommit": True},
                                    configure=_configure, open=True, num_workers=1, name="tiercel-db")

    # --- schema -----------------------------------------------------------------------
    def _ensure_schema(self) -> None:  # the SQLite path; PostgreSQL checks in __init__
        raise NotImplementedError

    @staticmethod
    def _version(conn: Any) -> str | None:
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0] is None:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None

    def _ensure_schema_on(self, conn: Any) -> None:
        version = self._version(conn)
        if version is None:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                if self._version(conn) is None:  # no other process made it meanwhile
                    migrate(self.url)
                version = self._version(conn)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        check_revision(version, self.url)

    # --- access -----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Any]:  # type: ignore[override]
        """A transaction on one connection of the pool; nested calls (same thread) join the outer one."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self._pool.connection() as raw:
            conn = Connection(raw)
            self._local.conn = conn
            try:
                with raw.transaction():
                    yield conn
            finally:
                self._local.conn = None

    @contextmanager
    def _reader(self) -> Iterator[Connection]:
        current = getattr(self._local, "conn", None)
        if current is not None:  # inside a transaction: read what it wrote
            yield current
            return
        with self._pool.connection() as raw:
            yield Connection(raw)

    def lock(self, *key: Any) -> None:
        with self.transaction() as conn:
            conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(*key),))

    def json_field(self, column: str, key: str) -> tuple[str, list[Any]]:
        return f"(CAST({column} AS jsonb) ->> ?)", [key]

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._reader() as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[no-any-return]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        with self._reader() as conn:
            return conn.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._reader() as conn:  # one statement outside a transaction commits by itself
            return conn.execute(sql, params).rowcount  # type: ignore[no-any-return]

    def close(self) -> None:
        self._pool.close()
